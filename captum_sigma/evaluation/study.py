r"""Which Sigma configuration to ship: candidates, a fixed criterion, the choice.

Every candidate stays within the paper's objective (Guan et al., ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html); they differ in what is explained
(:data:`~captum_sigma.evaluation.methods.SIGMA_OUTPUTS`), the entropy weight
``rate`` and the noise cap ``scale``. The protocol (``docs/evaluation.md``):

1. every candidate explains the same *validation* sentences of the default
   model's data (never the test sentences);
2. :data:`CRITERION` — written into the report before the test run — ranks the
   candidates and :func:`choose` picks the best;
3. the chosen candidate and the explainer default are compared on the *test*
   sentences against every other method; :data:`ADOPTION_RULE` says when the
   chosen one replaces the default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from scipy.stats import rankdata
from torch import nn

from captum_sigma.engine import REFERENCE_OPTIONS, SigmaOptions
from captum_sigma.evaluation.methods import SIGMA_OUTPUTS, MethodSpec, sigma_variant
from captum_sigma.text import DEFAULT_TEXT_OPTIONS, DEFAULT_TEXT_OUTPUT
from captum_sigma.text.model import find_embeddings, model_device

__all__ = [
    "ADOPTION_RULE",
    "CRITERION",
    "CRITERION_CELLS",
    "RATES",
    "StudyChoice",
    "StudyConfig",
    "adopt",
    "choose",
    "default_config",
    "embedding_stds",
    "study_configs",
]

#: Entropy weights of the study (the default is 0.1).
RATES: tuple[float, ...] = (0.01, 0.1, 1.0)
#: (metric, higher is better) of the criterion, each under both removal operators:
#: the AOPC metrics of the signed family and of the distribution-change family.
CRITERION_CELLS: tuple[tuple[str, bool], ...] = (
    ("comprehensiveness", True),
    ("sufficiency", False),
    ("dist_comprehensiveness", True),
    ("dist_sufficiency", False),
)
#: The criterion, as printed in the report (fixed before the test run).
CRITERION = (
    "On the validation sentences, rank the candidates (1 = best mean over the "
    "sentences, ties share their mean rank) in each of 8 cells: comprehensiveness "
    "and sufficiency of the signed family and of the distribution-change family, "
    "each under both removal operators (delete, mask). The candidate with the "
    "lowest mean rank over the 8 cells is chosen; an exact tie goes to the "
    "explainer default, then to the earlier candidate. The representation-change "
    "family is reported but left out: it is measured at the logit / r, the output "
    "some candidates explain, and would favour them. Deletion / insertion curves are "
    "not computed on the validation sentences (their cost)."
)
#: When the chosen candidate replaces the default (applied to the test sentences).
ADOPTION_RULE = (
    "The chosen candidate becomes the default of TextExplainer and the CLI only if, "
    "on the test sentences, it is significantly better than the explainer default "
    "(paired bootstrap interval of the difference excludes 0) in at least 5 of the "
    "8 criterion cells and significantly worse in none."
)


@dataclass(frozen=True)
class StudyConfig:
    r"""One candidate configuration.

    Attributes:
        output (str): What is explained, one of
                :data:`~captum_sigma.evaluation.methods.SIGMA_OUTPUTS`.
        rate (float): Weight of the entropy term.
        scale (float): Upper bound of σ.
        scale_label (str): How ``scale`` was chosen, for the tables.
    """

    output: str
    rate: float
    scale: float
    scale_label: str = ""

    def __post_init__(self) -> None:
        if self.output not in SIGMA_OUTPUTS:
            raise ValueError(
                f"output must be one of {SIGMA_OUTPUTS}, got {self.output!r}"
            )
        for name in ("rate", "scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value)) or (
                value <= 0
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    @property
    def name(self) -> str:
        """The row name, e.g. ``"Sigma [logit, rate 0.1, scale 0.5]"``."""
        return f"Sigma [{self.output}, rate {self.rate:g}, scale {self.scale:.3g}]"

    def options(self, base: SigmaOptions | None = None) -> SigmaOptions:
        """``base`` (default ``SigmaOptions()``) with this rate and scale."""
        return replace(base or SigmaOptions(), rate=self.rate, scale=self.scale)

    def spec(
        self, data: Sequence[str] | None = None, max_rows: int = 256
    ) -> MethodSpec:
        """The :class:`MethodSpec` of this candidate."""
        return sigma_variant(
            self.name, self.output, self.options(), data=data, max_rows=max_rows
        )

    def is_default(self) -> bool:
        """Whether this is the explainer default (:func:`default_config`)."""
        default = default_config()
        return (self.output, self.rate, self.scale) == (
            default.output,
            default.rate,
            default.scale,
        )


def default_config() -> StudyConfig:
    """``TextExplainer``'s default (its output and options) as a candidate."""
    return StudyConfig(
        DEFAULT_TEXT_OUTPUT,
        DEFAULT_TEXT_OPTIONS.rate,
        DEFAULT_TEXT_OPTIONS.scale,
        "default",
    )


