r"""Run several attribution methods on the same sentences and score them.

:func:`compare` tokenises the sentences, takes the predicted class of every
sentence as the target of every method, runs each method of the registry
(:mod:`captum_sigma.evaluation.methods`) in the same length-sorted batches,
times it and counts its forward and backward passes, measures the seed
stability of the stochastic methods, then (:func:`score_comparison`, which
also scores stored attributions) scores every method under each removal
operator with every metric of three families (:data:`METRIC_FAMILIES`): the
signed drop of p_c (:func:`~captum_sigma.evaluation.faithfulness_metrics`), the
distribution change and the representation change
(:func:`~captum_sigma.evaluation.dependence.dependence_metrics`; the latter is
Sigma's own objective measured with deletion instead of noise, home ground for
Sigma), all from one cache of the model's logits. Signed methods are scored
twice: as returned and ranked by ``|score|`` (row ``"|name|"``). Tables, plots
and the HTML page are written by :mod:`captum_sigma.evaluation.report`.

Costs: per sentence, ``seconds`` is the wall time of a batch divided by its
size (median over batches), ``forward``/``backward`` are the rows of every call
of the model (a forward hook on it; a row run with autograd enabled counts one
backward pass).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from captum_sigma.engine import REFERENCE_OPTIONS, SigmaOptions
from captum_sigma.evaluation._cache import CachedForward
from captum_sigma.evaluation._checks import OPERATORS, check_positive_int
from captum_sigma.evaluation.dependence import (
    dependence_metrics,
)
from captum_sigma.evaluation.faithfulness import (
    ERASER_BINS,
    comprehensiveness,
    faithfulness_metrics,
    leave_one_out_tau,
    sufficiency,
)
from captum_sigma.evaluation.forward import predict_in_batches, target_tensor
from captum_sigma.evaluation.methods import (
    MethodSpec,
    as_method_spec,
    classifier_forward,
    default_methods,
)
from captum_sigma.evaluation.ranking import SeedStability, seed_stability
from captum_sigma.evaluation.result import (
    METRIC_FAMILIES,
    METRIC_FAMILY_LABELS,
    METRICS,
    STABILITY_METRICS,
    ComparisonResult,
)
from captum_sigma.evaluation.tokens import (
    TokenBatch,
    check_texts,
    tokenize_with_eligible,
)
from captum_sigma.text import DEFAULT_TEXT_OPTIONS, TextExplainer, default_data_sample
from captum_sigma.text.model import find_embeddings, model_device

__all__ = [
    "DEFAULT_SIGMA_SETTINGS",
    "FAITHFUL_SIGMA_SETTINGS",
    "METRICS",
    "METRIC_FAMILIES",
    "METRIC_FAMILY_LABELS",
    "STABILITY_METRICS",
    "ComparisonResult",
    "compare",
    "score_comparison",
]

logger = logging.getLogger(__name__)

#: Sigma with its default setting only: the row of ``TextExplainer.default()``
#: (the predicted class's probability, self-normalised, ``DEFAULT_TEXT_OPTIONS``).
DEFAULT_SIGMA_SETTINGS: dict[str, SigmaOptions] = {"Sigma": DEFAULT_TEXT_OPTIONS}
#: Sigma with its default and its faithful (reference, 5000 steps) setting, both
#: run by :class:`~captum_sigma.text.TextExplainer` on its default output (the
#: predicted class's probability, self-normalised).
FAITHFUL_SIGMA_SETTINGS: dict[str, SigmaOptions] = {
    "Sigma": DEFAULT_TEXT_OPTIONS,
    "Sigma (faithful)": REFERENCE_OPTIONS,
}


def compare(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    methods: Mapping[str, Any] | Sequence[str] | None = None,
    *,
    labels: Sequence[int] | None = None,
    target: Sequence[int] | None = None,
    operators: Sequence[str] = OPERATORS,
    bins: Sequence[float] = ERASER_BINS,
    batch_size: int = 16,
    max_rows: int = 256,
    seed: int = 0,
    device: str | torch.device | None = None,
    sigma_settings: Mapping[str, SigmaOptions] | None = None,
    layer: nn.Module | None = None,
    output: str = "proba",
    stability_n: int | None = None,
    curve_n: int | None = None,
    max_length: int = 128,
    sigma_data: Sequence[str] | None = None,
) -> ComparisonResult:
    r"""Compares attribution methods on the same sentences and targets.

    Args:
        model (nn.Module): Sequence classifier called as
                ``model(input_ids=..., attention_mask=...)`` (e.g. a Hugging Face
                ``BertForSequenceClassification``); put in eval mode.
        tokenizer (object): Its Hugging Face tokenizer.
        texts (sequence of str): The sentences.
        methods (mapping or sequence, optional): Names from the registry
                (:func:`~captum_sigma.evaluation.methods.default_methods`), or a
                mapping name -> :class:`~captum_sigma.evaluation.methods.MethodSpec`,
                Captum attribution object or callable (see
                :func:`~captum_sigma.evaluation.methods.as_method_spec`); a
                mapping runs exactly its entries. Default: every Sigma setting
                and every registry method.
        labels (sequence of int, optional): True labels (reported only).
        target (sequence of int, optional): The explained class of each
                sentence, e.g. another model's predictions (the model
                randomisation check explains a destroyed model on the trained
                model's classes). Default: None, the predicted class.
        operators (sequence of str, optional): Removal operators among
                ``"delete"`` and ``"mask"``; empty to skip the metrics (score
                the result later with :func:`score_comparison`, which this
                function calls otherwise). Default: both.
        bins (sequence of float, optional): AOPC bins. Default: ERASER's.
        batch_size (int, optional): Sentences per attribution call (the same
                length-sorted batches for every method). Default: 16.
        max_rows (int, optional): Most rows per forward pass of the metrics and
                of the methods' internal batches (memory knob). Default: 256.
        seed (int, optional): Seed of every stochastic method; seed + 1 is the
                second run of the seed-stability check. Default: 0.
        device (str or torch.device, optional): Moves the model there. Default:
                the model's device.
        sigma_settings (mapping, optional): Row name -> SigmaOptions when
                ``methods`` is None or names. Default:
                :data:`DEFAULT_SIGMA_SETTINGS`; :data:`FAITHFUL_SIGMA_SETTINGS`
                adds "Sigma (faithful)".
        layer (nn.Module, optional): Embedding layer of the gradient methods and
                Sigma. Default: ``model.base_model.embeddings`` (else
                ``model.get_input_embeddings()``).
        output (str, optional): Explain ``"proba"`` (softmax probability of the
                target) or ``"logit"``. Default: "proba".
        stability_n (int, optional): Seed stability on the first n sentences
                (0 skips it). Default: all.
        curve_n (int, optional): Deletion / insertion curves (and their areas,
                LeRF - MoRF) on the first n sentences only, the cost of the
                metrics being dominated by the curves; comprehensiveness,
                sufficiency (of every family) and leave-one-out tau use every
                sentence. The other sentences get NaN areas and empty curves.
                Default: all.
        max_length (int, optional): Truncation in tokens. Default: 128.
        sigma_data (sequence of str, optional): Texts for the Sigma rows' ``r``
                and for the ``r`` of the representation-change metrics.
                Default: :func:`~captum_sigma.text.default_data_sample`, as
                ``TextExplainer.default()``.

    Returns:
        ComparisonResult: Scores, metrics, curves, costs and settings.

    Examples::

        >>> result = compare(model, tokenizer, ["a gorgeous, witty film."])
        >>> result.interval("delete", "Sigma", "comprehensiveness")
    """
    _check_arguments(operators, batch_size, max_rows, seed, stability_n, curve_n)
    explained = target
    if labels is not None and len(labels) != len(texts):
        raise ValueError(
            f"labels must hold one label per text ({len(texts)}), got {len(labels)}"
        )
    specs = _resolve_methods(methods, sigma_settings, max_rows, sigma_data)
    device = model_device(model) if device is None else torch.device(device)
    model.to(device).eval()
    layer = find_embeddings(model) if layer is None else layer
    if "mask" in operators and tokenizer.mask_token_id is None:
        raise ValueError("operators contains 'mask' but the tokenizer has no [MASK]")
    check_texts(texts)
    check_positive_int("max_length", max_length)
    encoded, eligible = tokenize_with_eligible(tokenizer, texts, max_length)
    input_ids, attention_mask = encoded.input_ids, encoded.attention_mask
    predict = classifier_forward(model, "proba")
    proba = predict_in_batches(
        predict, input_ids.to(device), attention_mask.to(device), max_rows
    )
    if target is None:
        target = proba.argmax(dim=1)
    else:
        target = target_tensor(target, *proba.shape).to(proba.device)
    batch = TokenBatch.build(
        input_ids.to(device),
        attention_mask.to(device),
        eligible.to(device),
        target.to(device),
        pad_token_id=int(tokenizer.pad_token_id or 0),
        mask_token_id=tokenizer.mask_token_id,
    )
    order = np.argsort(attention_mask.sum(dim=1).numpy(), kind="stable")
    batches = [order[i : i + batch_size] for i in range(0, order.size, batch_size)]
    forward = classifier_forward(model, output, tokenizer)
    n_texts = len(texts)
    stability_rows = np.arange(
        n_texts if stability_n is None else min(stability_n, n_texts)
    )
    runs = {}
    for spec in specs.values():
        logger.info("attributing with %s", spec.name)
        runs[spec.name] = _run_method(spec, forward, layer, batch, batches, seed)
    stability = {}
    for spec in specs.values():
        if spec.stochastic and stability_rows.size:
            logger.info("seed stability of %s", spec.name)
            stability[spec.name] = _seed_stability(
                spec, forward, layer, batch, stability_rows, batch_size, seed, runs
            )
    scores = _score_rows(specs, runs)
    n_curves = n_texts if curve_n is None else min(curve_n, n_texts)
    result = ComparisonResult(
        texts=list(texts),
        tokens=encoded.tokens,
        input_ids=input_ids.numpy(),
        attention_mask=attention_mask.numpy(),
        eligible=eligible.numpy(),
        target=target.cpu().numpy(),
        target_proba=proba.gather(1, target[:, None]).squeeze(1).cpu().numpy(),
        labels=None if labels is None else np.asarray(labels, dtype=np.int64),
        methods=list(specs),
        rows=list(scores),
        signed={name: spec.signed for name, spec in specs.items()},
        stochastic={name: spec.stochastic for name, spec in specs.items()},
        scores=scores,
        metrics={},
        curves={},
        seconds={name: run["seconds"] for name, run in runs.items()},
        passes={name: run["passes"] for name, run in runs.items()},
        stability=stability,
        stability_indices=stability_rows,
        convergence_delta={
            name: run["delta"] for name, run in runs.items() if run["delta"] is not None
        },
        settings={
            "n_sentences": n_texts,
            "operators": [],
            "bins": [float(b) for b in bins],
            "batch_size": batch_size,
            "max_rows": max_rows,
            "seed": seed,
            "device": str(device),
            "output": output,
            "target": "predicted class" if explained is None else "given classes",
            "layer": type(layer).__name__,
            "max_length": max_length,
            "stability_n": int(stability_rows.size),
            "curve_n": n_curves,
            "metrics_seconds": 0.0,
            "attribution_seconds": {
                name: round(run["total_seconds"], 3) for name, run in runs.items()
            },
            "methods": {name: dict(spec.settings) for name, spec in specs.items()},
        },
    )
    if not operators:
        return result
    return score_comparison(
        result,
        model,
        tokenizer,
        operators=operators,
        bins=bins,
        max_rows=max_rows,
        curve_n=curve_n,
        sigma_data=sigma_data,
        device=device,
    )


def score_comparison(
    result: ComparisonResult,
    model: nn.Module,
    tokenizer: Any,
    *,
    operators: Sequence[str] = OPERATORS,
    bins: Sequence[float] = ERASER_BINS,
    max_rows: int = 256,
    curve_n: int | None = None,
    regularization: Tensor | np.ndarray | Sequence[float] | None = None,
    sigma_data: Sequence[str] | None = None,
    device: str | torch.device | None = None,
) -> ComparisonResult:
    r"""Scores stored attributions with every removal metric of every family.

    Computes :data:`METRICS` for every row of ``result`` (its ``scores``,
    ``input_ids``, ``attention_mask``, ``eligible`` and ``target``) under each
    removal operator: the signed family
    (:func:`~captum_sigma.evaluation.faithfulness_metrics`) and the
    distribution- and representation-change families
    (:func:`~captum_sigma.evaluation.dependence.dependence_metrics`), all from
    one cache of the model's logits, so each distinct perturbed sequence runs
    once whatever the family (the signed metrics read ``softmax`` of the same
    batch of logits, as ``classifier_forward(model, "proba")`` computes it).
    :func:`compare` with operators calls this function; with
    ``operators=()`` it returns the result to score later (e.g. after
    pickling it, or after :meth:`ComparisonResult.combine`).

    Args:
        result (ComparisonResult): A comparison, with or without metrics
                (existing metrics are replaced).
        model (nn.Module): The classifier that ``result`` explains.
        tokenizer (object): Its tokenizer ([PAD] and [MASK] ids).
        operators (sequence of str, optional): Removal operators among
                ``"delete"`` and ``"mask"``, at least one. Default: both.
        bins (sequence of float, optional): ERASER bins. Default: ERASER's.
        max_rows (int, optional): Rows per model call. Default: 256.
        curve_n (int, optional): Curves (and their areas) on the first n
                sentences only, as in :func:`compare`. Default: all.
        regularization (Tensor, ndarray or sequence, optional): r of the
                logits, one value per class, for the representation change.
                Default: None, estimated as ``TextExplainer(model, tokenizer,
                data=sigma_data, output="logit").regularization()``, the ``r``
                of the logit / r Sigma rows (``SIGMA_LOGIT_ROW``).
        sigma_data (sequence of str, optional): Texts for that ``r``, as
                :func:`compare`'s argument of the same name. Default:
                :func:`~captum_sigma.text.default_data_sample`, as
                ``TextExplainer.default()``.
        device (str or torch.device, optional): Where to run. Default: the
                model's device.

    Returns:
        ComparisonResult: ``result`` with ``metrics``, ``curves`` and
        ``dependence_curves`` filled and ``settings`` updated (``operators``,
        ``bins``, ``curve_n``, ``metrics_seconds``, ``regularization`` and
        where it came from, and the forward rows the metrics ran).

    Examples::

        >>> attributed = compare(model, tokenizer, texts, operators=())
        >>> scored = score_comparison(attributed, model, tokenizer)
        >>> scored.interval("delete", "Sigma", "repr_comprehensiveness")
    """
    _check_arguments(operators, 1, max_rows, 0, None, curve_n)
    if not operators:
        raise ValueError("operators must name at least one removal operator")
    if "mask" in operators and tokenizer.mask_token_id is None:
        raise ValueError("operators contains 'mask' but the tokenizer has no [MASK]")
    device = model_device(model) if device is None else torch.device(device)
    model.to(device).eval()
    start = time.perf_counter()
    r, source = _logit_regularization(model, tokenizer, regularization, sigma_data)
    regularization_seconds = time.perf_counter() - start
    batch = TokenBatch.build(
        torch.as_tensor(result.input_ids).to(device),
        torch.as_tensor(result.attention_mask).to(device),
        torch.as_tensor(result.eligible).to(device),
        torch.as_tensor(result.target).long().to(device),
        pad_token_id=int(tokenizer.pad_token_id or 0),
        mask_token_id=tokenizer.mask_token_id,
    )
    n_texts = len(result.texts)
    n_curves = n_texts if curve_n is None else min(curve_n, n_texts)
    scores = {row: result.scores[row] for row in result.rows}
    start = time.perf_counter()
    metrics, curves, dependence_curves, cached = _removal_metrics(
        scores,
        batch,
        n_curves,
        operators,
        bins,
        classifier_forward(model, "logit"),
        max_rows,
        r,
    )
    metrics_seconds = time.perf_counter() - start
    settings = {
        **result.settings,
        "operators": list(operators),
        "bins": [float(b) for b in bins],
        "curve_n": n_curves,
        "metrics_seconds": round(metrics_seconds, 3),
        "metric_families": list(METRIC_FAMILIES),
        "regularization": [float(v) for v in r],
        "regularization_source": source,
        "regularization_seconds": round(regularization_seconds, 3),
        "metric_forward_rows": cached.model_rows,
        "metric_requested_rows": cached.requested_rows,
    }
    return replace(
        result,
        metrics=metrics,
        curves=curves,
        dependence_curves=dependence_curves,
        settings=settings,
    )


def _logit_regularization(
    model: nn.Module,
    tokenizer: Any,
    regularization: Tensor | np.ndarray | Sequence[float] | None,
    sigma_data: Sequence[str] | None,
) -> tuple[np.ndarray, str]:
    """r of the logits (float64, (C,)) and where it came from."""
    if regularization is not None:
        if isinstance(regularization, Tensor):
            regularization = regularization.detach().cpu().double().numpy()
        r = np.atleast_1d(np.asarray(regularization, dtype=np.float64))
        return r, "given"
    sample = default_data_sample() if sigma_data is None else list(sigma_data)
    explainer = TextExplainer(model, tokenizer, data=sample, output="logit")
    r = explainer.regularization()
    source = (
        "TextExplainer(model, tokenizer, output='logit', data="
        + ("default_data_sample()" if sigma_data is None else f"{len(sample)} texts")
        + ").regularization()"
    )
    return r.detach().cpu().double().numpy(), source


def _check_arguments(
    operators: Sequence[str],
    batch_size: int,
    max_rows: int,
    seed: int,
    stability_n: int | None,
    curve_n: int | None = None,
) -> None:
    if isinstance(operators, str):
        raise ValueError(f"operators must be a sequence of names, got {operators!r}")
    for operator in operators:
        if operator not in OPERATORS:
            raise ValueError(f"operators must be among {OPERATORS}, got {operator!r}")
    check_positive_int("batch_size", batch_size)
    check_positive_int("max_rows", max_rows)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    for name, value in (("stability_n", stability_n), ("curve_n", curve_n)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(
                f"{name} must be a non-negative int or None, got {value!r}"
            )


def _resolve_methods(
    methods: Mapping[str, Any] | Sequence[str] | None,
    sigma_settings: Mapping[str, SigmaOptions] | None,
    max_rows: int,
    sigma_data: Sequence[str] | None = None,
) -> dict[str, MethodSpec]:
    if sigma_settings is None:
        sigma_settings = DEFAULT_SIGMA_SETTINGS
    if methods is None or (
        isinstance(methods, Sequence) and not isinstance(methods, str)
    ):
        specs = default_methods(
            None if methods is None else list(methods),
            sigma_settings=sigma_settings,
            max_rows=max_rows,
            sigma_data=sigma_data,
        )
    elif isinstance(methods, Mapping):
        specs = {name: as_method_spec(name, m) for name, m in methods.items()}
    else:
        raise TypeError(
            "methods must be None, a sequence of names or a mapping name -> method, "
            f"got {type(methods).__name__}"
        )
    if not specs:
        raise ValueError("methods must name at least one method")
    return specs


def _run_method(
    spec: MethodSpec,
    forward: nn.Module,
    layer: nn.Module,
    batch: TokenBatch,
    batches: list[np.ndarray],
    seed: int,
) -> dict[str, Any]:
    method = spec.build(forward, layer)
    n_texts, width = batch.input_ids.shape
    scores = np.zeros((n_texts, width), dtype=np.float64)
    delta = np.full(n_texts, np.nan) if spec.convergence_delta else None
    seconds, total = [], 0.0
    counter = _PassCounter()
    for rows in batches:
        sub = batch.select(rows)
        start = time.perf_counter()
        with counter.counting(forward.model):
            row_scores, row_delta = spec.scores(method, sub, seed)
        elapsed = time.perf_counter() - start
        seconds.append(elapsed / len(rows))
        total += elapsed
        scores[rows, : row_scores.shape[1]] = row_scores.numpy()
        if delta is not None and row_delta is not None:
            delta[rows] = row_delta.numpy()
    passes = (counter.forward_rows / n_texts, counter.backward_rows / n_texts)
    if not spec.counted:
        passes = (float("nan"), float("nan"))
    return {
        "scores": scores,
        "seconds": np.asarray(seconds),
        "total_seconds": total,
        "passes": passes,
        "delta": delta,
    }


class _PassCounter:
    """Counts the rows of every call of a model (with autograd on: + a backward).

    A hook on the model itself, so that every method is counted alike, whether it
    calls :func:`classifier_forward` or the model through ``TextExplainer``.
    """

    def __init__(self) -> None:
        self.forward_rows = 0
        self.backward_rows = 0

    @contextlib.contextmanager
    def counting(self, model: nn.Module) -> Iterator[None]:
        """Counts while active; the hook is removed on exit."""

        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            first = kwargs.get("input_ids", args[0] if args else None)
            rows = int(first.shape[0]) if isinstance(first, Tensor) else 0
            self.forward_rows += rows
            if torch.is_grad_enabled():
                self.backward_rows += rows

        handle = model.register_forward_pre_hook(hook, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()


def _seed_stability(
    spec: MethodSpec,
    forward: nn.Module,
    layer: nn.Module,
    batch: TokenBatch,
    rows: np.ndarray,
    batch_size: int,
    seed: int,
    runs: dict[str, dict[str, Any]],
) -> SeedStability:
    method = spec.build(forward, layer)
    lengths = batch.attention_mask[torch.as_tensor(rows)].sum(dim=1).cpu().numpy()
    ordered = rows[np.argsort(lengths, kind="stable")]
    width = batch.input_ids.shape[1]
    second = np.zeros((rows.size, width), dtype=np.float64)
    position = {int(row): i for i, row in enumerate(rows)}
    for start in range(0, ordered.size, batch_size):
        chunk = ordered[start : start + batch_size]
        row_scores, _ = spec.scores(method, batch.select(chunk), seed + 1)
        for i, row in enumerate(chunk):
            second[position[int(row)], : row_scores.shape[1]] = row_scores[i].numpy()
    first = runs[spec.name]["scores"][rows]
    eligible = batch.eligible[torch.as_tensor(rows)].cpu()
    return seed_stability(first, second, eligible, k=3)


def _score_rows(
    specs: dict[str, MethodSpec], runs: dict[str, dict[str, Any]]
) -> dict[str, np.ndarray]:
    scores = {name: runs[name]["scores"] for name in specs}
    for name, spec in specs.items():
        if spec.signed:
            scores[f"|{name}|"] = np.abs(runs[name]["scores"])
    return scores


def _removal_metrics(
    scores: dict[str, np.ndarray],
    batch: TokenBatch,
    n_curves: int,
    operators: Sequence[str],
    bins: Sequence[float],
    predict_logits: nn.Module,
    max_rows: int,
    regularization: np.ndarray,
    dependence: bool = True,
) -> tuple[dict, dict, dict, CachedForward]:
    """Every removal metric of every row, through one shared cache of logits.

    The first ``n_curves`` sentences get every metric and their curves; the
    others comprehensiveness, sufficiency (of every family) and leave-one-out
    tau only. Each group runs in length order, so that cached batches have
    similar lengths. ``dependence=False`` computes the signed family alone
    (the tests compare its forward rows with those of every family).
    """
    cached = CachedForward(predict_logits, max_rows=max_rows)
    lengths = batch.attention_mask.sum(dim=1).cpu().numpy()
    n_texts = lengths.size
    groups = [np.arange(n_curves), np.arange(n_curves, n_texts)]
    groups = [g[np.argsort(lengths[g], kind="stable")] for g in groups]
    names = list(METRICS) if dependence else list(METRIC_FAMILIES["signed"])
    metrics: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    curves: dict[str, dict[str, tuple[list, list]]] = {}
    dependence_curves: dict[str, dict[str, dict[str, list]]] = {}
    empty = np.zeros(0)
    for operator in operators:
        metrics[operator], curves[operator] = {}, {}
        dependence_curves[operator] = {}
        removal = batch.removal(operator)
        for row, row_scores in scores.items():
            logger.info("metrics of %s (%s)", row, operator)
            values = {name: np.full(n_texts, np.nan) for name in names}
            deletion, insertion = [empty] * n_texts, [empty] * n_texts
            changes: dict[str, list] = {}
            options = {"bins": bins, "batch_size": 4 * max_rows}
            for with_curves, rows in zip((True, False), groups):
                if rows.size == 0:
                    continue
                arguments = (batch.select(rows, trim=False), row_scores[rows], removal)
                if with_curves:
                    result = faithfulness_metrics(
                        cached.predict_proba, *arguments, **options
                    )
                    for name, value in result.metrics().items():
                        values[name][rows] = value
                    for i, row_index in enumerate(rows):
                        deletion[row_index] = result.deletion_curves[i]
                        insertion[row_index] = result.insertion_curves[i]
                else:
                    values.update(
                        _aopc_metrics(
                            (cached.predict_proba, *arguments), options, rows, values
                        )
                    )
                if dependence:
                    change = dependence_metrics(
                        cached.predict_logits,
                        *arguments,
                        regularization=regularization,
                        curves=with_curves,
                        **options,
                    )
                    for name, value in change.metrics().items():
                        values[name][rows] = value
                    for name, per_sentence in change.curves.items():
                        changes.setdefault(name, [empty] * n_texts)
                        for i, row_index in enumerate(rows):
                            changes[name][row_index] = per_sentence[i]
            metrics[operator][row] = values
            curves[operator][row] = (deletion, insertion)
            dependence_curves[operator][row] = changes
    logger.info(
        "metrics: %d distinct sequences run for %d requested",
        cached.model_rows,
        cached.requested_rows,
    )
    return metrics, curves, dependence_curves, cached


def _aopc_metrics(
    arguments: tuple, options: dict, rows: np.ndarray, values: dict
) -> dict[str, np.ndarray]:
    """Comprehensiveness, sufficiency and leave-one-out tau without curves."""
    updated = {name: values[name].copy() for name in values}
    updated["comprehensiveness"][rows] = comprehensiveness(*arguments, **options)
    updated["sufficiency"][rows] = sufficiency(*arguments, **options)
    no_bins = {key: value for key, value in options.items() if key != "bins"}
    updated["loo_tau"][rows] = leave_one_out_tau(*arguments, **no_bins)
    return updated
