r"""The result type of :func:`~captum_sigma.evaluation.compare`: every compared
method's scores, metrics and costs, and the metric names and families it holds.

Split from the runner (:mod:`~captum_sigma.evaluation.compare`) so that reading a
result (tables, plots, the report) needs none of the running machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from captum_sigma.evaluation.dependence import DEPENDENCE_METRICS
from captum_sigma.evaluation.ranking import SeedStability
from captum_sigma.evaluation.stats import Interval, bootstrap_interval

__all__ = [
    "METRICS",
    "METRIC_FAMILIES",
    "METRIC_FAMILY_LABELS",
    "STABILITY_METRICS",
    "ComparisonResult",
]

#: Removal metrics: name -> (table label, higher is better). Three families
#: (:data:`METRIC_FAMILIES`): the signed drop of p_c, the distribution change
#: (total variation) and the representation change ((Δz_c / r_c)², Sigma's own
#: objective: home ground for Sigma).
METRICS: dict[str, tuple[str, bool]] = {
    "comprehensiveness": ("Comprehensiveness ↑", True),
    "sufficiency": ("Sufficiency ↓", False),
    "deletion_auc": ("Deletion AUC ↓", False),
    "insertion_auc": ("Insertion AUC ↑", True),
    "lerf_minus_morf": ("LeRF − MoRF ↑", True),
    "loo_tau": ("LOO Kendall τ ↑", True),
    "dist_comprehensiveness": ("Δ-distribution comprehensiveness ↑", True),
    "dist_sufficiency": ("Δ-distribution sufficiency ↓", False),
    "dist_deletion_auc": ("Δ-distribution deletion AUC ↑", True),
    "dist_insertion_auc": ("Δ-distribution insertion AUC ↓", False),
    "repr_comprehensiveness": ("Δ-representation comprehensiveness ↑", True),
    "repr_sufficiency": ("Δ-representation sufficiency ↓", False),
    "repr_deletion_auc": ("Δ-representation deletion AUC ↑", True),
    "repr_insertion_auc": ("Δ-representation insertion AUC ↓", False),
}
#: The metrics of each family, in :data:`METRICS` order: ``"signed"`` (drop of
#: p_c, :mod:`~captum_sigma.evaluation.faithfulness`), ``"distribution"``
#: (total variation between the predictive distributions) and
#: ``"representation"`` (((z_c(x') - z_c(x)) / r_c)², Sigma's own objective
#: measured with deletion instead of noise: home ground for Sigma; both
#: :mod:`~captum_sigma.evaluation.dependence`).
METRIC_FAMILIES: dict[str, tuple[str, ...]] = {
    "signed": (
        "comprehensiveness",
        "sufficiency",
        "deletion_auc",
        "insertion_auc",
        "lerf_minus_morf",
        "loo_tau",
    ),
    "distribution": DEPENDENCE_METRICS[:4],
    "representation": DEPENDENCE_METRICS[4:],
}
#: How tables and summaries name each family.
METRIC_FAMILY_LABELS: dict[str, str] = {
    "signed": "signed (drop of p_c)",
    "distribution": "distribution change",
    "representation": "representation change (home ground for Sigma)",
}
#: Seed-stability metrics: name -> (table label, higher is better).
STABILITY_METRICS: dict[str, tuple[str, bool]] = {
    "seed_tau": ("Seed Kendall τ ↑", True),
    "seed_top3": ("Seed top-3 overlap ↑", True),
}


@dataclass
class ComparisonResult:
    r"""Scores, metrics and costs of every compared method (sentences in input order).

    Attributes:
        texts (list[str]): The sentences.
        tokens (list[list[str]]): Attended tokens of each sentence.
        input_ids (ndarray): Token ids, (B, T).
        attention_mask (ndarray): (B, T).
        eligible (ndarray): Bool, rankable tokens, (B, T).
        target (ndarray): Explained (predicted) class per sentence, (B,).
        target_proba (ndarray): p_target(x) per sentence, (B,).
        labels (ndarray or None): True labels when given, (B,).
        methods (list[str]): Method names, in run order.
        rows (list[str]): Table rows: each method, then ``"|name|"`` for a
                signed one.
        signed (dict[str, bool]): Per method.
        stochastic (dict[str, bool]): Per method.
        scores (dict[str, ndarray]): Per row, (B, T) float64, 0 where not
                eligible.
        metrics (dict): ``metrics[operator][row][metric]`` -> (B,) values,
                every metric of :data:`METRICS` (a result scored before a
                family existed lacks its metrics: see :attr:`metric_names`).
        curves (dict): ``curves[operator][row]`` -> (deletion curves,
                insertion curves) of p_c, one array per sentence.
        seconds (dict[str, ndarray]): Per method, seconds per sentence of each
                batch.
        passes (dict[str, tuple[float, float]]): Per method, mean (forward,
                backward) passes per sentence; NaN when not counted.
        stability (dict[str, SeedStability]): Per stochastic method, seed vs
                seed + 1 on the sentences ``stability_indices``.
        stability_indices (ndarray): Sentences of the seed-stability runs.
        convergence_delta (dict[str, ndarray]): ``|delta|`` per sentence of the
                methods that report one (IntegratedGradients).
        settings (dict): Every setting of the run, for the report.
        dependence_curves (dict): ``dependence_curves[operator][row][name]``
                -> one curve per sentence, for ``name`` in ``"dist_deletion"``,
                ``"dist_insertion"``, ``"repr_deletion"`` and
                ``"repr_insertion"`` (the change Δ or D at k = 0..n); see
                :meth:`family_curves`.
    """

    texts: list[str]
    tokens: list[list[str]]
    input_ids: np.ndarray
    attention_mask: np.ndarray
    eligible: np.ndarray
    target: np.ndarray
    target_proba: np.ndarray
    labels: np.ndarray | None
    methods: list[str]
    rows: list[str]
    signed: dict[str, bool]
    stochastic: dict[str, bool]
    scores: dict[str, np.ndarray]
    metrics: dict[str, dict[str, dict[str, np.ndarray]]]
    curves: dict[str, dict[str, tuple[list, list]]]
    seconds: dict[str, np.ndarray]
    passes: dict[str, tuple[float, float]]
    stability: dict[str, SeedStability]
    stability_indices: np.ndarray
    convergence_delta: dict[str, np.ndarray]
    settings: dict[str, Any] = field(default_factory=dict)
    dependence_curves: dict[str, dict[str, dict[str, list]]] = field(
        default_factory=dict
    )

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickles results pickled before a field existed (it gets its default)."""
        self.__dict__.update({"dependence_curves": {}, **state})

    @property
    def operators(self) -> list[str]:
        """The removal operators that were scored."""
        return list(self.metrics)

    @property
    def metric_names(self) -> list[str]:
        """The metrics (keys of :data:`METRICS`) every operator and row holds.

        Empty without metrics; a result scored before a family existed lacks
        that family's metrics.
        """
        held = [
            set(by_metric)
            for by_row in self.metrics.values()
            for by_metric in by_row.values()
        ]
        if not held:
            return []
        common = set.intersection(*held)
        return [name for name in METRICS if name in common]

    @property
    def families(self) -> list[str]:
        """The families of :data:`METRIC_FAMILIES` whose metrics were all scored."""
        names = set(self.metric_names)
        return [
            family
            for family, metrics in METRIC_FAMILIES.items()
            if names.issuperset(metrics)
        ]

    def family_curves(
        self, operator: str, row: str, family: str = "signed"
    ) -> tuple[list, list]:
        r"""Deletion and insertion curves of one row in one metric family.

        Args:
            operator (str): Removal operator.
            row (str): Table row.
            family (str, optional): ``"signed"`` (p_c), ``"distribution"`` (Δ)
                    or ``"representation"`` (D). Default: "signed".

        Returns:
            (deletion, insertion): One curve per sentence (empty arrays where
            the curves were not computed).
        """
        if family == "signed":
            return self.curves[operator][row]
        prefix = {"distribution": "dist", "representation": "repr"}.get(family)
        if prefix is None:
            raise ValueError(
                f"family must be one of {list(METRIC_FAMILIES)}, got {family!r}"
            )
        by_name = self.dependence_curves[operator][row]
        return by_name[f"{prefix}_deletion"], by_name[f"{prefix}_insertion"]

    def method_of(self, row: str) -> str:
        """The method behind a table row (``"|IG|"`` -> ``"IG"``)."""
        if row.startswith("|") and row.endswith("|") and row[1:-1] in self.signed:
            return row[1:-1]
        return row

    def interval(
        self, operator: str, row: str, metric: str, *, seed: int = 0
    ) -> Interval:
        r"""Mean and 95 % bootstrap interval of one metric of one row.

        Args:
            operator (str): Removal operator.
            row (str): Table row.
            metric (str): A key of :data:`METRICS`.
            seed (int, optional): Bootstrap seed. Default: 0.

        Returns:
            Interval: Over the sentences.
        """
        return bootstrap_interval(self.metrics[operator][row][metric], seed=seed)

    def stability_values(self, method: str, metric: str) -> np.ndarray:
        """Per-sentence seed-stability values (``seed_tau`` or ``seed_top3``)."""
        stability = self.stability[method]
        if metric == "seed_tau":
            return stability.kendall_tau
        if metric == "seed_top3":
            return stability.top_k_overlap
        raise ValueError(f"metric must be one of {list(STABILITY_METRICS)}")

    def median_seconds(self, method: str) -> float:
        """Median seconds per sentence of a method."""
        return float(np.median(self.seconds[method]))

    def accuracy(self) -> float:
        """Accuracy of the predicted classes against ``labels`` (NaN without)."""
        if self.labels is None:
            return float("nan")
        return float(np.mean(self.target == self.labels))
