r"""Removal-based faithfulness metrics for per-token attribution scores.

Definitions (``docs/evaluation.md``); c is the target class (by default the
predicted class), p_c its probability and r_k the k top-ranked eligible tokens:

- comprehensiveness (ERASER, DeYoung et al. 2020, https://arxiv.org/abs/1911.03429):
  AOPC over bins of p_c(x) - p_c(x without r_k), k = ceil(bin * n). Higher is
  better.
- sufficiency: AOPC of p_c(x) - p_c(r_k only). Lower is better.
- deletion / insertion curves (Petsiuk et al. 2018, https://arxiv.org/abs/1806.07421):
  p_c after removing (inserting) the tokens one at a time in order of
  importance; area by the trapezoid rule over x = k / n in [0, 1]. Deletion
  area lower is better, insertion area higher is better.
- LeRF - MoRF: area of the least-relevant-first deletion curve minus the area
  of the most-relevant-first one. Higher is better.
- leave-one-out Kendall tau: ``scipy.stats.kendalltau`` between the scores and
  p_c(x) - p_c(x without token i). FeatureAblation with window 1 scores about 1
  here by construction.

Every metric takes the same arguments in the same order: the forward, a
:class:`~captum_sigma.evaluation.tokens.TokenBatch` (token ids, attention mask,
``eligible`` tokens and target), the scores and a
:class:`~captum_sigma.evaluation.removal.Removal` (``"delete"`` or ``"mask"``).
It ranks only ``eligible`` tokens (never [CLS]/[SEP]/padding) with ties broken
by position (earlier first), and returns one float64 value per example (NaN for
an example without eligible tokens).
All perturbed sequences of all examples are built first (identical ones once)
and run through ``predict_proba`` in chunks of ``batch_size`` under
``torch.no_grad()``; wrap ``predict_proba`` in
:class:`~captum_sigma.evaluation.forward.ForwardCounter` to count the passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from captum_sigma.evaluation._checks import (
    ScoresLike,
    check_eligible,
    check_positive_int,
    check_token_batch,
    scores_to_numpy,
)
from captum_sigma.evaluation.forward import (
    PredictProba,
    full_outputs_and_target,
    output_rows,
)
from captum_sigma.evaluation.ranking import kendall_tau, token_ranking
from captum_sigma.evaluation.removal import Removal
from captum_sigma.evaluation.tokens import TokenBatch

ERASER_BINS: tuple[float, ...] = (0.01, 0.05, 0.10, 0.20, 0.50)
_trapezoid = getattr(np, "trapezoid", None) or np.trapz


@dataclass
class _Setup:
    """Checked inputs shared by every metric of one call.

    ``predict_proba`` is whatever forward the metrics evaluate (probabilities
    for this module, logits for :mod:`~captum_sigma.evaluation.dependence`);
    ``full_outputs`` are its (B, C) outputs on the unperturbed inputs and
    ``full_proba`` their ``target`` column.
    """

    predict_proba: PredictProba
    input_ids: Tensor
    attention_mask: Tensor
    scores: np.ndarray
    eligible_positions: list[np.ndarray]
    rankings: list[np.ndarray]
    target: Tensor
    full_outputs: np.ndarray
    full_proba: np.ndarray
    removal: Removal
    batch_size: int


def _setup(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    batch_size: int,
) -> _Setup:
    if not isinstance(batch, TokenBatch):
        raise TypeError(
            "batch must be a TokenBatch (TokenBatch.build(input_ids, "
            f"attention_mask, eligible, target)), got {type(batch).__name__}"
        )
    if not isinstance(removal, Removal):
        raise TypeError(
            "removal must be a Removal (e.g. Removal('delete', pad_token_id=0)), "
            f"got {type(removal).__name__}"
        )
    input_ids, attention_mask = batch.input_ids, batch.attention_mask
    check_token_batch(input_ids, attention_mask)
    eligible = check_eligible(batch.eligible, attention_mask)
    scores_np = scores_to_numpy(scores, input_ids.shape)
    check_positive_int("batch_size", batch_size)
    full_outputs, target_t = full_outputs_and_target(
        predict_proba, input_ids, attention_mask, batch.target, batch_size
    )
    eligible_np = eligible.cpu().numpy()
    return _Setup(
        predict_proba=predict_proba,
        input_ids=input_ids,
        attention_mask=attention_mask,
        scores=scores_np,
        eligible_positions=[np.flatnonzero(row) for row in eligible_np],
        rankings=token_ranking(scores_np, eligible),
        target=target_t,
        full_outputs=full_outputs,
        full_proba=full_outputs[
            np.arange(full_outputs.shape[0]), target_t.cpu().numpy()
        ],
        removal=removal,
        batch_size=batch_size,
    )


class _RemovalRequests:
    """Removal sets to evaluate, deduplicated per example, evaluated in batches."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, bytes], int] = {}
        self._examples: list[int] = []
        self._positions: list[np.ndarray] = []

    def add(self, example: int, positions: np.ndarray) -> int:
        """Registers "example without the tokens at positions"; returns its row."""
        positions = np.sort(np.asarray(positions, dtype=np.int64))
        key = (example, positions.tobytes())
        if key not in self._rows:
            self._rows[key] = len(self._examples)
            self._examples.append(example)
            self._positions.append(positions)
        return self._rows[key]

    @property
    def examples(self) -> np.ndarray:
        """The example of every registered row, (rows,) int64."""
        return np.asarray(self._examples, dtype=np.int64)

    def outputs(self, setup: _Setup) -> np.ndarray:
        """Returns the (rows, C) outputs of every registered perturbed sequence.

        A row that removes nothing is the original sequence: its outputs are
        ``setup.full_outputs`` (no forward pass). Float64.
        """
        n_classes = setup.full_outputs.shape[1]
        outputs = np.empty((len(self._examples), n_classes), dtype=np.float64)
        pending = []
        for row, (example, positions) in enumerate(
            zip(self._examples, self._positions)
        ):
            if positions.size == 0:  # nothing removed: the original sequence
                outputs[row] = setup.full_outputs[example]
            else:
                pending.append(row)
        n_tokens = setup.input_ids.shape[1]
        device = setup.input_ids.device
        for start in range(0, len(pending), setup.batch_size):
            rows = pending[start : start + setup.batch_size]
            examples = torch.tensor([self._examples[r] for r in rows], device=device)
            remove = np.zeros((len(rows), n_tokens), dtype=bool)
            for i, row in enumerate(rows):
                remove[i, self._positions[row]] = True
            ids, mask = setup.removal.apply(
                setup.input_ids[examples],
                setup.attention_mask[examples],
                torch.from_numpy(remove).to(device),
            )
            outputs[rows] = output_rows(setup.predict_proba, ids, mask)
        return outputs

    def evaluate(self, setup: _Setup) -> np.ndarray:
        """Returns p_c of every registered perturbed sequence (float64)."""
        outputs = self.outputs(setup)
        target = setup.target.cpu().numpy()[self.examples]
        return outputs[np.arange(outputs.shape[0]), target]


