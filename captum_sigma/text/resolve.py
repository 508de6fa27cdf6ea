r"""The one rule of each argument of an explanation: class, layer, device, output.

:class:`~captum_sigma.text.TextExplainer` resolves its arguments with these
functions, and the command line calls the same functions on what a model's
``config.json`` says (before any weights load), so a rule and its message exist
once. Each takes ``name``, how its caller calls the argument (``"target"`` in
Python, ``"--target"`` on the command line), and raises ``ValueError`` (or
``TypeError``) with a one-line message that names it. The preset's rule is
:func:`~captum_sigma.text.presets.get_preset`.

Importing this module loads no torch (:func:`resolve_device` imports it when
called).
"""

from typing import Any, Dict, Mapping, Optional, Union

from captum_sigma.text.choices import OUTPUTS

__all__ = [
    "class_names",
    "resolve_device",
    "resolve_layer",
    "resolve_output",
    "resolve_target",
]


def class_names(
    id2label: Optional[Mapping[Any, Any]], num_labels: Optional[int] = None
) -> Dict[int, str]:
    """A classifier's class names by index, from its config.

    Args:
        id2label: The config's ``id2label`` (keys ints, or strings of ints as in
            ``config.json``).
        num_labels: The config's ``num_labels``; default: ``len(id2label)``, or 2
            (Hugging Face's default) without one.
    """
    by_index = {int(index): str(label) for index, label in (id2label or {}).items()}
    count = int(num_labels) if num_labels is not None else (len(by_index) or 2)
    return {i: by_index.get(i, f"LABEL_{i}") for i in range(count)}


def resolve_target(
    target: Union[None, int, str],
    labels: Mapping[int, str],
    *,
    layer: Optional[int] = None,
    model: str = "the model",
    name: str = "target",
    layer_name: str = "layer",
) -> Optional[int]:
    """The class index of ``target`` (an index or a label name, any case).

    Args:
        target: The class; None: the predicted class (returns None).
        labels: The model's class names by index (:func:`class_names`); empty for a
            model that is not a sequence classifier.
        layer: The explained layer, if any: a layer's hidden state has no class.
        model: The model in words, for the message (e.g. its class name).
        name, layer_name: How the caller calls ``target`` and ``layer``.

    Raises:
        ValueError: Target given with a layer or for a model without classes, an
            unknown name, or an index out of range.
    """
    if target is None:
        return None
    if layer is not None:
        raise ValueError(
            f"{name} and {layer_name}: a layer's hidden state has no class; give "
            f"{name} or {layer_name}, not both"
        )
    if not labels:
        raise ValueError(
            f"{name} {target}: {model} is not a sequence classifier; its pooled "
            f"embedding or a layer ({layer_name}) is explained"
        )
    count = len(labels)
    if isinstance(target, str):
        value = target.strip()
        by_name = {label.lower(): index for index, label in labels.items()}
        if value.lower() in by_name:
            return by_name[value.lower()]
        if not value.lstrip("-").isdigit():
            raise ValueError(
                f"{name} {target}: unknown class; the model's classes are "
                f"{sorted(labels.values())} or indices 0..{count - 1}"
            )
        index = int(value)
    elif isinstance(target, bool) or not isinstance(target, int):
        raise ValueError(f"{name} must be a class index or name, got {target!r}")
    else:
        index = target
    if not 0 <= index < count:
        raise ValueError(
            f"{name} {target}: class out of range for a model with {count} classes "
            f"(0..{count - 1})"
        )
    return index


def resolve_layer(layer: Any, count: int, name: str = "layer") -> int:
    """The 0-based index of encoder layer ``layer`` (1-based; negative counts
    from the last) of a model with ``count`` encoder layers.

    Raises:
        ValueError: Not an int, or no such layer.
    """
    if isinstance(layer, bool) or not isinstance(layer, int):
        raise ValueError(f"{name} must be an int, got {layer!r}")
    if 1 <= layer <= count:
        return layer - 1
    if -count <= layer <= -1:
        return count + layer
    raise ValueError(
        f"{name} {layer}: the model has {count} encoder layers (1..{count}, or "
        f"-{count}..-1 from the last)"
    )


def resolve_output(
    output: Any,
    classifier: bool,
    default: str,
    *,
    model: str = "the model",
    name: str = "output",
) -> Optional[str]:
    """A classifier's explained output: ``output`` (one of :data:`OUTPUTS`) or
    ``default``; None for a model that is not a sequence classifier (its pooled
    embedding / r is explained), which must get no ``output``.

    Raises:
        ValueError: An unknown output, or one given for a bare encoder.
    """
    if output is not None and (not isinstance(output, str) or output not in OUTPUTS):
        raise ValueError(f"{name} must be one of {OUTPUTS}, got {output!r}")
    if not classifier:
        if output is not None:
            raise ValueError(
                f"{name} {output!r}: {model} is a bare encoder, not a sequence "
                "classifier; its pooled embedding / r is explained"
            )
        return None
    return default if output is None else output


def resolve_device(device: Any = None, name: str = "device") -> Any:
    """``device`` as an available ``torch.device`` (None: cuda when available,
    else cpu).

    Raises:
        ValueError: An unknown device, or one this machine does not have.
    """
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"{name} {device}: unknown device; use cpu, cuda, cuda:N or mps"
        ) from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (resolved.index or 0) >= count:
            raise ValueError(
                f"{name} {str(resolved)!r} is not available: {count} CUDA GPU(s) found"
            )
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{name} {str(resolved)!r} is not available (no MPS)")
    return resolved
