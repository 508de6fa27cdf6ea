r"""Metrics that compare attribution methods on token inputs.

Definitions follow ``docs/evaluation.md``: removal-based faithfulness
(comprehensiveness, sufficiency, deletion / insertion curves, LeRF - MoRF,
leave-one-out Kendall tau) with two removal operators (deletion and [MASK]),
its unsigned counterparts in :mod:`~captum_sigma.evaluation.dependence`
(distribution change, and representation change: Sigma's own objective,
home ground for Sigma),
agreement between attributions (seed stability) and token-aware wrappers of
``captum.metrics.infidelity`` and ``sensitivity_max``. Every metric is
method-agnostic: it takes per-token scores and a
``predict_proba(input_ids, attention_mask) -> (N, C)`` callable; the removal
metrics take them as ``metric(predict_proba, batch, scores, removal)``, with
the token batch a :class:`TokenBatch` and the operator a :class:`Removal`.

The comparison runner (:func:`compare`, registry in
:mod:`~captum_sigma.evaluation.methods`) runs Sigma and Captum's methods on the
same sentences and targets and scores them with these metrics (its row "Sigma"
is :class:`~captum_sigma.text.TextExplainer`'s own result); the planted-token
ground truth (Bastings et al. 2022) lives in
:mod:`~captum_sigma.evaluation.planted` and the model randomisation check
(Adebayo et al. 2018) in :mod:`~captum_sigma.evaluation.sanity`; tables, plots
and HTML in :mod:`~captum_sigma.evaluation.report`,
:mod:`~captum_sigma.evaluation.plots`
and :mod:`~captum_sigma.evaluation.html_view` (ranks and agreement they share in
:mod:`~captum_sigma.evaluation.analysis`); the result type in
:mod:`~captum_sigma.evaluation.result`. The ``captum-sigma compare`` subcommand lives
in :mod:`captum_sigma.cli`; the repository's own comparison report (its study,
stages and prose) is research harness under ``benchmarks/comparison/``, not part of
the installed package.
"""

from captum_sigma.evaluation.captum_metrics import (
    embedding_infidelity,
    token_sensitivity_max,
)
from captum_sigma.evaluation.compare import (
    DEFAULT_SIGMA_SETTINGS,
    FAITHFUL_SIGMA_SETTINGS,
    METRIC_FAMILIES,
    METRIC_FAMILY_LABELS,
    METRICS,
    STABILITY_METRICS,
    ComparisonResult,
    compare,
    score_comparison,
)
from captum_sigma.evaluation.dependence import (
    DependenceResult,
    dependence_metrics,
    distribution_change,
    representation_change,
)
from captum_sigma.evaluation.faithfulness import (
    ERASER_BINS,
    FaithfulnessResult,
    comprehensiveness,
    curve_area,
    deletion_auc,
    deletion_curve,
    faithfulness_metrics,
    insertion_auc,
    insertion_curve,
    leave_one_out_tau,
    lerf_minus_morf,
    resample_curves,
    sufficiency,
)
from captum_sigma.evaluation.forward import ForwardCounter
from captum_sigma.evaluation.methods import (
    DEFAULT_METHOD_NAMES,
    MethodSpec,
    as_method_spec,
    classifier_forward,
    default_methods,
    linear_surrogate,
)
from captum_sigma.evaluation.planted import (
    PLANTED_WORD,
    PlantedTokenResult,
    evaluate_planted,
    planted_dataset,
    planted_token_ranks,
    train_planted_model,
)
from captum_sigma.evaluation.ranking import (
    SeedStability,
    rank_correlation,
    seed_stability,
    token_ranking,
    top_k_overlap,
)
from captum_sigma.evaluation.removal import (
    Removal,
    delete_tokens,
    eligible_token_mask,
    mask_tokens,
    remove_tokens,
    special_token_ids_of,
)
from captum_sigma.evaluation.sanity import (
    SanityResult,
    model_randomization_check,
    randomize_top_layers,
    run_model_randomization,
)
from captum_sigma.evaluation.stats import (
    Interval,
    bootstrap_interval,
    paired_bootstrap_interval,
)
from captum_sigma.evaluation.tokens import TokenBatch, encode_texts

__all__ = [
    "DEFAULT_METHOD_NAMES",
    "DEFAULT_SIGMA_SETTINGS",
    "ERASER_BINS",
    "FAITHFUL_SIGMA_SETTINGS",
    "METRICS",
    "METRIC_FAMILIES",
    "METRIC_FAMILY_LABELS",
    "PLANTED_WORD",
    "STABILITY_METRICS",
    "ComparisonResult",
    "DependenceResult",
    "FaithfulnessResult",
    "ForwardCounter",
    "Interval",
    "MethodSpec",
    "PlantedTokenResult",
    "Removal",
    "SanityResult",
    "SeedStability",
    "TokenBatch",
    "as_method_spec",
    "bootstrap_interval",
    "classifier_forward",
    "compare",
    "comprehensiveness",
    "curve_area",
    "default_methods",
    "delete_tokens",
    "deletion_auc",
    "deletion_curve",
    "dependence_metrics",
    "distribution_change",
    "eligible_token_mask",
    "embedding_infidelity",
    "encode_texts",
    "evaluate_planted",
    "faithfulness_metrics",
    "insertion_auc",
    "insertion_curve",
    "leave_one_out_tau",
    "lerf_minus_morf",
    "linear_surrogate",
    "mask_tokens",
    "model_randomization_check",
    "paired_bootstrap_interval",
    "planted_dataset",
    "planted_token_ranks",
    "randomize_top_layers",
    "rank_correlation",
    "remove_tokens",
    "representation_change",
    "resample_curves",
    "run_model_randomization",
    "score_comparison",
    "seed_stability",
    "special_token_ids_of",
    "sufficiency",
    "token_ranking",
    "token_sensitivity_max",
    "top_k_overlap",
    "train_planted_model",
]
