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

The names are imported on first use (PEP 562), so the torch-free
:mod:`~captum_sigma.evaluation.names` (the method names that ``captum-sigma compare
--help`` lists) loads no torch.
"""

from captum_sigma._lazy import lazy_package

_EXPORTS = {
    "DEFAULT_METHOD_NAMES": "captum_sigma.evaluation.names",
    "DEFAULT_SIGMA_SETTINGS": "captum_sigma.evaluation.compare",
    "ERASER_BINS": "captum_sigma.evaluation.faithfulness",
    "FAITHFUL_SIGMA_SETTINGS": "captum_sigma.evaluation.compare",
    "METRICS": "captum_sigma.evaluation.compare",
    "METRIC_FAMILIES": "captum_sigma.evaluation.compare",
    "METRIC_FAMILY_LABELS": "captum_sigma.evaluation.compare",
    "PLANTED_WORD": "captum_sigma.evaluation.planted",
    "STABILITY_METRICS": "captum_sigma.evaluation.compare",
    "ComparisonResult": "captum_sigma.evaluation.compare",
    "DependenceResult": "captum_sigma.evaluation.dependence",
    "FaithfulnessResult": "captum_sigma.evaluation.faithfulness",
    "ForwardCounter": "captum_sigma.evaluation.forward",
    "Interval": "captum_sigma.evaluation.stats",
    "MethodSpec": "captum_sigma.evaluation.methods",
    "PlantedTokenResult": "captum_sigma.evaluation.planted",
    "Removal": "captum_sigma.evaluation.removal",
    "SanityResult": "captum_sigma.evaluation.sanity",
    "SeedStability": "captum_sigma.evaluation.ranking",
    "TokenBatch": "captum_sigma.evaluation.tokens",
    "as_method_spec": "captum_sigma.evaluation.methods",
    "bootstrap_interval": "captum_sigma.evaluation.stats",
    "classifier_forward": "captum_sigma.evaluation.methods",
    "compare": "captum_sigma.evaluation.compare",
    "comprehensiveness": "captum_sigma.evaluation.faithfulness",
    "curve_area": "captum_sigma.evaluation.faithfulness",
    "default_methods": "captum_sigma.evaluation.methods",
    "delete_tokens": "captum_sigma.evaluation.removal",
    "deletion_auc": "captum_sigma.evaluation.faithfulness",
    "deletion_curve": "captum_sigma.evaluation.faithfulness",
    "dependence_metrics": "captum_sigma.evaluation.dependence",
    "distribution_change": "captum_sigma.evaluation.dependence",
    "eligible_token_mask": "captum_sigma.evaluation.removal",
    "embedding_infidelity": "captum_sigma.evaluation.captum_metrics",
    "encode_texts": "captum_sigma.evaluation.tokens",
    "evaluate_planted": "captum_sigma.evaluation.planted",
    "faithfulness_metrics": "captum_sigma.evaluation.faithfulness",
    "insertion_auc": "captum_sigma.evaluation.faithfulness",
    "insertion_curve": "captum_sigma.evaluation.faithfulness",
    "leave_one_out_tau": "captum_sigma.evaluation.faithfulness",
    "lerf_minus_morf": "captum_sigma.evaluation.faithfulness",
    "linear_surrogate": "captum_sigma.evaluation.methods",
    "mask_tokens": "captum_sigma.evaluation.removal",
    "model_randomization_check": "captum_sigma.evaluation.sanity",
    "paired_bootstrap_interval": "captum_sigma.evaluation.stats",
    "planted_dataset": "captum_sigma.evaluation.planted",
    "planted_token_ranks": "captum_sigma.evaluation.planted",
    "randomize_top_layers": "captum_sigma.evaluation.sanity",
    "rank_correlation": "captum_sigma.evaluation.ranking",
    "remove_tokens": "captum_sigma.evaluation.removal",
    "representation_change": "captum_sigma.evaluation.dependence",
    "resample_curves": "captum_sigma.evaluation.faithfulness",
    "run_model_randomization": "captum_sigma.evaluation.sanity",
    "score_comparison": "captum_sigma.evaluation.compare",
    "seed_stability": "captum_sigma.evaluation.ranking",
    "special_token_ids_of": "captum_sigma.evaluation.removal",
    "sufficiency": "captum_sigma.evaluation.faithfulness",
    "token_ranking": "captum_sigma.evaluation.ranking",
    "token_sensitivity_max": "captum_sigma.evaluation.captum_metrics",
    "top_k_overlap": "captum_sigma.evaluation.ranking",
    "train_planted_model": "captum_sigma.evaluation.planted",
}

__all__, __getattr__, __dir__ = lazy_package(__name__, _EXPORTS, globals())
