"""Argument checks shared by the evaluation modules (private)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np
import torch
from torch import Tensor

ScoresLike = Union[Tensor, np.ndarray]
TargetLike = Union[None, int, Sequence[int], Tensor, np.ndarray]

OPERATORS = ("delete", "mask")


def check_token_batch(input_ids: Tensor, attention_mask: Tensor) -> None:
    """Checks that ``input_ids`` and ``attention_mask`` are matching (B, T) tensors."""
    if not isinstance(input_ids, Tensor) or input_ids.dim() != 2:
        raise ValueError("input_ids must be a 2-D tensor of shape (batch, tokens)")
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise ValueError(f"input_ids must hold integer ids, got {input_ids.dtype}")
    if input_ids.shape[0] == 0:
        raise ValueError("input_ids must hold at least one example")
    check_same_shape("attention_mask", attention_mask, input_ids.shape)


def check_same_shape(name: str, tensor: object, shape: torch.Size) -> None:
    """Checks that the tensor called ``name`` has exactly ``shape``."""
    if not isinstance(tensor, (Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a tensor, got {type(tensor).__name__}")
    if tuple(tensor.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} (as input_ids), "
            f"got {tuple(tensor.shape)}"
        )


def check_eligible(eligible: Tensor, attention_mask: Tensor) -> Tensor:
    """Checks the eligible mask and returns it as a bool tensor.

    Raises:
        ValueError: if ``eligible`` has the wrong shape or marks padding.
    """
    check_same_shape("eligible", eligible, attention_mask.shape)
    eligible = torch.as_tensor(eligible, device=attention_mask.device).bool()
    if (eligible & ~attention_mask.bool()).any():
        raise ValueError("eligible marks padding positions (attention_mask == 0)")
    return eligible


def check_operator(operator: str, mask_token_id: int | None) -> None:
    """Checks the removal operator name and that [MASK] has an id when needed."""
    if operator not in OPERATORS:
        raise ValueError(f"operator must be one of {OPERATORS}, got {operator!r}")
    if operator == "mask" and mask_token_id is None:
        raise ValueError("mask_token_id is required when operator='mask'")


def check_positive_int(name: str, value: int) -> None:
    """Checks that ``value`` is a positive integer."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def scores_to_numpy(scores: ScoresLike, shape: torch.Size) -> np.ndarray:
    """Returns per-token scores as a float64 array after checking their shape."""
    check_same_shape("scores", scores, shape)
    if isinstance(scores, Tensor):
        scores = scores.detach().cpu().double().numpy()
    return np.asarray(scores, dtype=np.float64)