def embedding_stds(
    model: nn.Module, tokenizer: object, texts: Sequence[str]
) -> tuple[float, float]:
    r"""The two standard deviations the reference's scale advice can be read at.

    Args:
        model (nn.Module): A Hugging Face model.
        tokenizer (object): Its tokenizer.
        texts (sequence of str): Sentences for the perturbed layer's std.

    Returns:
        (std of the word-embedding matrix, std of the perturbed layer's output
        over the real tokens of ``texts``).
    """
    with torch.no_grad():
        word = float(model.get_input_embeddings().weight.std())
        encoded = tokenizer(list(texts), return_tensors="pt", padding=True)
        device = model_device(model)
        hidden = find_embeddings(model)(encoded["input_ids"].to(device))
        real = encoded["attention_mask"].to(device).bool()
        return word, float(hidden[real].std())


def study_configs(
    word_embedding_std: float, perturbed_std: float | None = None
) -> list[StudyConfig]:
    r"""The candidates: the explainer default first, every output x :data:`RATES`
    at the paper's scale (0.5), and every output at the paper's rate (0.1) with
    the reference's recommended scale.

    Args:
        word_embedding_std (float): Std of the model's word-embedding matrix; the
                reference advises ``scale`` = 10 x it.
        perturbed_std (float, optional): Std of the perturbed layer's output over
                real tokens; adds every output at ``scale`` = 10 x it (the same
                advice read at the layer this package perturbs). Default: None.

    Returns:
        The candidates, the explainer default first.
    """
    paper = REFERENCE_OPTIONS  # the paper's rate (0.1) and scale anchor the grid
    scales = [(round(10 * word_embedding_std, 4), "10 x std(word embeddings)")]
    if perturbed_std is not None:
        scales.append((round(10 * perturbed_std, 4), "10 x std(perturbed layer)"))
    configs = [default_config()]
    for output in SIGMA_OUTPUTS:
        for rate in RATES:
            config = StudyConfig(output, rate, paper.scale, "default")
            if not config.is_default():
                configs.append(config)
        for scale, label in scales:
            configs.append(StudyConfig(output, paper.rate, scale, label))
    return configs


@dataclass
class StudyChoice:
    r"""The ranking of the candidates on the validation sentences.

    Attributes:
        configs (list[StudyConfig]): The candidates, in study order.
        means (dict): ``means[operator][metric]`` -> (n_configs,) mean over the
                validation sentences.
        ranks (dict): ``ranks[operator][metric]`` -> (n_configs,) rank (1 best).
        mean_rank (ndarray): Mean over the criterion cells, (n_configs,).
        chosen (StudyConfig): The lowest mean rank.
    """

    configs: list[StudyConfig]
    means: dict[str, dict[str, np.ndarray]]
    ranks: dict[str, dict[str, np.ndarray]]
    mean_rank: np.ndarray
    chosen: StudyConfig

    def order(self) -> list[int]:
        """Candidate indices from best to worst mean rank (stable)."""
        return [int(i) for i in np.argsort(self.mean_rank, kind="stable")]


def choose(
    metrics: dict[str, dict[str, dict[str, np.ndarray]]],
    configs: Sequence[StudyConfig],
    operators: Sequence[str] = ("delete", "mask"),
) -> StudyChoice:
    r"""Applies :data:`CRITERION` to per-sentence metrics.

    Args:
        metrics (dict): ``metrics[operator][row][metric]`` -> per-sentence values
                (as in ``ComparisonResult.metrics``), with a row per candidate
                (``config.name``).
        configs (sequence of StudyConfig): The candidates; the default first
                wins exact ties, then the earlier one.
        operators (sequence of str, optional): Default: both.

    Returns:
        StudyChoice: Means, ranks and the chosen candidate.
    """
    configs = list(configs)
    if not configs:
        raise ValueError("configs must hold at least one candidate")
    means: dict[str, dict[str, np.ndarray]] = {}
    ranks: dict[str, dict[str, np.ndarray]] = {}
    for operator in operators:
        means[operator], ranks[operator] = {}, {}
        for metric, higher in CRITERION_CELLS:
            values = np.array(
                [np.nanmean(metrics[operator][c.name][metric]) for c in configs]
            )
            if not np.isfinite(values).all():
                raise ValueError(f"{metric} ({operator}) has no finite mean")
            means[operator][metric] = values
            ranks[operator][metric] = rankdata(-values if higher else values)
    mean_rank = np.mean(
        [ranks[op][metric] for op in operators for metric, _ in CRITERION_CELLS],
        axis=0,
    )
    best = np.flatnonzero(mean_rank == mean_rank.min())
    defaults = [i for i in best if configs[i].is_default()]
    chosen = configs[defaults[0] if defaults else int(best[0])]
    return StudyChoice(configs, means, ranks, mean_rank, chosen)


def adopt(significant: Sequence[int]) -> bool:
    r"""Applies :data:`ADOPTION_RULE`.

    Args:
        significant (sequence of int): Per criterion cell, +1 where the chosen
                candidate is significantly better than the default on the test
                sentences, -1 where significantly worse, 0 otherwise.

    Returns:
        bool: Whether the chosen candidate replaces the default.
    """
    values = list(significant)
    if any(v not in (-1, 0, 1) for v in values):
        raise ValueError(f"significant must hold -1, 0 or 1, got {values}")
    return values.count(1) >= 5 and values.count(-1) == 0