def comprehensiveness(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 64,
) -> np.ndarray:
    r"""Comprehensiveness AOPC: mean over bins of p_c(x) - p_c(x without r_k).

    Higher is better.

    Args:
        predict_proba (Callable): ``predict_proba(input_ids, attention_mask)``
                returning (N, C) class probabilities.
        batch (TokenBatch): ``input_ids`` (B, T), right-padded;
                ``attention_mask``; ``eligible``, the tokens that may be ranked
                and removed (see
                :func:`~captum_sigma.evaluation.removal.eligible_token_mask`);
                ``target``, the class per example (None: the predicted class).
                Build it with ``TokenBatch.build(input_ids, attention_mask,
                eligible, target)``.
        scores (Tensor or ndarray): Per-token attribution scores, shape (B, T);
                higher means more important for the target.
        removal (Removal): ``Removal("delete", pad_token_id=...)`` or
                ``Removal("mask", mask_token_id=...)``, e.g.
                ``batch.removal("mask")``.
        bins (sequence of float, optional): Fractions in (0, 1] of the eligible
                tokens to remove, k = ceil(bin * n). Default: ERASER's
                (0.01, 0.05, 0.10, 0.20, 0.50).
        batch_size (int, optional): Sequences per ``predict_proba`` call.
                Default: 64.

    Returns:
        values (ndarray): Float64 array of shape (B,).

    Examples::

        >>> batch = TokenBatch.build(input_ids, attention_mask, eligible)
        >>> comprehensiveness(predict_proba, batch, scores, Removal("delete"))
    """
    setup = _setup(predict_proba, batch, scores, removal, batch_size)
    requests = _RemovalRequests()
    rows = _top_k_rows(setup, requests, _check_bins(bins), keep=False)
    return _aopc(setup.full_proba, requests.evaluate(setup), rows)


