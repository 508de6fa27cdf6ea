r"""Model randomisation check (Adebayo et al. 2018).

"Sanity Checks for Saliency Maps", Adebayo, Gilmer, Muelly, Goodfellow, Hardt
and Kim, NeurIPS 2018, https://arxiv.org/abs/1810.03292

Definition. Let ``f`` be the trained classifier and ``f_k`` the same
architecture whose classification head (the classifier, and the pooler when
there is one) and top ``k`` encoder layers are re-initialised by the model's
own initialiser (``PreTrainedModel._init_weights``, seeded), every other
parameter kept: the cascading randomisation of the paper, from the top. Both
models are explained for the same class of each sentence, the class ``f``
predicts. For every row of the comparison (each method, and ``"|name|"`` for a
signed one) and every sentence, the check reports the Spearman rank correlation
(``scipy.stats.spearmanr``) between the scores of ``f`` and of ``f_k`` over the
sentence's eligible tokens (``[CLS]``, ``[SEP]`` and padding excluded); it is
NaN for a sentence with fewer than two eligible tokens or with constant scores
under either model, and NaN values are left out of the mean and its bootstrap
interval (:func:`~captum_sigma.evaluation.stats.bootstrap_interval`).

Reading. An explanation of ``f`` should depend on what ``f`` learned: a
correlation near 1 means the ranking survives destroying the top of the model,
so it is explained by the input and the kept bottom layers, not by the trained
decision. Lower is better (a correlation near 0 passes the check; a negative
one changes the order as well).

Sigma rows: :class:`~captum_sigma.text.TextExplainer` estimates its normaliser
``r`` on the model it is given, so the randomised model's Sigma divides the
randomised logits by the randomised model's own ``r`` (from the same data
sample); the scores of each model are what Sigma returns for that model.

:func:`randomize_top_layers` builds ``f_k``, :func:`model_randomization_check`
compares two :class:`~captum_sigma.evaluation.ComparisonResult` of the same
sentences and targets, and :func:`run_model_randomization` runs both.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr
from torch import nn

from captum_sigma.attr.common import seeded_rng
from captum_sigma.engine import SigmaOptions
from captum_sigma.evaluation.compare import ComparisonResult, compare
from captum_sigma.evaluation.methods import MethodSpec
from captum_sigma.evaluation.stats import Interval, bootstrap_interval
from captum_sigma.text.model import base_model, find_layers, model_device

__all__ = [
    "SanityResult",
    "model_randomization_check",
    "randomize_top_layers",
    "run_model_randomization",
]

logger = logging.getLogger(__name__)

#: Key of the randomised comparison's ``settings`` that describes the model.
RANDOMIZATION_KEY = "randomization"


@dataclass
class SanityResult:
    r"""Spearman correlations of a trained and a randomised model's scores.

    Model randomisation check of Adebayo et al. 2018
    (https://arxiv.org/abs/1810.03292); see the module docstring.

    Attributes:
        rows (list[str]): Rows present in both results, in the trained
                result's order (methods, then ``"|name|"`` of signed ones).
        spearman (dict[str, ndarray]): Per row, the Spearman correlation of
                each sentence, (B,) float64; NaN with fewer than two eligible
                tokens or constant scores.
        n_layers (int or None): Re-initialised top encoder layers (the head is
                always re-initialised); None when the randomised result does
                not say (it was not made by :func:`run_model_randomization`).
        texts (list[str]): The sentences.
        target (ndarray): The explained class of each sentence, (B,).
        settings (dict): The randomisation and the correlation, for the report.
    """

    rows: list[str]
    spearman: dict[str, np.ndarray]
    n_layers: int | None
    texts: list[str]
    target: np.ndarray
    settings: dict[str, Any] = field(default_factory=dict)

    def interval(self, row: str, seed: int = 0) -> Interval:
        r"""Mean Spearman correlation of a row with its 95 % bootstrap interval.

        Args:
            row (str): A row of :attr:`rows`.
            seed (int, optional): Bootstrap seed. Default: 0.

        Returns:
            Interval: Over the sentences with a defined (finite) correlation;
            ``n`` counts them.
        """
        if row not in self.spearman:
            raise KeyError(f"row {row!r} is not among {self.rows}")
        return bootstrap_interval(self.spearman[row], seed=seed)


def randomize_top_layers(model: nn.Module, n_layers: int, seed: int = 0) -> nn.Module:
    r"""A copy of a classifier with its head and top layers re-initialised.

    The cascading model randomisation of Adebayo et al. 2018
    (https://arxiv.org/abs/1810.03292), from the top: the classification head
    (every child module of the model outside its base model, e.g.
    ``classifier``), the pooler when there is one and the top ``n_layers``
    encoder layers are re-initialised by the model's own initialiser
    (``module.apply(copy._init_weights)`` of a Hugging Face
    ``PreTrainedModel``); embeddings and lower layers keep their weights.

    Args:
        model (nn.Module): A Hugging Face sequence classifier (e.g.
                ``BertForSequenceClassification``). It is not modified.
        n_layers (int): Top encoder layers to re-initialise, in
                ``[0, number of layers]`` (0: the head only).
        seed (int, optional): Seed of the re-initialisation; torch's global
                RNG is forked, so the caller's RNG state is unchanged.
                Default: 0.

    Returns:
        nn.Module: A deep copy of ``model`` (same device, dtype and mode).

    Raises:
        TypeError: If the model has no ``_init_weights``.
        ValueError: If ``n_layers`` is out of range or the model has no head.
    """
    if not callable(getattr(model, "_init_weights", None)):
        raise TypeError(
            f"model: {type(model).__name__} has no _init_weights; pass a Hugging "
            "Face PreTrainedModel"
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an int, got {seed!r}")
    _randomized_modules(model, n_layers)  # checks before the copy
    randomized = copy.deepcopy(model)
    modules = _randomized_modules(randomized, n_layers)
    with torch.no_grad(), seeded_rng(seed, model_device(randomized)):
        for _, module in modules:
            for parameter in module.parameters():
                # transformers skips tensors flagged as loaded from a checkpoint
                if getattr(parameter, "_is_hf_initialized", False):
                    parameter._is_hf_initialized = False
            module.apply(randomized._init_weights)
    return randomized


def _randomized_modules(model: nn.Module, n_layers: int) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the head, the pooler and the top ``n_layers`` layers."""
    try:
        layers = find_layers(model)
    except ValueError:
        layers = []
    if (
        isinstance(n_layers, bool)
        or not isinstance(n_layers, int)
        or not 0 <= n_layers <= len(layers)
    ):
        raise ValueError(
            f"n_layers must be an int in [0, {len(layers)}] (the model's encoder "
            f"layers), got {n_layers!r}"
        )
    base = base_model(model)
    names = {id(module): name for name, module in model.named_modules()}
    modules = [
        (name, child)
        for name, child in model.named_children()
        if child is not base and any(True for _ in child.parameters())
    ]
    if not modules:
        raise ValueError(
            f"model: {type(model).__name__} has no classification head with "
            "parameters outside its base model"
        )
    pooler = getattr(base, "pooler", None)
    if isinstance(pooler, nn.Module):
        modules.append((names[id(pooler)], pooler))
    top = layers[len(layers) - n_layers :] if n_layers else []
    modules += [(names[id(layer)], layer) for layer in top]
    return modules


def model_randomization_check(
    trained: ComparisonResult, randomized: ComparisonResult
) -> SanityResult:
    r"""Spearman correlation per sentence of a trained and a randomised model.

    The model randomisation check of Adebayo et al. 2018
    (https://arxiv.org/abs/1810.03292), see the module docstring: for every row
    present in both results, ``scipy.stats.spearmanr`` between the two scores of
    each sentence over its eligible tokens.

    Args:
        trained (ComparisonResult): Scores of the trained model.
        randomized (ComparisonResult): Scores of the randomised model (e.g. from
                :func:`randomize_top_layers`) for the same sentences, tokens
                and targets.

    Returns:
        SanityResult: Per row, one correlation per sentence (NaN with fewer
        than two eligible tokens or constant scores).

    Raises:
        ValueError: If the results differ in sentences, tokens or targets, or
            share no row.
    """
    _check_same_sentences(trained, randomized)
    rows = [row for row in trained.rows if row in randomized.scores]
    if not rows:
        raise ValueError(
            f"trained and randomized share no row: {trained.rows} vs "
            f"{randomized.rows}"
        )
    width = trained.eligible.shape[1]
    eligible = trained.eligible.astype(bool)
    spearman = {
        row: _spearman_per_sentence(
            trained.scores[row], _fit_width(randomized.scores[row], width), eligible
        )
        for row in rows
    }
    randomization = dict(randomized.settings.get(RANDOMIZATION_KEY, {}))
    n_layers = randomization.get("n_layers")
    return SanityResult(
        rows=rows,
        spearman=spearman,
        n_layers=None if n_layers is None else int(n_layers),
        texts=list(trained.texts),
        target=np.asarray(trained.target).copy(),
        settings={
            "n_sentences": len(trained.texts),
            "correlation": "Spearman (scipy.stats.spearmanr) over eligible tokens",
            RANDOMIZATION_KEY: randomization,
            "methods": dict(randomized.settings.get("methods", {})),
        },
    )


def run_model_randomization(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    methods: Mapping[str, MethodSpec] | Sequence[str] | None,
    trained: ComparisonResult | None = None,
    *,
    n_layers: int,
    seed: int = 0,
    batch_size: int = 16,
    sigma_settings: Mapping[str, SigmaOptions] | None = None,
    max_length: int = 128,
    device: str | torch.device | None = None,
    sigma_data: Sequence[str] | None = None,
) -> tuple[ComparisonResult, SanityResult]:
    r"""Explains a randomised copy of the model and runs the check.

    The model randomisation check of Adebayo et al. 2018
    (https://arxiv.org/abs/1810.03292), see the module docstring. The copy
    (:func:`randomize_top_layers`) is explained by
    :func:`~captum_sigma.evaluation.compare` without removal metrics nor seed
    stability, for the trained model's predicted classes (``target=``), with
    the trained run's method seed; the trained model itself is never modified.
    Sigma rows use the randomised model's own ``r`` (``TextExplainer``
    estimates it on the model it is given).

    Args:
        model (nn.Module): The trained Hugging Face sequence classifier.
        tokenizer (object): Its tokenizer.
        texts (sequence of str): The sentences.
        methods (mapping or sequence or None): As in ``compare``: registry
                names, or a mapping name -> :class:`MethodSpec` (a Captum
                object or callable is bound to one model and would explain the
                trained model, so it is refused); None: every method.
        trained (ComparisonResult, optional): The trained model's result for
                ``texts`` (any operators); computed here (no removal metrics)
                when None.
        n_layers (int): Top encoder layers to re-initialise, with the head.
        seed (int, optional): Seed of the re-initialisation. Default: 0.
        batch_size, sigma_settings, max_length, device, sigma_data: As in
                ``compare``.

    Returns:
        (ComparisonResult, SanityResult): The randomised model's result (its
        ``settings["randomization"]`` holds ``n_layers``, ``seed`` and the
        re-initialised modules) and the check.

    Raises:
        TypeError: If ``methods`` maps a name to something else than a
            MethodSpec.
        ValueError: If ``trained`` explains other sentences.
    """
    if isinstance(methods, Mapping):
        for name, method in methods.items():
            if not isinstance(method, MethodSpec):
                raise TypeError(
                    f"methods[{name!r}] must be a MethodSpec (built for the model "
                    f"it is given), got {type(method).__name__}"
                )
    options = {
        "batch_size": batch_size,
        "sigma_settings": sigma_settings,
        "max_length": max_length,
        "device": device,
        "sigma_data": sigma_data,
        "operators": (),
        "stability_n": 0,
    }
    modules = [name for name, _ in _randomized_modules(model, n_layers)]
    randomized_model = randomize_top_layers(model, n_layers, seed)
    if trained is None:
        logger.info("explaining the trained model")
        trained = compare(model, tokenizer, texts, methods, **options)
    elif list(trained.texts) != list(texts):
        raise ValueError("trained must be the result of the same texts")
    logger.info("explaining the model with %d re-initialised top layers", n_layers)
    randomized = compare(
        randomized_model,
        tokenizer,
        texts,
        methods,
        target=[int(t) for t in trained.target],
        seed=int(trained.settings.get("seed", 0)),
        **options,
    )
    randomization = {"n_layers": n_layers, "seed": seed, "modules": modules}
    randomized = replace(
        randomized,
        settings={**randomized.settings, RANDOMIZATION_KEY: randomization},
    )
    return randomized, model_randomization_check(trained, randomized)


def _check_same_sentences(a: ComparisonResult, b: ComparisonResult) -> None:
    """Raises unless both results explain the same tokens for the same classes."""
    if list(a.texts) != list(b.texts):
        raise ValueError("trained and randomized must explain the same sentences")
    if not np.array_equal(np.asarray(a.target), np.asarray(b.target)):
        raise ValueError(
            "trained and randomized must explain the same targets, got "
            f"{np.asarray(a.target).tolist()} and {np.asarray(b.target).tolist()}"
        )
    width = a.eligible.shape[1]
    if a.tokens != b.tokens or not np.array_equal(
        a.eligible.astype(bool), _fit_width(b.eligible, width).astype(bool)
    ):
        raise ValueError("trained and randomized must tokenize the sentences alike")


def _fit_width(values: np.ndarray, width: int) -> np.ndarray:
    """Right-pads with zeros or drops trailing columns to ``width`` columns."""
    if values.shape[1] >= width:
        return values[:, :width]
    padding = np.zeros((values.shape[0], width - values.shape[1]), values.dtype)
    return np.concatenate([values, padding], axis=1)


def _spearman_per_sentence(
    scores_a: np.ndarray, scores_b: np.ndarray, eligible: np.ndarray
) -> np.ndarray:
    """Spearman correlation of each sentence over its eligible tokens (or NaN)."""
    values = np.full(eligible.shape[0], np.nan)
    for i, mask in enumerate(eligible):
        a, b = scores_a[i, mask], scores_b[i, mask]
        if not (np.isfinite(a).all() and np.isfinite(b).all()):
            raise ValueError("scores must be finite at eligible positions")
        if a.size < 2 or np.all(a == a[0]) or np.all(b == b[0]):
            continue
        values[i] = float(spearmanr(a, b).statistic)
    return values
