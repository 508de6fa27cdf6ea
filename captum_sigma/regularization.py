"""Estimating ``r``: the per-element standard deviation of the explained output.

Guan et al. (ICML 2019) normalise the output change by ``r``, the standard deviation
of the hidden state over a data sample, which makes ``σ`` comparable across
sentences, layers and models. For per-token outputs (B, T, D) the reference reduces
over sentences *and* positions, giving one value per hidden unit (shape (D,)).
"""

import os
from typing import Any, Callable, Iterable, Mapping, Optional, Tuple, Union

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from captum_sigma._captum_compat import TargetType
from captum_sigma.attr import explained_rows

__all__ = [
    "RELATIVE_FLOOR",
    "estimate_regularization",
    "save_regularization",
    "load_regularization",
]

#: Entries of ``r`` are floored at this fraction of the output's root-mean-square
#: magnitude over the data sample. An element that hardly varies over the data would
#: otherwise divide float rounding of the forward pass (about 1e-7 of the element's
#: magnitude) by a near-zero ``r`` and let it steer the optimisation. With the floor
#: rounding moves the normalised output by at most ~1e-7 / RELATIVE_FLOOR = 1e-5 of
#: its typical magnitude.
RELATIVE_FLOOR = 1e-2

Batch = Union[Tensor, Tuple[Tensor, ...], Mapping[str, Any]]


def estimate_regularization(
    forward_func: Callable[..., Tensor],
    batches: Iterable[Batch],
    target: TargetType = None,
    explained_layer: Optional[nn.Module] = None,
) -> Tensor:
    """Per-element std of the explained output over a data sample (batched).

    Args:
        forward_func: The model's forward function (the same one given to
            :class:`~captum_sigma.SigmaAttribution` or
            :class:`~captum_sigma.LayerSigmaAttribution`).
        batches: Iterable of batches; each is the inputs (a Tensor or tuple), or a
            mapping with ``"inputs"`` and optionally ``"additional_forward_args"`` and
            ``"token_mask"`` ((B, T), 1 = real token).
        target: Captum target applied to the output, as in ``attribute``.
        explained_layer: Explain this module's output instead (the forward stops
            there), as ``LayerSigmaAttribution.attribute(explained_layer=...)``.

    Returns:
        ``r`` as float32: for a per-token output (B, T, ...) with a ``token_mask``,
        the population std over every real token of every sentence, shape (...);
        otherwise the std over examples, shape ``output.shape[1:]``. Every entry
        is at least :data:`RELATIVE_FLOOR` times the root-mean-square of the
        output over the sample (a near-constant element cannot amplify rounding).
        Pass it as ``regularization=``; save it with :func:`save_regularization`.
    """
    total: Optional[Tensor] = None
    total_squares: Optional[Tensor] = None
    count = 0
    with torch.no_grad():
        for batch in batches:
            rows = explained_rows(forward_func, batch, target, explained_layer)
            rows64 = rows.to(torch.float64)
            if total is None:
                total = torch.zeros_like(rows64[0])
                total_squares = torch.zeros_like(rows64[0])
            elif rows64.shape[1:] != total.shape:
                raise ValueError(
                    f"batches: explained output rows of shape {tuple(rows.shape[1:])} "
                    f"differ from earlier ones {tuple(total.shape)}"
                )
            total += rows64.sum(0)
            total_squares += (rows64**2).sum(0)
            count += rows64.shape[0]
    if total is None or total_squares is None or count < 2:
        raise ValueError("batches: need at least two output rows to estimate a std")
    mean = total / count
    variance = (total_squares / count - mean**2).clamp_min(0)
    magnitude = (total_squares / count).mean().sqrt()
    return variance.sqrt().clamp_min(RELATIVE_FLOOR * magnitude).to(torch.float32)


def save_regularization(regularization: Tensor, path: Union[str, os.PathLike]) -> None:
    """Saves ``r`` to a safetensors file."""
    save_file({"regularization": regularization.detach().cpu().contiguous()}, path)


def load_regularization(
    path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu"
) -> Tensor:
    """Loads ``r`` saved by :func:`save_regularization`."""
    return load_file(path, device=str(device))["regularization"]