def sufficiency(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 64,
) -> np.ndarray:
    r"""Sufficiency AOPC: mean over bins of p_c(x) - p_c(r_k only).

    Every other eligible token is removed; special tokens stay. Lower is better.
    Arguments as in :func:`comprehensiveness`.

    Returns:
        values (ndarray): Float64 array of shape (B,).
    """
    setup = _setup(predict_proba, batch, scores, removal, batch_size)
    requests = _RemovalRequests()
    rows = _top_k_rows(setup, requests, _check_bins(bins), keep=True)
    return _aopc(setup.full_proba, requests.evaluate(setup), rows)


def deletion_curve(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    batch_size: int = 64,
) -> list[np.ndarray]:
    r"""p_c after deleting the k most relevant tokens, for k = 0..n.

    Arguments as in :func:`comprehensiveness` (without ``bins``).

    Returns:
        curves (list[ndarray]): Per example, float64 values of length n + 1
        (n = its number of eligible tokens); point k lies at x = k / n. Use
        :func:`curve_area` for the area and :func:`resample_curves` for bands.
    """
    setup = _setup(predict_proba, batch, scores, removal, batch_size)
    requests = _RemovalRequests()
    rows = _curve_rows(setup, requests, "deletion")
    return _curves(requests.evaluate(setup), rows)


def insertion_curve(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    batch_size: int = 64,
) -> list[np.ndarray]:
    r"""p_c with only the k most relevant tokens inserted, for k = 0..n.

    Point 0 has every eligible token removed (deleted, or all [MASK]); point n
    is the original input. Arguments as in :func:`comprehensiveness` (without
    ``bins``).

    Returns:
        curves (list[ndarray]): Per example, float64 values of length n + 1.
    """
    setup = _setup(predict_proba, batch, scores, removal, batch_size)
    requests = _RemovalRequests()
    rows = _curve_rows(setup, requests, "insertion")
    return _curves(requests.evaluate(setup), rows)


