"""The forward hooks of the package: replace a layer's output, stop at a layer.

Captum's ``_forward_layer_eval`` captures a layer's activations (and is used for
that); it has no way to *replace* them for a forward pass or to *stop* the forward
pass at a later module, so these small context managers are written here, once, for
the adapters, ``r``'s estimation, the text explainer and the evaluation metrics.
Every hook is removed in a ``finally`` block, also when the forward pass raises.
"""

from contextlib import contextmanager
from typing import Any, Dict, Iterator, Optional, Sequence, Tuple

from torch import Tensor, nn

__all__ = [
    "StopForward",
    "captured_outputs",
    "explained_output",
    "replaced_activations",
]


class StopForward(Exception):
    """Raised by the explained layer's hook to end the forward pass early."""


def _replace_tensors(original: Any, replacement: Tuple[Tensor, ...]) -> Any:
    if isinstance(original, Tensor):
        return replacement[0]
    items, position = [], 0
    for item in original:
        if isinstance(item, Tensor):
            items.append(replacement[position])
            position += 1
        else:
            items.append(item)
    return type(original)(items) if isinstance(original, tuple) else items


@contextmanager
def replaced_activations(
    layer: nn.Module,
    replacement: Optional[Tuple[Tensor, ...]],
    attribute_to_layer_input: bool,
) -> Iterator[Dict[str, bool]]:
    """While active, ``layer`` outputs (or receives) ``replacement``; None = no-op.

    Yields a dict whose ``"replaced"`` entry becomes True once the layer has run
    with the replacement (so a caller can tell that the forward pass stopped, or
    ended, before reaching it).
    """
    state = {"replaced": False}
    if replacement is None:
        yield state
        return
    if attribute_to_layer_input:

        def pre_hook(module: nn.Module, inputs: Tuple[Any, ...]) -> Tuple[Any, ...]:
            state["replaced"] = True
            return _replace_tensors(inputs, replacement)

        handle = layer.register_forward_pre_hook(pre_hook)
    else:

        def hook(module: nn.Module, inputs: Any, output: Any) -> Any:
            state["replaced"] = True
            return _replace_tensors(output, replacement)

        handle = layer.register_forward_hook(hook)
    try:
        yield state
    finally:
        handle.remove()


@contextmanager
def explained_output(layer: Optional[nn.Module]) -> Iterator[Dict[str, Tensor]]:
    """Captures ``layer``'s output (its first tensor) and stops the forward there.

    Yields a dict whose ``"output"`` entry is set when the layer has run; the caller
    catches :class:`StopForward`.
    """
    store: Dict[str, Tensor] = {}
    if layer is None:
        yield store
        return

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        if not isinstance(output, Tensor):
            output = next(item for item in output if isinstance(item, Tensor))
        store["output"] = output
        raise StopForward

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


@contextmanager
def captured_outputs(
    layers: Sequence[nn.Module], indices: Sequence[int], store: Dict[int, Tensor]
) -> Iterator[None]:
    """Stores ``layers[i]``'s output (first tensor) in ``store[i]`` for ``i`` in
    ``indices`` and stops the forward pass (:class:`StopForward`) after the last.

    Captum's ``_forward_layer_eval`` captures several layers too, but always runs
    the whole model; here the layers above the last explained one never run and
    the captured outputs stay differentiable.
    """
    last = max(indices)
    handles = []

    def make_hook(index: int) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, Tensor):
                output = next(item for item in output if isinstance(item, Tensor))
            store[index] = output
            if index == last:
                raise StopForward

        return hook

    try:
        for index in sorted(set(indices)):
            handles.append(layers[index].register_forward_hook(make_hook(index)))
        yield
    finally:
        for handle in handles:
            handle.remove()
