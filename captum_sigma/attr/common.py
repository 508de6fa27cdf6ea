"""Machinery shared by the Captum adapters: validation, options, grouping, chunking.

Errors are raised here, at the boundary, so the engine can assume valid problems.
:func:`check_options` checks ``attribute``'s one options object;
:func:`attribute_groups` is the one solve-and-format path of both adapters.
"""

import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from typing import (
    Any,
    Callable,
    Dict,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import torch
from torch import Tensor, nn

from captum_sigma._captum_compat import (
    TargetType,
    expand_additional_forward_args,
    expand_target,
    format_additional_forward_args,
    progress,
    run_forward,
    select_targets,
)
from captum_sigma.attr.hooks import StopForward, explained_output
from captum_sigma.engine import SigmaOptions, SigmaProblem, SigmaResult, solve_sigma

TensorOrTuple = Union[Tensor, Tuple[Tensor, ...]]


def format_tensors(name: str, value: Any) -> Tuple[Tensor, ...]:
    """Returns ``value`` as a non-empty tuple of tensors, or raises ``TypeError``."""
    items = value if isinstance(value, tuple) else (value,)
    if not items:
        raise ValueError(f"{name} must not be an empty tuple")
    for item in items:
        if not isinstance(item, Tensor):
            raise TypeError(
                f"{name} must be a Tensor or a tuple of Tensors, got "
                f"{type(item).__name__}"
            )
    return items


def check_batch(name: str, tensors: Tuple[Tensor, ...]) -> int:
    """Checks a common, non-empty batch dimension and finite values."""
    for tensor in tensors:
        if tensor.dim() == 0:
            raise ValueError(f"{name} need a batch dimension, got a scalar")
    batch = tensors[0].shape[0]
    if batch == 0:
        raise ValueError(f"{name} is an empty batch (dimension 0 has size 0)")
    if any(t.shape[0] != batch for t in tensors):
        shapes = [tuple(t.shape) for t in tensors]
        raise ValueError(f"{name} must share the batch dimension, got shapes {shapes}")
    for tensor in tensors:
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ValueError(f"{name} contain NaN or Inf values")
    return batch


def check_devices(name: str, tensors: Tuple[Tensor, ...], module: Any) -> None:
    """Raises when ``tensors`` and ``module``'s parameters are on other devices."""
    if not isinstance(module, nn.Module):
        return
    parameter = next(module.parameters(), None)
    if parameter is None:
        return
    for tensor in tensors:
        if tensor.device != parameter.device:
            raise ValueError(
                f"{name} are on {tensor.device} but the model's parameters are on "
                f"{parameter.device}: move both to the same device"
            )


def check_options(options: Optional[SigmaOptions]) -> SigmaOptions:
    """``options``, or ``SigmaOptions()`` for None; raises ``TypeError`` otherwise.

    The fields were validated when the object was built (``SigmaOptions`` is a
    frozen dataclass whose ``__post_init__`` checks every field).
    """
    if options is None:
        return SigmaOptions()
    if not isinstance(options, SigmaOptions):
        raise TypeError(
            f"options must be a SigmaOptions or None, got {type(options).__name__}; "
            "set a field with options=SigmaOptions(n_steps=...) or "
            "dataclasses.replace(options, n_steps=...)"
        )
    return options


def check_regularization(
    regularization: Union[None, float, Tensor], output: Tensor
) -> Optional[Tensor]:
    """Validates ``r`` against one example's output shape."""
    if regularization is None:
        return None
    if isinstance(regularization, (int, float)) and not isinstance(
        regularization, bool
    ):
        regularization = torch.tensor(float(regularization))
    if not isinstance(regularization, Tensor):
        raise TypeError(
            "regularization must be None, a number or a Tensor, got "
            f"{type(regularization).__name__}"
        )
    example_shape = tuple(output.shape[1:])
    try:
        shape = torch.broadcast_shapes(regularization.shape, example_shape)
    except RuntimeError:
        shape = None
    if shape != example_shape:
        raise ValueError(
            f"regularization of shape {tuple(regularization.shape)} does not broadcast "
            f"to one example's output shape {example_shape}"
        )
    if not torch.isfinite(regularization).all() or (regularization < 0).any():
        raise ValueError("regularization must be finite and non-negative")
    return regularization.to(device=output.device, dtype=torch.float32)


def check_output(output: Any, batch: int) -> Tensor:
    """Checks that the explained output is a tensor with the batch dimension."""
    if not isinstance(output, Tensor):
        raise TypeError(
            f"the forward function must return a Tensor, got {type(output).__name__}"
        )
    if output.dim() == 0 or output.shape[0] != batch:
        raise ValueError(
            f"the forward function's output (shape {tuple(output.shape)}) has no batch "
            f"dimension of size {batch}; return one output row per example"
        )
    if not output.is_floating_point():
        raise TypeError(
            f"the forward function's output must be floating, got {output.dtype}"
        )
    return output


class TargetError(ValueError, AssertionError):
    """A ``target`` that does not fit the inputs or the explained output.

    A ``ValueError`` (the argument is the caller's), raised explicitly so that
    ``python -O`` does not strip the check. It is also an ``AssertionError``
    because that is Captum's contract for a malformed target: Captum's methods
    raise ``AssertionError`` for one (``_validate_target``, ``_select_targets``),
    so code written against Captum that catches it keeps working.
    """


def select_target(output: Tensor, target: TargetType) -> Tensor:
    """Captum's target selection; a malformed target raises :class:`TargetError`."""
    try:
        return select_targets(output, target)
    # Captum's own check raises AssertionError (explicitly or by ``assert``, which
    # ``python -O`` strips: the indexing error that follows is caught instead)
    except (AssertionError, IndexError, RuntimeError, TypeError) as error:
        raise TargetError(
            f"target {target!r} is not valid for output shape "
            f"{tuple(output.shape)}: {error}"
        ) from error


def check_target(target: TargetType, batch: int) -> None:
    """Per-example targets must have one entry per example (Captum's rule).

    Raises:
        TargetError: A ``ValueError`` (and ``AssertionError``, as in Captum).
    """
    if isinstance(target, list) and len(target) != batch:
        raise TargetError(
            f"target list has {len(target)} entries for a batch of {batch}: give one "
            "per example (or one int for all)"
        )
    if isinstance(target, Tensor) and target.numel() > 1:
        if target.dim() != 1 or target.numel() != batch:
            raise TargetError(
                f"tensor target of shape {tuple(target.shape)} does not match batch "
                f"{batch}: give shape ({batch},) (or a scalar for all examples)"
            )


def expand_call(
    target: TargetType, additional_forward_args: Optional[Tuple[Any, ...]], n: int
) -> Tuple[TargetType, Optional[Tuple[Any, ...]]]:
    """Repeats per-example targets and arguments ``n`` times, sample-major."""
    if n == 1:
        return target, additional_forward_args
    return (
        expand_target(target, n),
        expand_additional_forward_args(additional_forward_args, n),
    )


class RepeatedCall:
    """The inputs, target and arguments of one chunk repeated ``n`` times.

    The solver asks for the same repetition (``n_samples``) at every step; each is
    built once and kept, so the hot loop does no concatenation of its own.
    """

    def __init__(
        self,
        inputs: Tuple[Tensor, ...],
        target: TargetType,
        additional_forward_args: Optional[Tuple[Any, ...]],
    ) -> None:
        self.inputs = inputs
        self.target = target
        self.additional_forward_args = additional_forward_args
        self._cache: Dict[int, Tuple[Tuple[Tensor, ...], TargetType, Any]] = {}

    def __call__(self, n: int) -> Tuple[Tuple[Tensor, ...], TargetType, Any]:
        if n not in self._cache:
            inputs = tuple(torch.cat([inp] * n) for inp in self.inputs)
            target, args = expand_call(self.target, self.additional_forward_args, n)
            self._cache[n] = (inputs, target, args)
        return self._cache[n]


def take_rows(value: Any, rows: Tensor, batch: int) -> Any:
    """Rows ``rows`` of every batch-first tensor (or per-example list) in value."""
    if isinstance(value, Tensor):
        if value.dim() > 0 and value.shape[0] == batch:
            return value[rows.to(value.device)]
        return value
    if isinstance(value, list) and len(value) == batch:
        return [value[i] for i in rows.tolist()]
    if isinstance(value, tuple):
        return tuple(take_rows(item, rows, batch) for item in value)
    return value


def slice_batch(value: Any, start: int, end: int, batch: int) -> Any:
    """Rows ``start:end`` of every batch-first tensor (or per-example list) in value."""
    if isinstance(value, Tensor):
        return (
            value[start:end] if value.dim() > 0 and value.shape[0] == batch else value
        )
    if isinstance(value, list) and len(value) == batch:
        return value[start:end]
    if isinstance(value, tuple):
        return tuple(slice_batch(item, start, end, batch) for item in value)
    return value


def format_args(additional_forward_args: Any) -> Optional[Tuple[Any, ...]]:
    return format_additional_forward_args(additional_forward_args)


def explained_rows(
    forward_func: Callable[..., Tensor],
    batch: Any,
    target: TargetType,
    explained_layer: Optional[nn.Module],
) -> Tensor:
    """The explained output of one batch, computed as ``attribute`` computes it.

    Args:
        forward_func: The model's forward function.
        batch: Inputs (a Tensor or tuple), or a mapping with ``"inputs"`` and
            optional ``"additional_forward_args"`` and ``"token_mask"``.
        target: Captum's target, selected from the output.
        explained_layer: Explain this module's output instead (the forward pass
            stops there), or None.

    Returns:
        The selected output, one row per example; for a per-token output
        ``(B, T, ...)`` with a ``token_mask``, one row per real token.
    """
    if isinstance(batch, Mapping):
        inputs = format_tensors("inputs", batch["inputs"])
        args = format_args(batch.get("additional_forward_args"))
        token_mask = batch.get("token_mask")
    else:
        inputs, args, token_mask = format_tensors("inputs", batch), None, None
    size = check_batch("inputs", inputs)
    token_mask = check_token_mask(token_mask, size)
    with explained_output(explained_layer) as store:
        try:
            output = run_forward(forward_func, inputs, None, args)
        except StopForward:
            output = store["output"]
    output = select_target(check_output(output, size), target)
    if (
        token_mask is not None
        and output.dim() >= 3
        and tuple(output.shape[:2]) == tuple(token_mask.shape)
    ):
        return output[token_mask.to(output.device)]
    return output


def default_groups(
    inputs: Tuple[Tensor, ...], token_mask: Optional[Tensor]
) -> Tuple[Tuple[Tensor, ...], int]:
    """One group per position of ``(B, T, D)`` inputs, one per element otherwise.

    Positions where ``token_mask`` is 0 get id -1 (never perturbed nor scored).
    """
    groups, offset = [], 0
    for inp in inputs:
        example_shape = tuple(inp.shape[1:])
        if inp.dim() == 3:
            ids = torch.arange(inp.shape[1], device=inp.device).reshape(-1, 1)
            ids = ids.expand(example_shape)
        else:
            ids = torch.arange(max(1, inp[0].numel()), device=inp.device)
            ids = ids.reshape(example_shape)
        n_ids = int(ids.max()) + 1 if ids.numel() else 0
        groups.append((ids + offset).unsqueeze(0).expand(inp.shape).clone())
        offset += n_ids
    return apply_token_mask(tuple(groups), inputs, token_mask), offset


def mask_groups(
    feature_mask: Any, inputs: Tuple[Tensor, ...], token_mask: Optional[Tensor]
) -> Tuple[Tuple[Tensor, ...], int]:
    """Captum ``feature_mask`` semantics: integer ids, one id space over the tuple.

    Negative ids mark elements that are never perturbed nor scored.
    """
    masks = format_tensors("feature_mask", feature_mask)
    if len(masks) != len(inputs):
        raise ValueError(
            f"feature_mask has {len(masks)} tensors but there are {len(inputs)} inputs"
        )
    groups = []
    for mask, inp in zip(masks, inputs):
        if mask.dtype.is_floating_point or mask.dtype == torch.bool:
            raise TypeError(f"feature_mask must hold integer ids, got {mask.dtype}")
        if mask.dim() != inp.dim() or mask.shape[0] not in (1, inp.shape[0]):
            raise ValueError(
                f"feature_mask of shape {tuple(mask.shape)} does not match input of "
                f"shape {tuple(inp.shape)} (same number of dimensions, batch 1 or "
                f"{inp.shape[0]})"
            )
        try:
            expanded = mask.to(inp.device, torch.int64).expand(inp.shape)
        except RuntimeError:
            raise ValueError(
                f"feature_mask of shape {tuple(mask.shape)} does not broadcast to "
                f"input of shape {tuple(inp.shape)}"
            ) from None
        groups.append(expanded.clamp_min(-1).clone())
    n_groups = max(int(g.max()) + 1 if g.numel() else 0 for g in groups)
    if n_groups <= 0:
        raise ValueError("feature_mask marks no feature (all ids are negative)")
    return apply_token_mask(tuple(groups), inputs, token_mask), n_groups


def apply_token_mask(
    groups: Tuple[Tensor, ...],
    inputs: Tuple[Tensor, ...],
    token_mask: Optional[Tensor],
) -> Tuple[Tensor, ...]:
    if token_mask is None:
        return groups
    masked, matched = [], False
    for group, inp in zip(groups, inputs):
        if inp.dim() >= 2 and tuple(inp.shape[:2]) == tuple(token_mask.shape):
            matched = True
            keep = token_mask.to(inp.device).bool()
            keep = keep.reshape(*keep.shape, *([1] * (inp.dim() - 2)))
            group = torch.where(keep, group, torch.full_like(group, -1))
        masked.append(group)
    if not matched:
        raise ValueError(
            f"token_mask of shape {tuple(token_mask.shape)} matches no input's "
            f"(batch, positions) shape {[tuple(i.shape[:2]) for i in inputs]}"
        )
    return tuple(masked)


def check_token_mask(token_mask: Any, batch: int) -> Optional[Tensor]:
    if token_mask is None:
        return None
    if not isinstance(token_mask, Tensor):
        raise TypeError(f"token_mask must be a Tensor, got {type(token_mask).__name__}")
    if token_mask.dim() != 2 or token_mask.shape[0] != batch:
        raise ValueError(
            f"token_mask must have shape (batch={batch}, positions), got "
            f"{tuple(token_mask.shape)}"
        )
    return token_mask.bool()


@contextmanager
def isolated_rng_and_grad(tensors: Sequence[Tensor]) -> Iterator[None]:
    """Leaves the caller's global RNG untouched and enables grad for the solve."""
    devices = sorted({t.device.index or 0 for t in tensors if t.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.enable_grad():
        yield


@contextmanager
def seeded_rng(seed: int, device: Union[str, torch.device] = "cpu") -> Iterator[None]:
    """Forks torch's global RNG, seeds it with ``seed`` and restores it on exit.

    For methods that draw from the global RNG (Lime, KernelShap): their results
    then depend on ``seed`` only, and the caller's RNG state is left unchanged.
    """
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def warn_if_training(module: Any) -> None:
    """Warns when a dropout module of the model is in training mode."""
    if isinstance(module, nn.Module) and any(
        isinstance(m, nn.modules.dropout._DropoutNd) and m.training and m.p > 0
        for m in module.modules()
    ):
        warnings.warn(
            "the model is in training mode: dropout adds its own noise to every "
            "forward pass; call model.eval() for reproducible sigma attributions",
            stacklevel=3,
        )


#: ``build(start, end)`` returns the sigma problem of rows ``[start, end)`` and its
#: clean output ``s``.
ProblemBuilder = Callable[[int, int], Tuple[SigmaProblem, Tensor]]


def solve_in_chunks(
    batch: int,
    chunk_size: int,
    build: ProblemBuilder,
    options: SigmaOptions,
    show_progress: bool,
    desc: str,
) -> List[Tuple[SigmaProblem, SigmaResult]]:
    """Solves rows ``[start, end)`` chunk by chunk; a CUDA OOM halves the chunk.

    Results do not depend on the chunking (see :mod:`captum_sigma.engine.noise`), so
    retrying with a smaller chunk returns what the larger one would have.
    """
    results: List[Tuple[SigmaProblem, SigmaResult]] = []
    # the most steps; with ``tol`` examples may finish earlier (the bar then stops
    # short of its total)
    bar = progress(
        desc=desc, total=batch * options.step_limit, disable=not show_progress
    )
    start = 0
    while start < batch:
        end = min(batch, start + chunk_size)
        try:
            problem, clean = build(start, end)
            result = solve_sigma(problem, options, clean=clean, on_step=bar.update)
        except torch.cuda.OutOfMemoryError:
            if chunk_size == 1:
                raise
            chunk_size = max(1, chunk_size // 2)
            torch.cuda.empty_cache()
            continue
        results.append((problem, result))
        start = end
    bar.close()
    return results


def check_internal_batch_size(internal_batch_size: Any) -> None:
    """Checks an ``internal_batch_size`` argument: None or a positive int.

    Raises:
        TypeError: If it is neither None nor an int (a bool is no int here).
        ValueError: If it is not positive.
    """
    if internal_batch_size is None:
        return
    if isinstance(internal_batch_size, bool) or not isinstance(
        internal_batch_size, int
    ):
        raise TypeError("internal_batch_size must be an int or None")
    if internal_batch_size <= 0:
        raise ValueError(
            f"internal_batch_size must be positive, got {internal_batch_size}"
        )


def chunk_size_for(internal_batch_size: Optional[int], n_rows: int, batch: int) -> int:
    """Examples per chunk so that one forward pass sees at most the given rows."""
    check_internal_batch_size(internal_batch_size)
    if internal_batch_size is None:
        return batch
    return max(1, internal_batch_size // n_rows)


def concat_results(
    results: List[Tuple[SigmaProblem, SigmaResult]], scale: float
) -> Tuple[Tensor, Tensor, Tuple[Tensor, ...], Optional[Tensor]]:
    """Stacks the chunks' ``σ``, group sizes, group ids and standard errors."""
    sigma = torch.cat([result.sigma for _, result in results])
    sizes = torch.cat([result.group_sizes for _, result in results])
    n_inputs = len(results[0][0].groups)
    groups = tuple(
        torch.cat([problem.groups[i] for problem, _ in results])
        for i in range(n_inputs)
    )
    errors = [result.standard_error(scale) for _, result in results]
    error = None if errors[0] is None else torch.cat(errors)
    return sigma, sizes, groups, error


def scores_in_input_shape(
    sigma: Tensor, groups: Tuple[Tensor, ...], scale: float, dtype: torch.dtype
) -> Tuple[Tensor, ...]:
    """Every element of group ``g`` holds ``log(scale / σ_g)``; 0 where id is -1."""
    score = torch.nan_to_num(torch.log(scale / sigma), nan=0.0)
    score = torch.cat([score.new_zeros(score.shape[0], 1), score], dim=1)
    out = []
    for group in groups:
        flat = group.reshape(group.shape[0], -1) + 1
        out.append(torch.gather(score, 1, flat).reshape(group.shape).to(dtype))
    return tuple(out)


def group_scores(sigma: Tensor, sizes: Tensor, scale: float) -> Tensor:
    """``|g| · log(scale / σ_g)`` per group, shape ``(B, n_groups)``; 0 if absent."""
    return torch.nan_to_num(sizes * torch.log(scale / sigma), nan=0.0)


def attribute_groups(
    inputs: Tuple[Tensor, ...],
    build: ProblemBuilder,
    options: SigmaOptions,
    internal_batch_size: Optional[int],
    show_progress: bool,
    return_input_shape: bool,
    desc: str,
) -> Tuple[Tuple[Tensor, ...], Tensor, Tensor]:
    """Solves every chunk and formats the result (the path of both adapters).

    Args:
        inputs: The perturbed tensors (for their dtypes and the devices to fork).
        build: Builds the problem of rows ``[start, end)``.
        options: The options (checked by :func:`check_options`).
        internal_batch_size: Bound on the rows (examples × chains × draws) of one
            forward.
        show_progress: Show a progress bar.
        return_input_shape: Input-shaped scores, else ``(B, n_groups)`` scores.
        desc: The progress bar's label.

    Returns:
        ``(attributions, sigma, standard_error)``: a tuple of input-shaped tensors
        (one tensor of group scores with ``return_input_shape=False``), ``σ`` of
        shape ``(B, n_groups)`` and the standard error of every group's score
        ``(B, n_groups)`` in nats (NaN everywhere with a single chain).
    """
    batch = inputs[0].shape[0]
    rows_per_example = options.n_samples * options.chains
    chunk = chunk_size_for(internal_batch_size, rows_per_example, batch)
    with isolated_rng_and_grad(inputs):
        results = solve_in_chunks(batch, chunk, build, options, show_progress, desc)
    sigma, sizes, groups, error = concat_results(results, options.scale)
    if error is None:
        error = torch.full_like(sigma, float("nan"))
    error = torch.where(torch.isnan(sigma), torch.zeros_like(error), error)
    if not return_input_shape:
        return (group_scores(sigma, sizes, options.scale),), sigma, error
    scores = scores_in_input_shape(sigma, groups, options.scale, torch.float32)
    return tuple(s.to(i.dtype) for s, i in zip(scores, inputs)), sigma, error
