r"""Batched, counted calls of a ``predict_proba(input_ids, attention_mask)``.

The same helpers serve any ``(input_ids, attention_mask) -> (N, C)`` forward:
class probabilities for the signed removal metrics, logits for the
representation-change metrics (:mod:`~captum_sigma.evaluation.dependence`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from captum_sigma.evaluation._checks import TargetLike, check_positive_int

PredictProba = Callable[[Tensor, Tensor], Tensor]
#: ``predict_logits(input_ids, attention_mask) -> (N, C)`` class logits.
PredictLogits = Callable[[Tensor, Tensor], Tensor]


class ForwardCounter:
    r"""Wraps a forward function and counts how often it runs.

    ``calls`` counts batched calls; ``sequences`` counts the rows they carried,
    i.e. hardware-independent forward passes (a batch of 32 is 32 passes).

    Args:
        forward_func (Callable): Any function whose first argument is a batch
                (dim 0), e.g. ``predict_proba(input_ids, attention_mask)``.

    Examples::

        >>> counted = ForwardCounter(predict_proba)
        >>> comprehensiveness(counted, batch, scores, batch.removal("delete"))
        >>> counted.sequences / len(batch)  # passes per sentence
    """

    def __init__(self, forward_func: Callable[..., Tensor]) -> None:
        self.forward_func = forward_func
        self.calls = 0
        self.sequences = 0

    def __call__(self, inputs: Tensor, *args: Any, **kwargs: Any) -> Tensor:
        self.calls += 1
        self.sequences += int(inputs.shape[0])
        return self.forward_func(inputs, *args, **kwargs)

    def reset(self) -> None:
        """Sets both counts back to zero."""
        self.calls = 0
        self.sequences = 0


def predict_in_batches(
    predict_proba: PredictProba,
    input_ids: Tensor,
    attention_mask: Tensor,
    batch_size: int,
) -> Tensor:
    """Runs ``predict_proba`` under no_grad in chunks; returns (N, C) float64."""
    check_positive_int("batch_size", batch_size)
    outputs = []
    with torch.no_grad():
        for start in range(0, input_ids.shape[0], batch_size):
            stop = start + batch_size
            chunk_ids = input_ids[start:stop]
            output = predict_proba(chunk_ids, attention_mask[start:stop])
            outputs.append(_checked_output(output, chunk_ids.shape[0]))
    return torch.cat(outputs).double()


def output_rows(
    forward: PredictProba, input_ids: Tensor, attention_mask: Tensor
) -> np.ndarray:
    """One no_grad call of ``forward``; returns its (N, C) output as float64."""
    with torch.no_grad():
        output = forward(input_ids, attention_mask)
    return _checked_output(output, input_ids.shape[0]).double().cpu().numpy()


def target_probabilities(
    predict_proba: PredictProba,
    input_ids: Tensor,
    attention_mask: Tensor,
    target: Tensor,
) -> np.ndarray:
    """One no_grad call of ``predict_proba``; returns p_target per row (N,)."""
    proba = output_rows(predict_proba, input_ids, attention_mask)
    return proba[np.arange(proba.shape[0]), target.cpu().numpy()]


def full_outputs_and_target(
    forward: PredictProba,
    input_ids: Tensor,
    attention_mask: Tensor,
    target: TargetLike,
    batch_size: int,
) -> tuple[np.ndarray, Tensor]:
    r"""Every output of the unperturbed inputs and the checked target.

    Args:
        forward (Callable): ``forward(input_ids, attention_mask)`` returning
                (B, C) class probabilities or logits (their argmax is the
                predicted class either way).
        input_ids (Tensor): Token ids, shape (B, T).
        attention_mask (Tensor): Attention mask, shape (B, T).
        target (int, sequence, Tensor or None): Class per example; None means
                the predicted class.
        batch_size (int): Rows per call.

    Returns:
        (outputs, target): The (B, C) outputs as a float64 array and the
        target as a long tensor (B,) on the device of ``input_ids``.
    """
    outputs = predict_in_batches(forward, input_ids, attention_mask, batch_size)
    n_examples, n_classes = outputs.shape
    if target is None:
        target_t = outputs.argmax(dim=1)
    else:
        target_t = target_tensor(target, n_examples, n_classes)
    return outputs.cpu().numpy(), target_t.to(input_ids.device)


def full_probabilities_and_target(
    predict_proba: PredictProba,
    input_ids: Tensor,
    attention_mask: Tensor,
    target: TargetLike,
    batch_size: int,
) -> tuple[np.ndarray, Tensor]:
    r"""Probabilities of the unperturbed inputs for their target class.

    Arguments as in :func:`full_outputs_and_target`, with ``predict_proba``
    returning (B, C) class probabilities.

    Returns:
        (p_target, target): p_c(x) as float64 array (B,) and the target as a
        long tensor (B,) on the device of ``input_ids``.
    """
    proba, target_t = full_outputs_and_target(
        predict_proba, input_ids, attention_mask, target, batch_size
    )
    return proba[np.arange(proba.shape[0]), target_t.cpu().numpy()], target_t


def target_tensor(
    target: TargetLike, n_examples: int, n_classes: int | None = None
) -> Tensor:
    """``target`` as a long tensor of one class per example (checked in
    ``[0, n_classes)`` when ``n_classes`` is given)."""
    target_t = _target_tensor(target, n_examples)
    if n_classes is not None and ((target_t < 0) | (target_t >= n_classes)).any():
        raise ValueError(
            f"target must hold class indices in [0, {n_classes}), "
            f"got {target_t.tolist()}"
        )
    return target_t


def _target_tensor(target: TargetLike, n_examples: int) -> Tensor:
    if isinstance(target, bool):
        raise TypeError("target must be an int or one int per example, got bool")
    if isinstance(target, (int, np.integer)):
        return torch.full((n_examples,), int(target), dtype=torch.long)
    target_t = torch.as_tensor(
        target.detach().cpu() if isinstance(target, Tensor) else np.asarray(target)
    )
    if target_t.dim() == 0:
        return torch.full((n_examples,), int(target_t), dtype=torch.long)
    if target_t.dim() != 1 or target_t.shape[0] != n_examples:
        raise ValueError(
            f"target must be an int or hold one class per example ({n_examples}), "
            f"got shape {tuple(target_t.shape)}"
        )
    if target_t.dtype.is_floating_point or target_t.dtype == torch.bool:
        raise ValueError(f"target must hold integer classes, got {target_t.dtype}")
    return target_t.long()


def _checked_output(output: object, rows: int) -> Tensor:
    if not isinstance(output, Tensor) or output.dim() != 2 or output.shape[0] != rows:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output)
        raise ValueError(
            f"predict_proba must return a (batch, classes) tensor with {rows} rows, "
            f"got {shape}"
        )
    return output