def deletion_auc(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    r"""Area under the deletion curve (MoRF), x in [0, 1]. Lower is better.

    Arguments as in :func:`comprehensiveness` (without ``bins``).

    Returns:
        values (ndarray): Float64 array of shape (B,).
    """
    return _areas(
        deletion_curve(predict_proba, batch, scores, removal, batch_size=batch_size)
    )


def insertion_auc(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    r"""Area under the insertion curve, x in [0, 1]. Higher is better.

    Arguments as in :func:`comprehensiveness` (without ``bins``).

    Returns:
        values (ndarray): Float64 array of shape (B,).
    """
    return _areas(
        insertion_curve(predict_proba, batch, scores, removal, batch_size=batch_size)
    )


def lerf_minus_morf(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    r"""Area of the LeRF deletion curve minus area of the MoRF one. Higher is better.

    The least-relevant-first order is the exact reverse of the most-relevant-first
    ranking (ties therefore go to the later token first), so removing the k least
    relevant tokens leaves the n - k most relevant ones and, with the same
    operator, LeRF - MoRF equals insertion area - deletion area.
    Arguments as in :func:`comprehensiveness` (without ``bins``).

    Returns:
        values (ndarray): Float64 array of shape (B,).
    """
    setup = _setup(predict_proba, batch, scores, removal, batch_size)
    requests = _RemovalRequests()
    morf_rows = _curve_rows(setup, requests, "deletion")
    lerf_rows = _curve_rows(setup, requests, "lerf")
    proba = requests.evaluate(setup)
    morf, lerf = _curves(proba, morf_rows), _curves(proba, lerf_rows)
    return np.array([curve_area(le) - curve_area(mo) for le, mo in zip(lerf, morf)])


def leave_one_out_tau(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    batch_size: int = 64,
) -> np.ndarray:
    r"""Kendall tau between the scores and leave-one-out drops of p_c.

    The drop of token i is p_c(x) - p_c(x without token i), over the eligible
    tokens (``scipy.stats.kendalltau``, tau-b; ferret's ``taucorr_loo``). NaN
    for fewer than two eligible tokens or constant scores. FeatureAblation
    (window 1, same operator) scores 1 by construction. Arguments as in
    :func:`comprehensiveness` (without ``bins``).

    Returns:
        values (ndarray): Float64 array of shape (B,).
    """
    setup = _setup(predict_proba, batch, scores, removal, batch_size)
    requests = _RemovalRequests()
    rows = _leave_one_out_rows(setup, requests)
    return _leave_one_out_tau(setup, requests.evaluate(setup), rows)


@dataclass
class FaithfulnessResult:
    r"""Every removal metric of a batch, computed from shared forward passes.

    Attributes:
        comprehensiveness (ndarray): AOPC, higher is better, shape (B,).
        sufficiency (ndarray): AOPC, lower is better, shape (B,).
        deletion_auc (ndarray): Lower is better, shape (B,).
        insertion_auc (ndarray): Higher is better, shape (B,).
        lerf_minus_morf (ndarray): Higher is better, shape (B,).
        loo_tau (ndarray): Leave-one-out Kendall tau, higher is better, (B,).
        deletion_curves (list[ndarray]): Per example, length n + 1.
        insertion_curves (list[ndarray]): Per example, length n + 1.
    """

    comprehensiveness: np.ndarray
    sufficiency: np.ndarray
    deletion_auc: np.ndarray
    insertion_auc: np.ndarray
    lerf_minus_morf: np.ndarray
    loo_tau: np.ndarray
    deletion_curves: list[np.ndarray]
    insertion_curves: list[np.ndarray]

    def metrics(self) -> dict[str, np.ndarray]:
        """The per-example metrics by name (without the curves)."""
        return {
            "comprehensiveness": self.comprehensiveness,
            "sufficiency": self.sufficiency,
            "deletion_auc": self.deletion_auc,
            "insertion_auc": self.insertion_auc,
            "lerf_minus_morf": self.lerf_minus_morf,
            "loo_tau": self.loo_tau,
        }


def faithfulness_metrics(
    predict_proba: PredictProba,
    batch: TokenBatch,
    scores: ScoresLike,
    removal: Removal,
    *,
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 64,
) -> FaithfulnessResult:
    r"""All removal metrics at once, sharing identical perturbed sequences.

    Gives the same values as the single-metric functions. Identical perturbed
    sequences run once, so a sentence with n eligible tokens costs fewer than
    3 n forward passes instead of more than 5 n when the metrics are called one
    by one.
    Arguments as in :func:`comprehensiveness`.

    Returns:
        FaithfulnessResult: Metrics and curves per example.
    """
    setup = _setup(predict_proba, batch, scores, removal, batch_size)
    bins = _check_bins(bins)
    requests = _RemovalRequests()
    comp_rows = _top_k_rows(setup, requests, bins, keep=False)
    suff_rows = _top_k_rows(setup, requests, bins, keep=True)
    deletion_rows = _curve_rows(setup, requests, "deletion")
    insertion_rows = _curve_rows(setup, requests, "insertion")
    lerf_rows = _curve_rows(setup, requests, "lerf")
    loo_rows = _leave_one_out_rows(setup, requests)
    proba = requests.evaluate(setup)
    deletion = _curves(proba, deletion_rows)
    insertion = _curves(proba, insertion_rows)
    deletion_area = _areas(deletion)
    lerf_area = _areas(_curves(proba, lerf_rows))
    return FaithfulnessResult(
        comprehensiveness=_aopc(setup.full_proba, proba, comp_rows),
        sufficiency=_aopc(setup.full_proba, proba, suff_rows),
        deletion_auc=deletion_area,
        insertion_auc=_areas(insertion),
        lerf_minus_morf=lerf_area - deletion_area,
        loo_tau=_leave_one_out_tau(setup, proba, loo_rows),
        deletion_curves=deletion,
        insertion_curves=insertion,
    )


def curve_area(curve: np.ndarray) -> float:
    r"""Trapezoid area of a curve sampled at x = k / n, k = 0..n, over [0, 1].

    Args:
        curve (ndarray): Values of length n + 1.

    Returns:
        area (float): NaN for a curve with fewer than two points.
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.size < 2:
        return float("nan")
    return float(_trapezoid(curve, x=np.linspace(0.0, 1.0, curve.size)))


def resample_curves(curves: Sequence[np.ndarray], n_points: int = 101) -> np.ndarray:
    r"""Linearly interpolates curves of different lengths onto one x grid.

    Args:
        curves (sequence of ndarray): Curves sampled at x = k / n, k = 0..n.
        n_points (int, optional): Grid points on [0, 1]. Default: 101.

    Returns:
        values (ndarray): Shape (len(curves), n_points); rows of curves with
        fewer than two points are NaN. Use it for mean curves and bands.
    """
    check_positive_int("n_points", n_points)
    grid = np.linspace(0.0, 1.0, n_points)
    resampled = np.full((len(curves), n_points), np.nan)
    for i, curve in enumerate(curves):
        curve = np.asarray(curve, dtype=np.float64)
        if curve.size >= 2:
            resampled[i] = np.interp(grid, np.linspace(0.0, 1.0, curve.size), curve)
    return resampled


def _check_bins(bins: Sequence[float]) -> tuple[float, ...]:
    try:
        values = tuple(float(b) for b in bins)
    except (TypeError, ValueError):
        raise ValueError(f"bins must be a sequence of floats, got {bins!r}") from None
    if not values or not all(0.0 < b <= 1.0 for b in values):
        raise ValueError(f"bins must be non-empty with values in (0, 1], got {bins!r}")
    return values


def _bin_sizes(bins: Sequence[float], n_tokens: int) -> list[int]:
    """k = ceil(bin * n) per bin, robust to float error (0.1 * 30 -> 3)."""
    return [min(n_tokens, max(1, math.ceil(round(b * n_tokens, 9)))) for b in bins]


def _top_k_rows(
    setup: _Setup, requests: _RemovalRequests, bins: Sequence[float], keep: bool
) -> list[list[int] | None]:
    """Rows removing the top k (keep=False) or all but the top k (keep=True)."""
    rows: list[list[int] | None] = []
    for example, ranking in enumerate(setup.rankings):
        if ranking.size == 0:
            rows.append(None)
            continue
        sizes = _bin_sizes(bins, ranking.size)
        rows.append(
            [requests.add(example, ranking[k:] if keep else ranking[:k]) for k in sizes]
        )
    return rows


def _curve_rows(
    setup: _Setup, requests: _RemovalRequests, kind: str
) -> list[list[int]]:
    """Rows of the k = 0..n points of a "deletion", "insertion" or "lerf" curve."""
    rows = []
    for example, ranking in enumerate(setup.rankings):
        n = ranking.size
        if kind == "deletion":  # remove the k most relevant
            removed = [ranking[:k] for k in range(n + 1)]
        elif kind == "insertion":  # keep only the k most relevant
            removed = [ranking[k:] for k in range(n + 1)]
        else:  # "lerf": remove the k least relevant
            removed = [ranking[n - k :] for k in range(n + 1)]
        rows.append([requests.add(example, positions) for positions in removed])
    return rows


def _leave_one_out_rows(setup: _Setup, requests: _RemovalRequests) -> list[list[int]]:
    return [
        [requests.add(example, positions[i : i + 1]) for i in range(positions.size)]
        for example, positions in enumerate(setup.eligible_positions)
    ]


def _aopc(
    full_proba: np.ndarray, proba: np.ndarray, rows: list[list[int] | None]
) -> np.ndarray:
    return np.array(
        [
            np.nan if r is None else float(np.mean(full_proba[i] - proba[r]))
            for i, r in enumerate(rows)
        ]
    )


def _curves(proba: np.ndarray, rows: list[list[int]]) -> list[np.ndarray]:
    return [proba[r] for r in rows]


def _areas(curves: Sequence[np.ndarray]) -> np.ndarray:
    """:func:`curve_area` of every curve, float64 (B,)."""
    return np.array([curve_area(curve) for curve in curves])


def _leave_one_out_tau(
    setup: _Setup, proba: np.ndarray, rows: list[list[int]]
) -> np.ndarray:
    taus = []
    for example, positions in enumerate(setup.eligible_positions):
        drops = setup.full_proba[example] - proba[rows[example]]
        taus.append(kendall_tau(setup.scores[example, positions], drops))
    return np.array(taus, dtype=np.float64)
