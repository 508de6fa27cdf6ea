r"""Named settings of the text explainer: one record per preset, one source of truth.

A preset is what a user gets by name: what a classifier's explanation explains
(:data:`OUTPUTS`) and every option of the optimisation, its budget included
(:class:`~captum_sigma.SigmaOptions`: steps, chains, tolerance). ``TextExplainer``,
the command line (``--preset``), the corpus job's identity, the comparison's Sigma
rows and the docs all read them from here, and every help text is built from these
constants.

Words mean one thing across the package:

- ``"probability"``: the target class's softmax probability, *self-normalised*
  (each text divides by its own mean ``s²``; no ``r``);
- ``"logit"``: the target class's logit divided by ``r``, its standard deviation
  over a sample of texts;
- ``"log-odds"``: the target class's log-odds ``log p − log(1 − p)`` divided by
  ``r``.

The information is reported in nats per token (the sum over the token's embedding
elements of ``log(scale / σ)``).

Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html
"""

from dataclasses import dataclass, fields, replace
from typing import Any, Dict, Mapping, Optional

from captum_sigma.engine import REFERENCE_OPTIONS, SigmaOptions

__all__ = [
    "DEFAULT_PRESET",
    "OUTPUTS",
    "OUTPUT_DESCRIPTIONS",
    "PRESETS",
    "Preset",
    "describe_presets",
    "get_preset",
    "merge_options",
]

#: What a classifier's explanation can explain, each described in one line.
OUTPUT_DESCRIPTIONS: Dict[str, str] = {
    "probability": "the target class's probability, self-normalised (no r)",
    "logit": "the target class's logit / r",
    "log-odds": "the target class's log-odds log p - log(1 - p), / r",
}
#: The names of :data:`OUTPUT_DESCRIPTIONS`, in order.
OUTPUTS = tuple(OUTPUT_DESCRIPTIONS)


@dataclass(frozen=True)
class Preset:
    """A named setting: the explained output of a classifier and every option.

    Attributes:
        name: The preset's name (``--preset NAME``).
        output: A classifier's explained output, one of :data:`OUTPUTS`. A bare
            encoder (no classifier) always explains its pooled embedding / r and a
            layer (``layer=k``) its hidden state / r; they use only ``options``.
        options: The optimisation's options, budget included.
        summary: One line for help texts and docs.
    """

    name: str
    output: str
    options: SigmaOptions
    summary: str

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")

    def describe(self) -> str:
        """``name: summary (output; the budget)`` in one line."""
        return f"{self.name}: {self.summary} ({self.output}; {budget(self.options)})"


def budget(options: SigmaOptions) -> str:
    """The budget of ``options`` in words, with the passes a class's output costs.

    E.g. ``"rate 1, 4 chains x 23-115 steps (until every standard error <= 10 %
    of the top score), 93-461 passes per text"``.
    """
    chains = f"{options.chains} chain{'s' if options.chains > 1 else ''}"
    passes = options.passes_per_example(n_outputs=1)
    if not options.uses_tol:
        steps = f"{options.n_steps} steps"
        cost = f"{passes}"
    else:
        limit = options.step_limit
        steps = (
            f"{options.n_steps}-{limit} steps (until every standard error <= "
            f"{options.tol:.0%} of the top score)"
        )
        cost = f"{passes}-{options.passes_per_example(limit, n_outputs=1)}"
    return f"rate {options.rate:g}, {chains} x {steps}, {cost} passes per text"


_DEFAULT_OPTIONS = SigmaOptions()

#: Every preset by name.
PRESETS: Dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name="default",
            output="log-odds",
            options=_DEFAULT_OPTIONS,
            summary="stable by default: independent chains until every token's "
            "standard error is below the tolerance",
        ),
        Preset(
            name="fast",
            output="log-odds",
            options=replace(_DEFAULT_OPTIONS, chains=2, n_steps=23, tol=None),
            summary="about the old 50-pass cost, with a rough standard error "
            "(2 chains)",
        ),
        Preset(
            name="reference",
            output="logit",
            options=REFERENCE_OPTIONS,
            summary="the paper's reference run (Adam, 5000 steps, random init, "
            "lowest single-sample loss), rate 0.1",
        ),
    )
}
#: The preset ``TextExplainer`` and the command line use when none is named.
DEFAULT_PRESET = "default"


def get_preset(name: Any) -> Preset:
    """The preset called ``name``.

    Raises:
        ValueError: If there is no such preset (the message lists them).
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"preset must be one of {tuple(PRESETS)}, got {name!r}")
    return PRESETS[name]


def describe_presets() -> str:
    """Every preset in one line each (for help texts)."""
    return "\n".join(PRESETS[name].describe() for name in PRESETS)


def merge_options(
    base: SigmaOptions,
    options: Optional[SigmaOptions] = None,
    overrides: Optional[Mapping[str, Any]] = None,
) -> SigmaOptions:
    """``base`` with the fields ``options`` sets, then with the given overrides.

    ``options`` merges like the flat arguments: each of its fields that differs
    from :class:`~captum_sigma.SigmaOptions`'s own default replaces ``base``'s;
    ``overrides`` (e.g. ``{"rate": 1.0, "seed": None}``) replace every field that
    is not None.

    Raises:
        TypeError: If ``options`` is not a :class:`~captum_sigma.SigmaOptions`.
    """
    given: Dict[str, Any] = {}
    if options is not None:
        if not isinstance(options, SigmaOptions):
            raise TypeError(
                f"options must be a SigmaOptions or None, got {type(options).__name__}"
            )
        given.update(
            {
                item.name: getattr(options, item.name)
                for item in fields(SigmaOptions)
                if getattr(options, item.name) != getattr(_DEFAULT_OPTIONS, item.name)
            }
        )
    for name, value in (overrides or {}).items():
        if value is not None:
            given[name] = value
    return replace(base, **given) if given else base
