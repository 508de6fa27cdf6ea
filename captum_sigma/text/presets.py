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
from captum_sigma.text.choices import (
    DEFAULT_PRESET,
    OUTPUT_DESCRIPTIONS,
    OUTPUTS,
    PRESET_NAMES,
    PRESET_OUTPUTS,
    PRESET_SUMMARIES,
)

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
#: Each preset's options (its name, output and summary: :mod:`~captum_sigma.text.
#: choices`, importable without torch).
_PRESET_OPTIONS: Dict[str, SigmaOptions] = {
    "default": _DEFAULT_OPTIONS,
    # 8 x the steps: the chains' average forgets their shared linearised start
    # (docs/trust-study.md: half the default's error against long runs)
    "precise": replace(_DEFAULT_OPTIONS, n_steps=8 * _DEFAULT_OPTIONS.n_steps),
    "fast": replace(_DEFAULT_OPTIONS, chains=2, n_steps=23, tol=None),
    "reference": REFERENCE_OPTIONS,
}

#: Every preset by name.
PRESETS: Dict[str, Preset] = {
    name: Preset(
        name=name,
        output=PRESET_OUTPUTS[name],
        options=_PRESET_OPTIONS[name],
        summary=PRESET_SUMMARIES[name],
    )
    for name in PRESET_NAMES
}


def get_preset(name: Any, option: str = "preset") -> Preset:
    """The preset called ``name``: the one rule of a preset's name, for the library
    (``TextExplainer(preset=...)``) and the command line (``--preset``).

    Args:
        name: One of :data:`PRESETS`.
        option: How the caller calls the argument, for the message (``"--preset"``
            for the command line).

    Raises:
        ValueError: If there is no such preset (the message lists them).
    """
    if not isinstance(name, str) or name not in PRESETS:
        raise ValueError(f"{option} must be one of {tuple(PRESETS)}, got {name!r}")
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
