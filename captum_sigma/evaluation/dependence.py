r"""Unsigned removal metrics: how much removing tokens changes the output at all.

The signed metrics of :mod:`~captum_sigma.evaluation.faithfulness` measure the
drop p_c(x) - p_c(x') of the explained class's probability, which rewards
signed, class-specific scores. The two families here ask another question,
the one Sigma answers: how much of the top-ranked tokens' information reaches
the explained output, in any direction. Definitions (``docs/evaluation.md``);
c is the target class (by default the predicted class), r_k the k top-ranked
eligible tokens and x' a perturbed input:

- **distribution change** Δ(x, x') = ½ Σ_j |p_j(x) - p_j(x')|, the total
  variation between the predictive distributions (softmax of the logits); for
  two classes it equals |p_c(x) - p_c(x')|.
- **representation change** D(x, x') = ((z_c(x') - z_c(x)) / r_c)², with z_c
  the logit of the explained class and r_c the standard deviation of that
  logit over a data sample (``TextExplainer(model, tokenizer, output="logit",
  data=default_data_sample()).regularization()``). This is **Sigma's own
  objective** for the logit / r (the explainer default until the configuration
  study; ``output="logit"``): it explains z_c / r_c and its loss is the
  mean of exactly this squared change under Gaussian noise on the token
  embeddings; here the change is caused by deletion or [MASK] instead of noise.
  Read these metrics as **home ground for Sigma**.

For each change f (prefix ``dist_`` for Δ, ``repr_`` for D):

- ``*_comprehensiveness``: mean over the ERASER bins of f(x, x without r_k),
  k = ceil(bin * n). Higher is better.
- ``*_sufficiency``: mean over the bins of f(x, r_k only). Lower is better.
- ``*_deletion_auc``: area of k -> f(x, x without the top k), k = 0..n, at
  x = k / n (trapezoid rule). Higher is better: an important-first order
  changes the output fast.
- ``*_insertion_auc``: area of k -> f(x, only the top k inserted), k = 0..n.
  Lower is better.

Ranking, removal operators, bins, deduplication of identical perturbed
sequences and NaN for an example without eligible tokens are those of
:mod:`~captum_sigma.evaluation.faithfulness` (the same request machinery); the
perturbed sequences are exactly those of the signed metrics of the same name,
so behind a shared cache (as in :func:`~captum_sigma.evaluation.compare`) these
metrics cost no extra forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Union

import numpy as np
from torch import Tensor

from captum_sigma.evaluation._checks import ScoresLike
from captum_sigma.evaluation.faithfulness import (
    ERASER_BINS,
    _areas,
    _check_bins,
    _curve_rows,
    _RemovalRequests,
    _setup,
    _top_k_rows,
)
from captum_sigma.evaluation.forward import PredictLogits
from captum_sigma.evaluation.removal import Removal
from captum_sigma.evaluation.tokens import TokenBatch

__all__ = [
    "DEPENDENCE_METRICS",
    "DependenceResult",
    "dependence_metrics",
    "distribution_change",
    "representation_change",
]

RegularizationLike = Union[float, Sequence[float], Tensor, np.ndarray]

#: The metrics of :class:`DependenceResult`, in order.
DEPENDENCE_METRICS: tuple[str, ...] = tuple(
    f"{family}_{metric}"
    for family in ("dist", "repr")
    for metric in ("comprehensiveness", "sufficiency", "deletion_auc", "insertion_auc")
)


def distribution_change(proba: np.ndarray, perturbed: np.ndarray) -> np.ndarray:
    r"""Total variation ½ Σ_j |p_j - q_j| between predictive distributions.

    Args:
        proba (ndarray): Class probabilities of the inputs, shape (..., C).
        perturbed (ndarray): Class probabilities of the perturbed inputs,
                same shape.

    Returns:
        change (ndarray): Float64, shape (...), in [0, 1].
    """
    difference = np.asarray(proba, np.float64) - np.asarray(perturbed, np.float64)
    return 0.5 * np.abs(difference).sum(axis=-1)


def representation_change(
    logit: np.ndarray, perturbed: np.ndarray, regularization: np.ndarray
) -> np.ndarray:
    r"""Sigma's squared normalised change ((z' - z) / r)² of an explained logit.

    Args:
        logit (ndarray): z_c of the inputs, shape (N,).
        perturbed (ndarray): z_c of the perturbed inputs, shape (N,).
        regularization (ndarray): r_c per row (or one value), positive.

    Returns:
        change (ndarray): Float64, shape (N,).
    """
    logit = np.asarray(logit, np.float64)
    delta = np.asarray(perturbed, np.float64) - logit
    return (delta / np.asarray(regularization, np.float64)) ** 2


@dataclass
class DependenceResult:
    r"""The distribution- and representation-change metrics of a batch.

    Attributes:
        dist_comprehensiveness (ndarray): Higher is better, shape (B,).
        dist_sufficiency (ndarray): Lower is better, shape (B,).
        dist_deletion_auc (ndarray): Higher is better, shape (B,).
        dist_insertion_auc (ndarray): Lower is better, shape (B,).
        repr_comprehensiveness (ndarray): Higher is better, shape (B,).
        repr_sufficiency (ndarray): Lower is better, shape (B,).
        repr_deletion_auc (ndarray): Higher is better, shape (B,).
        repr_insertion_auc (ndarray): Lower is better, shape (B,).
        curves (dict[str, list[ndarray]]): ``"dist_deletion"``,
                ``"dist_insertion"``, ``"repr_deletion"`` and
                ``"repr_insertion"``: per example, the change at k = 0..n
                (length n + 1; empty when curves were not computed).
    """

    dist_comprehensiveness: np.ndarray
    dist_sufficiency: np.ndarray
    dist_deletion_auc: np.ndarray
    dist_insertion_auc: np.ndarray
    repr_comprehensiveness: np.ndarray
    repr_sufficiency: np.ndarray
    repr_deletion_auc: np.ndarray
    repr_insertion_auc: np.ndarray
    curves: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def metrics(self) -> dict[str, np.ndarray]:
        """The per-example metrics by name (:data:`DEPENDENCE_METRICS`)."""
        return {name: getattr(self, name) for name in DEPENDENCE_METRICS}


def dependence_metrics(
    predict_logits: PredictLogits,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    regularization: RegularizationLike,
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 64,
    curves: bool = True,
) -> DependenceResult:
    r"""Distribution- and representation-change metrics, from one set of passes.

    Both families read the same perturbed sequences (top-k removed, top-k
    kept, and with ``curves`` every point of the deletion and insertion
    curves), each run once: the representation change from the target's logit,
    the distribution change from the softmax (float64) of every logit.

    Args:
        predict_logits (Callable): ``predict_logits(input_ids, attention_mask)``
                returning (N, C) class logits (e.g.
                ``classifier_forward(model, "logit")``).
        batch (TokenBatch): Token ids, attention mask, eligible tokens and
                target (None: the predicted class), as in
                :func:`~captum_sigma.evaluation.faithfulness.comprehensiveness`.
        scores (Tensor or ndarray): Per-token attribution scores, shape (B, T);
                higher means more important.
        removal (Removal): The removal operator, e.g. ``Removal("delete")``.
        regularization (float, sequence, Tensor or ndarray): r, the standard
                deviation of each class's logit over a data sample, shape (C,)
                (or one positive value for every class), e.g.
                ``TextExplainer(model, tokenizer, data=default_data_sample())
                .regularization()``.
        bins (sequence of float, optional): Fractions in (0, 1] of the eligible
                tokens, k = ceil(bin * n). Default: ERASER's.
        batch_size (int, optional): Sequences per ``predict_logits`` call.
                Default: 64.
        curves (bool, optional): Also the deletion and insertion curves and
                their areas; False leaves the areas NaN and the curves empty
                (only comprehensiveness and sufficiency, fewer passes).
                Default: True.

    Returns:
        DependenceResult: Metrics and curves per example.

    Examples::

        >>> explainer = TextExplainer(model, tokenizer, data=sample, output="logit")
        >>> r = explainer.regularization()
        >>> batch = TokenBatch.build(input_ids, attention_mask, eligible)
        >>> result = dependence_metrics(
        ...     classifier_forward(model, "logit"), batch, scores,
        ...     Removal("delete"), regularization=r,
        ... )
        >>> result.repr_comprehensiveness  # higher is better
    """
    setup = _setup(predict_logits, batch, scores, removal, batch_size)
    bins = _check_bins(bins)
    n_examples, n_classes = setup.full_outputs.shape
    r = _check_regularization(regularization, n_classes)
    requests = _RemovalRequests()
    comp_rows = _top_k_rows(setup, requests, bins, keep=False)
    suff_rows = _top_k_rows(setup, requests, bins, keep=True)
    if curves:
        deletion_rows = _curve_rows(setup, requests, "deletion")
        insertion_rows = _curve_rows(setup, requests, "insertion")
    logits = requests.outputs(setup)
    examples = requests.examples
    target = setup.target.cpu().numpy()
    rows, classes = np.arange(examples.size), target[examples]
    original = setup.full_outputs[examples]
    change = {
        "dist": distribution_change(_softmax(original), _softmax(logits)),
        "repr": representation_change(
            original[rows, classes], logits[rows, classes], r[classes]
        ),
    }
    values: dict[str, np.ndarray] = {}
    curve_values: dict[str, list[np.ndarray]] = {}
    no_curve = [np.zeros(0)] * n_examples
    for family, by_row in change.items():
        values[f"{family}_comprehensiveness"] = _mean_per_example(by_row, comp_rows)
        values[f"{family}_sufficiency"] = _mean_per_example(by_row, suff_rows)
        for kind in ("deletion", "insertion"):
            if curves:
                kind_rows = deletion_rows if kind == "deletion" else insertion_rows
                per_example = [by_row[index] for index in kind_rows]
                areas = _areas(per_example)
            else:
                per_example, areas = list(no_curve), np.full(n_examples, np.nan)
            curve_values[f"{family}_{kind}"] = per_example
            values[f"{family}_{kind}_auc"] = areas
    return DependenceResult(**values, curves=curve_values)


def _check_regularization(
    regularization: RegularizationLike, n_classes: int
) -> np.ndarray:
    """r as a float64 array of shape (C,), every entry finite and positive."""
    if isinstance(regularization, Tensor):
        regularization = regularization.detach().cpu().double().numpy()
    try:
        r = np.asarray(regularization, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"regularization must hold numbers, got {type(regularization).__name__}"
        ) from None
    if r.ndim == 0:
        r = np.full(n_classes, float(r))
    if r.shape != (n_classes,):
        raise ValueError(
            f"regularization must have shape ({n_classes},) (one r per class), "
            f"got {r.shape}"
        )
    if not (np.isfinite(r) & (r > 0)).all():
        raise ValueError(f"regularization must be finite and positive, got {r}")
    return r


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _mean_per_example(values: np.ndarray, rows: list[list[int] | None]) -> np.ndarray:
    return np.array(
        [np.nan if r is None else float(np.mean(values[r])) for r in rows],
        dtype=np.float64,
    )
