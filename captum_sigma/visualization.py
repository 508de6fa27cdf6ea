r"""Records, escaped HTML pages, figures and tables of sigma attributions.

Everything here takes plain tokens and numbers (no models, no tokenizers), so
:mod:`captum_sigma.text` calls it and not the other way round.

Scores are the sigma attribution's information in **nats per token**,
``K · log(scale / σ)`` summed over the ``K`` elements of a token's embedding
(larger = more important), from Guan et al., "Towards a Deep and Unified
Understanding of Deep Neural Models in NLP", ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html

Colours are absolute: a token's colour is its score divided by a maximum ``vmax``
in nats per token (0 nats is white), the same ``vmax`` for every sentence of a page
or report (:func:`shared_vmax`), never each sentence's own min–max, so that a nearly
constant sentence is drawn nearly uniform and two sentences can be compared. Every
page and figure carries a legend in nats per token.

Uncertainty (docs/evaluation.md, "Stability and uncertainty of a stochastic
attribution"): with ``chains ≥ 2`` independent optimisation chains a token's
standard error gives a Student-t interval (:func:`score_intervals`); a token whose
interval overlaps the sentence's median is *not distinguishable*
(:func:`distinguishable_tokens`) and is marked as such in every picture; a sentence
in which no token stands out is *flat* (:func:`is_flat`, the one place that rule
lives) and every view says :data:`NO_TOKEN_STANDS_OUT`.

Captum's own ``visualize_text`` does not HTML-escape the words it shows (captum issue
#1226), so a token such as ``<img src=x onerror=...>`` would be injected as markup;
:func:`records_to_html` escapes every token, label and caption with
:func:`html.escape`. :func:`token_marks` is the package's one renderer of tokens
and scores as HTML (every page, including the evaluation's comparison page, uses
it) and :func:`token_colour` its one colour scale.
"""

import html
import math
import numbers
import textwrap
from typing import (
    Any,
    Iterable,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)

import numpy as np
import torch
from captum.attr import visualization as captum_visualization
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from scipy import stats

__all__ = [
    "DEFAULT_LEVEL",
    "FLAT_SPREAD",
    "MERGED_NOTE",
    "NO_TOKEN_STANDS_OUT",
    "SCORE_UNIT",
    "VisualizationDataRecord",
    "absolute_scores",
    "distinguishable_tokens",
    "explanations_to_html",
    "format_token_table",
    "half_widths",
    "information_spread",
    "is_flat",
    "make_record",
    "median_information",
    "normalize_scores",
    "plot_token_scores",
    "plot_words_layers",
    "records_to_html",
    "score_intervals",
    "shared_vmax",
    "t_quantile",
    "token_colour",
    "token_marks",
]

#: Captum's record class (``captum.attr.visualization.VisualizationDataRecord``).
VisualizationDataRecord = captum_visualization.VisualizationDataRecord

#: Methods of :func:`normalize_scores`. Sigma's own views never use ``"minmax"``
#: (they colour absolute nats per token, see :func:`absolute_scores`); it is kept
#: for callers that compare methods without a common unit.
NORMALIZATIONS = ("max", "minmax")

#: The unit of every per-token score a user sees.
SCORE_UNIT = "nats per token"

#: What every view of a flat explanation says (:func:`is_flat`).
NO_TOKEN_STANDS_OUT = "no token stands out at this budget"

#: The note every view of merged words carries.
MERGED_NOTE = "words: scores are sums over their word pieces (information adds)"

#: Confidence level of the intervals, marks and ties unless a caller says otherwise.
DEFAULT_LEVEL = 0.95

#: A sentence whose information spread over its non-special tokens,
#: ``(max − min) / max``, is below this is flat (see :func:`is_flat`).
FLAT_SPREAD = 0.2

#: Matplotlib colour map of the figures: darker = more information (the paper's
#: tutorials draw σ with the reversed map, darker = smaller σ).
CMAP = "GnBu"


_PAGE_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table.records { border-collapse: collapse; width: 100%; }
table.records th, table.records td { border: 1px solid #ccc; padding: 0.4em;
  text-align: left; vertical-align: top; }
mark { line-height: 1.9; padding: 0.1em 0.15em; border-radius: 0.2em;
  color: black; border: 1.5px solid transparent; }
mark.indistinct { border: 1.5px dashed #666; }
.caption { color: #555; font-size: 0.9em; margin-bottom: 0.3em; }
.notice { font-weight: bold; color: #8a4b00; }
.legend { margin: 0.3em 0; }
.legend .swatch { display: inline-block; width: 2.6em; height: 1.1em;
  border: 1px solid #999; vertical-align: middle; text-align: center;
  font-size: 0.75em; line-height: 1.1em; }
.legend .dashed { display: inline-block; padding: 0 0.3em;
  border: 1.5px dashed #666; border-radius: 0.2em; }
"""


class _Explanation(Protocol):
    """What :func:`explanations_to_html` needs of an explanation (e.g.
    :class:`captum_sigma.text.TextExplanation`)."""

    text: str
    merged: bool
    chains: int

    def to_record(
        self,
        true_class: Union[None, int, str] = None,
        vmax: Optional[float] = None,
        level: float = DEFAULT_LEVEL,
    ) -> Any: ...

    def token_notes(self, level: float = DEFAULT_LEVEL) -> List[str]: ...

    def distinguishable(self, level: float = DEFAULT_LEVEL) -> Optional[List[bool]]: ...

    def is_flat(self, level: float = DEFAULT_LEVEL) -> bool: ...


# -- uncertainty and flatness ---------------------------------------------------------


def t_quantile(level: float, chains: int) -> float:
    """The two-sided Student-t quantile of a ``level`` interval from ``chains`` chains.

    Args:
        level: Confidence level in ``(0, 1)``, e.g. 0.95.
        chains: Number of independent chains (``chains - 1`` degrees of freedom).

    Returns:
        ``scipy.stats.t.ppf(0.5 + level / 2, chains - 1)`` (12.71 for two chains and
        0.95, 3.18 for four, 1.96 in the limit).

    Raises:
        ValueError: If ``level`` is not in ``(0, 1)`` or ``chains < 2``.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if chains < 2:
        raise ValueError(f"an interval needs at least 2 chains, got {chains}")
    return float(stats.t.ppf(0.5 + level / 2.0, chains - 1))


def half_widths(
    standard_error: Optional[Sequence[float]],
    chains: int,
    level: float = DEFAULT_LEVEL,
) -> Optional[List[float]]:
    """Half-widths of the ``level`` intervals: ``t_quantile × standard error``.

    Args:
        standard_error: Per-token standard errors in nats per token, or None.
        chains: Number of chains behind them.
        level: Confidence level.

    Returns:
        One half-width per token in nats per token; None when there is no standard
        error or fewer than 2 chains (no uncertainty is known then).
    """
    if standard_error is None or chains < 2:
        return None
    quantile = t_quantile(level, chains)
    return [quantile * float(se) for se in _as_list(standard_error)]


def score_intervals(
    scores: Union[Sequence[float], torch.Tensor],
    standard_error: Optional[Sequence[float]],
    chains: int,
    level: float = DEFAULT_LEVEL,
) -> Optional[List[Tuple[float, float]]]:
    """Per-token ``(low, high)`` Student-t intervals, ``score ± t × SE``.

    Args:
        scores: Per-token scores in nats per token.
        standard_error: Their standard errors, or None.
        chains: Number of independent chains (``chains - 1`` degrees of freedom).
        level: Confidence level.

    Returns:
        The intervals in nats per token, or None without a standard error (or with
        fewer than 2 chains).
    """
    widths = half_widths(standard_error, chains, level)
    if widths is None:
        return None
    values = _as_list(scores)
    if len(widths) != len(values):
        raise ValueError(
            f"standard_error: got {len(widths)} values for {len(values)} scores"
        )
    return [(v - w, v + w) for v, w in zip(values, widths)]


def distinguishable_tokens(
    scores: Union[Sequence[float], torch.Tensor],
    standard_error: Optional[Sequence[float]],
    chains: int,
    special: Optional[Sequence[bool]] = None,
    pieces: Optional[Sequence[int]] = None,
    level: float = DEFAULT_LEVEL,
) -> Optional[List[bool]]:
    """Which tokens' intervals exclude the sentence's median.

    The reference is the median score of the non-special tokens. For merged words
    (``pieces`` given) it is the median information *per word piece* times the
    word's number of pieces, so that a word is not told apart from the rest merely
    because the tokenizer cut it in two; with one piece per token this is the plain
    median.

    Args:
        scores: Per-token scores in nats per token.
        standard_error: Their standard errors, or None.
        chains: Number of independent chains.
        special: Which tokens are special (``[CLS]``, ``[SEP]``); they are judged
            against the same reference but do not enter the median.
        pieces: Word pieces behind each score (after merging sub-words).
        level: Confidence level.

    Returns:
        One bool per token (True: the interval excludes the reference), or None
        without a standard error.
    """
    intervals = score_intervals(scores, standard_error, chains, level)
    if intervals is None:
        return None
    counts = _pieces(pieces, len(intervals))
    median = median_information(scores, special, pieces)
    if not math.isfinite(median):
        return [False] * len(intervals)
    return [
        not (low <= count * median <= high)
        for (low, high), count in zip(intervals, counts)
    ]


def median_information(
    scores: Union[Sequence[float], torch.Tensor],
    special: Optional[Sequence[bool]] = None,
    pieces: Optional[Sequence[int]] = None,
) -> float:
    """The sentence's median information: the reference of
    :func:`distinguishable_tokens`.

    Args:
        scores: Per-token scores in nats per token.
        special: Which tokens are special (left out).
        pieces: Word pieces behind each score; the median is then per piece.

    Returns:
        The median over the non-special tokens (per piece after merging) in nats
        per token; NaN when there is no non-special token.
    """
    values = _as_list(scores)
    per_piece = _per_piece(values, _pieces(pieces, len(values)), special)
    return float(np.median(per_piece)) if per_piece else float("nan")


def information_spread(
    scores: Union[Sequence[float], torch.Tensor],
    special: Optional[Sequence[bool]] = None,
    pieces: Optional[Sequence[int]] = None,
) -> float:
    """``(max − min) / max`` of the non-special tokens' information.

    For merged words (``pieces`` given) the information per word piece is used, so
    merging alone cannot make a flat sentence look uneven.

    Returns:
        The spread in ``[0, 1]`` for non-negative scores; 0 when there are no
        non-special tokens or the largest score is not positive.
    """
    values = _as_list(scores)
    per_piece = _per_piece(values, _pieces(pieces, len(values)), special)
    if not per_piece:
        return 0.0
    high, low = max(per_piece), min(per_piece)
    if high <= 0.0:
        return 0.0
    return (high - low) / high


def is_flat(
    scores: Union[Sequence[float], torch.Tensor],
    standard_error: Optional[Sequence[float]] = None,
    chains: int = 1,
    special: Optional[Sequence[bool]] = None,
    pieces: Optional[Sequence[int]] = None,
    level: float = DEFAULT_LEVEL,
) -> bool:
    """Whether an explanation is flat: no token stands out at this budget.

    The package's one definition of a flat explanation (docs/evaluation.md,
    "Choosing a configuration without touching the test data": "flat = information
    spread below 20 % of its maximum, or flat within the explanation's own
    uncertainty"). An explanation is flat when

    * its :func:`information_spread` over the non-special tokens,
      ``(max − min) / max``, is below :data:`FLAT_SPREAD` (0.2), or
    * it has a standard error (``chains ≥ 2``) and no non-special token's
      ``level`` interval excludes the sentence's median
      (:func:`distinguishable_tokens`).

    Args:
        scores: Per-token scores in nats per token.
        standard_error: Their standard errors, or None.
        chains: Number of independent chains behind them.
        special: Which tokens are special (left out of both criteria).
        pieces: Word pieces behind each score (after merging sub-words).
        level: Confidence level of the intervals.

    Returns:
        True for a flat explanation (also when there are no non-special tokens).
    """
    values = _as_list(scores)
    if information_spread(values, special, pieces) < FLAT_SPREAD:
        return True
    marks = distinguishable_tokens(
        values, standard_error, chains, special, pieces, level
    )
    if marks is None:
        return False
    flags = _special(special, len(values))
    return not any(mark for mark, skip in zip(marks, flags) if not skip)


# -- colour scales ------------------------------------------------------------------


def shared_vmax(explanations: Iterable[Any], vmax: Optional[float] = None) -> float:
    """One colour-scale maximum, in nats per token, for several explanations.

    Args:
        explanations: Explanations (anything with ``scores``: a
            :class:`~captum_sigma.text.TextExplanation`, a
            :class:`~captum_sigma.text.WordsLayersExplanation`) or plain sequences of
            scores in nats per token.
        vmax: A fixed maximum given by the caller (e.g. to compare pages); returned
            as it is after checking that it is positive.

    Returns:
        ``vmax`` if given, else the largest finite score over all explanations, so
        that nothing on the page is clipped; 1.0 when no score is positive.
    """
    if vmax is not None:
        if not (math.isfinite(vmax) and vmax > 0):
            raise ValueError(f"vmax must be a positive number of nats, got {vmax}")
        return float(vmax)
    peak = 0.0
    for item in explanations:
        for value in _flatten(getattr(item, "scores", item)):
            if math.isfinite(value):
                peak = max(peak, value)
    return peak if peak > 0.0 else 1.0


def absolute_scores(
    scores: Union[Sequence[float], torch.Tensor], vmax: float
) -> List[float]:
    """Scores on an absolute scale: ``score / vmax`` clipped to ``[0, 1]``.

    Args:
        scores: Per-token scores in nats per token.
        vmax: The scale's maximum in nats per token (positive).

    Returns:
        One value per token; 0 nats is 0, ``vmax`` and above are 1; NaN is 0.
    """
    if not (math.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax must be a positive number of nats, got {vmax}")
    values = np.nan_to_num(np.asarray(_as_list(scores), dtype=np.float64), nan=0.0)
    return np.clip(values / vmax, 0.0, 1.0).tolist()


def normalize_scores(
    scores: Union[Sequence[float], torch.Tensor], method: str = "max"
) -> List[float]:
    """Scales scores by the sentence's own values (for scores without a unit).

    Sigma's own views colour absolute nats per token instead
    (:func:`absolute_scores` with :func:`shared_vmax`).

    Args:
        scores: Per-token scores.
        method: ``"max"``: ``score / max(|scores|)``, in ``[-1, 1]`` (``[0, 1]`` for
            non-negative scores; keeps ratios and signs, e.g. for Integrated
            Gradients). ``"minmax"``: ``(score - min) / (max - min)`` in ``[0, 1]``
            (stretches any difference over the whole range: a nearly constant
            sentence looks uneven; all ones when every score is equal).

    Returns:
        One value per token; NaN becomes 0; all zeros when every score is zero.
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"method must be one of {NORMALIZATIONS}, got {method!r}")
    values = np.nan_to_num(np.asarray(_as_list(scores), dtype=np.float64), nan=0.0)
    if values.size == 0:
        return []
    if method == "minmax":
        low, high = float(values.min()), float(values.max())
        if high == low:
            return [1.0 if high != 0.0 else 0.0] * int(values.size)
        return ((values - low) / (high - low)).tolist()
    peak = float(np.abs(values).max())
    if peak == 0.0:
        return [0.0] * int(values.size)
    return np.clip(values / peak, -1.0, 1.0).tolist()


# -- records and HTML ---------------------------------------------------------------


def make_record(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor],
    pred_prob: Optional[float] = None,
    pred_class: Union[None, int, str] = None,
    true_class: Union[None, int, str] = None,
    attr_class: Union[None, int, str] = None,
    attr_score: Optional[float] = None,
    normalize: Union[bool, str] = True,
    vmax: Optional[float] = None,
) -> VisualizationDataRecord:
    """Builds a Captum ``VisualizationDataRecord`` from per-token scores.

    Args:
        tokens: The tokens shown (``raw_input_ids`` of the record).
        scores: Per-token scores, one per token (nats per token for sigma).
        pred_prob: Probability of the predicted class; NaN when there is none.
        pred_class: Predicted class (index or name); ``""`` when there is none.
        true_class: True class, if known; ``""`` otherwise.
        attr_class: What was explained (class or hidden state); ``""`` if unknown.
            Captum's only free-text field: put notices such as
            :data:`NO_TOKEN_STANDS_OUT` here.
        attr_score: Total score; defaults to the sum of ``scores`` (information
            adds up over tokens).
        normalize: Without ``vmax``: scale ``word_attributions`` with
            :func:`normalize_scores` (Captum's colours clip at ``[-1, 1]``): True or
            ``"max"`` divides by the largest absolute score, ``"minmax"`` maps onto
            ``[0, 1]``, False keeps the scores. Ignored when ``vmax`` is given.
        vmax: The maximum of an absolute scale in nats per token (the same for
            every record of a page, see :func:`shared_vmax`):
            ``word_attributions = score / vmax`` clipped to ``[0, 1]``.

    Returns:
        The record; ``word_attributions`` is a 1-D float tensor.
    """
    values = _as_list(scores)
    if len(values) != len(tokens):
        raise ValueError(
            f"scores: got {len(values)} scores for {len(tokens)} tokens; give one per "
            "token"
        )
    if vmax is not None:
        shown = absolute_scores(values, vmax)
    elif normalize is False:
        shown = values
    else:
        shown = normalize_scores(values, "max" if normalize is True else normalize)
    total = float(np.nansum(values)) if attr_score is None else float(attr_score)
    return VisualizationDataRecord(
        torch.tensor(shown, dtype=torch.float32),
        float("nan") if pred_prob is None else float(pred_prob),
        "" if pred_class is None else pred_class,
        "" if true_class is None else true_class,
        "" if attr_class is None else attr_class,
        total,
        list(tokens),
        None,
    )


def records_to_html(
    records: Sequence[VisualizationDataRecord],
    title: str = "Sigma attribution",
    captions: Optional[Sequence[str]] = None,
    token_notes: Optional[Sequence[Sequence[str]]] = None,
    legend: bool = True,
    vmax: Optional[float] = None,
    distinguishable: Optional[Sequence[Optional[Sequence[bool]]]] = None,
    notes: Sequence[str] = (),
    level: float = DEFAULT_LEVEL,
) -> str:
    """Renders records as a self-contained HTML page, every string escaped.

    The layout follows Captum's ``visualize_text`` (true label, predicted label,
    attribution label, attribution score, coloured words) but needs no IPython, no
    script and no external resource, and escapes every token, label, caption, note
    and the title with :func:`html.escape` (captum issue #1226).

    Args:
        records: Captum records (e.g. from :func:`make_record`); their
            ``word_attributions`` are expected in ``[-1, 1]``.
        title: Page title and heading.
        captions: Optional text shown above each record's words (e.g. the input
            text).
        token_notes: Optional tooltip per token of each record (e.g. the score in
            nats per token with its interval, and σ).
        legend: Show the colour legend.
        vmax: The maximum, in nats per token, of the absolute scale the records
            were made with (``make_record(..., vmax=vmax)``); the legend then shows
            the scale in nats per token. None: the records hold values without a
            unit and the legend says so.
        distinguishable: Optional per record: which tokens' intervals exclude the
            sentence's median (None for a record without uncertainty). Tokens marked
            False get a dashed border, and the legend explains the mark.
        notes: Paragraphs shown under the legend (e.g. :data:`MERGED_NOTE`).
        level: Confidence level of the intervals behind ``distinguishable`` (for
            the legend's text).

    Returns:
        The HTML page as a string.
    """
    _check_parallel("captions", captions, len(records))
    _check_parallel("token_notes", token_notes, len(records))
    _check_parallel("distinguishable", distinguishable, len(records))
    score_header = "Attribution score"
    if vmax is not None:
        score_header = "Total information (nats, sum over tokens)"
    rows = [
        "<tr><th>True label</th><th>Predicted label</th><th>Attribution label</th>"
        f"<th>{score_header}</th><th>Word importance</th></tr>"
    ]
    for index, record in enumerate(records):
        caption = None if captions is None else captions[index]
        row_notes = None if token_notes is None else token_notes[index]
        marks = None if distinguishable is None else distinguishable[index]
        rows.append(_record_row(record, caption, row_notes, marks))
    marked = distinguishable is not None and any(
        marks is not None and not all(marks) for marks in distinguishable
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_escape(title)}</title>",
        f"<style>{_PAGE_STYLE}</style></head><body>",
        f"<h2>{_escape(title)}</h2>",
    ]
    if legend:
        parts.append(_legend(vmax, marked, level))
    parts.extend(f'<p class="caption">{_escape(note)}</p>' for note in notes)
    parts.append('<table class="records">' + "".join(rows) + "</table>")
    parts.append(
        '<p class="caption">Sigma attribution (Guan et al., ICML 2019, '
        "http://proceedings.mlr.press/v97/guan19a.html): information of each token "
        f"in {SCORE_UNIT}, K log(scale / &sigma;) summed over the K elements of its "
        "embedding; darker = more information.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def explanations_to_html(
    explanations: Sequence[_Explanation],
    title: str = "Sigma attribution",
    vmax: Optional[float] = None,
    true_classes: Optional[Sequence[Union[None, int, str]]] = None,
    level: float = DEFAULT_LEVEL,
) -> str:
    """One HTML page of several explanations on one shared colour scale.

    Args:
        explanations: :class:`~captum_sigma.text.TextExplanation` objects.
        title: Page title and heading.
        vmax: Maximum of the colour scale in nats per token; default
            :func:`shared_vmax` of the explanations (their largest score).
        true_classes: The true class of each explanation, if known.
        level: Confidence level of the intervals and marks.

    Returns:
        The page: a legend in nats per token, one row per explanation, tokens
        whose interval overlaps their sentence's median marked, flat explanations
        labelled :data:`NO_TOKEN_STANDS_OUT`.
    """
    explanations = list(explanations)
    _check_parallel("true_classes", true_classes, len(explanations))
    scale = shared_vmax(explanations, vmax)
    records = [
        item.to_record(
            true_class=None if true_classes is None else true_classes[index],
            vmax=scale,
            level=level,
        )
        for index, item in enumerate(explanations)
    ]
    notes = []
    flat = sum(1 for item in explanations if item.is_flat(level))
    if flat:
        which = "Flat explanation"
        if len(explanations) > 1:
            which = f"{flat} of {len(explanations)} sentences are flat"
        notes.append(
            f"{which}: {NO_TOKEN_STANDS_OUT} (flat: the information spread over "
            f"the words is below {100 * FLAT_SPREAD:.0f} % of its maximum, or no "
            f"word's {_percent(level)} interval excludes the sentence's median)."
        )
    if any(item.merged for item in explanations):
        notes.append(f"{MERGED_NOTE[0].upper()}{MERGED_NOTE[1:]}.")
    chains = sorted({item.chains for item in explanations if item.chains >= 2})
    if chains:
        notes.append(
            f"Intervals: {_percent(level)} Student-t intervals from "
            f"{' / '.join(str(c) for c in chains)} independent chains; hover a "
            "token for its score ± half-width."
        )
    else:
        notes.append(
            "One chain: no standard error, so no interval and no "
            "distinguishability marks."
        )
    return records_to_html(
        records,
        title=title,
        captions=[item.text for item in explanations],
        token_notes=[item.token_notes(level) for item in explanations],
        vmax=scale,
        distinguishable=[item.distinguishable(level) for item in explanations],
        notes=notes,
        level=level,
    )


def token_marks(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor, np.ndarray],
    normalize: Union[bool, str] = False,
    ranked: Optional[Sequence[bool]] = None,
    token_notes: Optional[Sequence[str]] = None,
    distinguishable: Optional[Sequence[bool]] = None,
) -> str:
    """Renders tokens as escaped ``<mark>`` elements coloured by their scores.

    The package's one token renderer: every token and note is escaped with
    :func:`html.escape` and coloured with :func:`token_colour`.

    Args:
        tokens: The tokens shown.
        scores: At least one score per token (values past ``len(tokens)``, e.g.
            padding, are ignored).
        normalize: False: the scores are already in ``[-1, 1]`` (e.g. from
            :func:`absolute_scores`); True, ``"max"`` or ``"minmax"``: scaled with
            :func:`normalize_scores` over the ranked tokens.
        ranked: Which tokens are ranked (default: all); the others (e.g.
            ``[CLS]``) are marked ``class="special"``, without colour or note.
        token_notes: Optional tooltip per token (e.g. its score).
        distinguishable: Optional flag per token; tokens flagged False (interval
            overlapping the sentence's median) get ``class="indistinct"`` (a dashed
            border).

    Returns:
        The marks, joined by spaces.
    """
    values = _as_list(scores)
    if len(values) < len(tokens):
        raise ValueError(f"scores: {len(tokens)} tokens but only {len(values)} scores")
    _check_per_token("token_notes", token_notes, "notes", len(tokens))
    _check_per_token("distinguishable", distinguishable, "flags", len(tokens))
    shown = [True] * len(tokens) if ranked is None else [bool(r) for r in ranked]
    if len(shown) < len(tokens):
        raise ValueError(f"ranked: {len(tokens)} tokens but only {len(shown)} flags")
    shown = shown[: len(tokens)]
    values = values[: len(tokens)]
    if normalize is not False:
        method = "max" if normalize is True else normalize
        scaled = iter(normalize_scores([v for v, r in zip(values, shown) if r], method))
        values = [next(scaled) if r else 0.0 for r in shown]
    marks = []
    for index, token in enumerate(tokens):
        if not shown[index]:
            marks.append(f'<mark class="special">{_escape(token)}</mark>')
            continue
        note = "" if token_notes is None else f' title="{_escape(token_notes[index])}"'
        css = ""
        if distinguishable is not None and not distinguishable[index]:
            css = ' class="indistinct"'
        marks.append(
            f'<mark{css} style="background-color: {token_colour(values[index])}"'
            f"{note}>{_escape(token)}</mark>"
        )
    return " ".join(marks)


def token_colour(value: float) -> str:
    """The package's one token colour scale (Captum's): a CSS colour for a
    normalised score in [-1, 1], green for positive, red for negative, clipped
    (NaN and Inf: white)."""
    value = 0.0 if not math.isfinite(value) else max(-1.0, min(1.0, value))
    if value >= 0:
        return f"hsl(120, 75%, {100 - int(50 * value)}%)"
    return f"hsl(0, 75%, {100 - int(-40 * value)}%)"


# -- figures ------------------------------------------------------------------------


def plot_token_scores(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor],
    title: Optional[str] = None,
    per_row: int = 20,
    vmax: Optional[float] = None,
    distinguishable: Optional[Sequence[bool]] = None,
    notes: Sequence[str] = (),
    level: float = DEFAULT_LEVEL,
) -> Figure:
    """Draws tokens coloured by their information in nats per token.

    Each row of the figure is a strip of coloured cells, one per token, labelled
    with the token below it; long texts wrap after ``per_row`` tokens. The colour
    scale is absolute, from 0 (white) to ``vmax``, with a colour bar in nats per
    token.

    Args:
        tokens: The tokens.
        scores: One score per token (nats per token).
        title: Figure title.
        per_row: Tokens per row.
        vmax: Maximum of the colour scale in nats per token (the same for every
            figure of a report: :func:`shared_vmax`); default: the largest score.
        distinguishable: Optional flag per token; tokens flagged False (interval
            overlapping the sentence's median) are hatched with a grey dashed
            outline, and a legend below the figure explains the mark.
        notes: Lines added to that legend (e.g. :data:`MERGED_NOTE`).
        level: Confidence level behind ``distinguishable`` (for the legend).

    Returns:
        A matplotlib ``Figure`` (not registered with pyplot: save it with
        ``fig.savefig(path)``).
    """
    values = _as_list(scores)
    if len(values) != len(tokens):
        raise ValueError(
            f"scores: got {len(values)} scores for {len(tokens)} tokens; give one per "
            "token"
        )
    _check_per_token("distinguishable", distinguishable, "flags", len(tokens))
    if per_row <= 0:
        raise ValueError(f"per_row must be positive, got {per_row}")
    scale = shared_vmax([values], vmax)
    count = max(len(tokens), 1)
    n_rows = math.ceil(count / per_row)
    width = min(count, per_row)
    fig_width = max(7.5, 1.0 + 0.62 * width)
    fig = Figure(figsize=(fig_width, 2.0 + 1.35 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, 1, squeeze=False)[:, 0]
    image = None
    marked = False
    for row, ax in enumerate(axes):
        start, stop = row * per_row, min((row + 1) * per_row, len(tokens))
        strip = np.full((1, width), np.nan)
        strip[0, : stop - start] = values[start:stop]
        image = ax.imshow(
            np.ma.masked_invalid(strip), cmap=CMAP, vmin=0.0, vmax=scale, aspect="auto"
        )
        if distinguishable is not None:
            for column, index in enumerate(range(start, stop)):
                if not distinguishable[index]:
                    shade = values[index] / scale if math.isfinite(values[index]) else 0
                    ax.add_patch(_indistinct_patch(column - 0.5, -0.5, shade))
                    marked = True
        ax.set_xticks(range(stop - start))
        ax.set_xticklabels(
            [_plain(t) for t in tokens[start:stop]], rotation=50, ha="right"
        )
        ax.set_yticks([])
        ax.set_xlim(-0.5, width - 0.5)
    if title:
        fig.suptitle(_wrap(_plain(title), fig_width, 12))
    if image is not None:
        fig.colorbar(
            image,
            ax=list(axes),
            location="bottom",
            label=f"information ({SCORE_UNIT}); 0 = white",
            shrink=0.6,
            aspect=35,
            extend="max" if max(values, default=0.0) > scale else "neither",
        )
    _figure_legend(fig, marked, notes, level, fig_width)
    return fig


def plot_words_layers(
    tokens: Sequence[str],
    layers: Sequence[Union[int, str]],
    matrix: Union[Sequence[Sequence[float]], torch.Tensor],
    title: Optional[str] = None,
    vmax: Optional[float] = None,
    distinguishable: Optional[Sequence[Sequence[bool]]] = None,
    notes: Sequence[str] = (),
    level: float = DEFAULT_LEVEL,
) -> Figure:
    """Draws the words × layers heatmap (the paper's coherency view).

    Args:
        tokens: The ``n_tokens`` tokens (horizontal axis).
        layers: The ``n_layers`` layer labels (vertical axis, first on top).
        matrix: ``(n_layers, n_tokens)`` scores in nats per token.
        title: Figure title.
        vmax: Maximum of the colour scale in nats per token; default: the largest
            score. The scale starts at 0 (white).
        distinguishable: Optional ``(n_layers, n_tokens)`` flags; cells flagged
            False (interval overlapping that layer's median) are hatched.
        notes: Lines added to the legend below the figure.
        level: Confidence level behind ``distinguishable`` (for the legend).

    Returns:
        A matplotlib ``Figure``.
    """
    values = np.asarray(
        matrix.tolist() if isinstance(matrix, torch.Tensor) else matrix,
        dtype=np.float64,
    )
    if values.ndim != 2 or values.shape != (len(layers), len(tokens)):
        raise ValueError(
            f"matrix: expected shape ({len(layers)}, {len(tokens)}) = (layers, "
            f"tokens), got {values.shape}"
        )
    if distinguishable is not None and np.shape(distinguishable) != values.shape:
        raise ValueError(
            f"distinguishable: expected shape {values.shape} = (layers, tokens)"
        )
    scale = shared_vmax([values.tolist()], vmax)
    fig_width = max(7.5, 2.4 + 0.55 * len(tokens))
    fig = Figure(
        figsize=(fig_width, 2.2 + 0.45 * max(len(layers), 1)), layout="constrained"
    )
    ax = fig.subplots()
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=CMAP, vmin=0.0, vmax=scale, aspect="auto"
    )
    marked = False
    if distinguishable is not None:
        for row, flags in enumerate(distinguishable):
            for column, flag in enumerate(flags):
                if not flag:
                    shade = float(np.nan_to_num(values[row, column])) / scale
                    ax.add_patch(_indistinct_patch(column - 0.5, row - 0.5, shade))
                    marked = True
    ax.set_xticks(range(len(tokens)))
    ax.set_xticklabels([_plain(t) for t in tokens], rotation=50, ha="right")
    ax.set_yticks(range(len(layers)))
    ax.set_yticklabels([_plain(str(layer)) for layer in layers])
    ax.set_ylabel("layer")
    if title:
        ax.set_title(_wrap(_plain(title), fig_width, 12))
    finite = values[np.isfinite(values)]
    fig.colorbar(
        image,
        ax=ax,
        label=f"information ({SCORE_UNIT})",
        extend="max" if finite.size and finite.max() > scale else "neither",
    )
    _figure_legend(fig, marked, notes, level, fig_width, "the layer's median")
    return fig


# -- tables -------------------------------------------------------------------------


def format_token_table(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor],
    sigma: Union[Sequence[float], torch.Tensor],
    bar_width: int = 20,
    standard_error: Optional[Sequence[float]] = None,
    chains: int = 1,
    level: float = DEFAULT_LEVEL,
    distinguishable: Optional[Sequence[bool]] = None,
    vmax: Optional[float] = None,
    notes: Sequence[str] = (),
) -> str:
    """A plain-text table of tokens, scores, σ and a bar, for a terminal.

    Args:
        tokens: The tokens.
        scores: One score per token (nats per token).
        sigma: One σ per token.
        bar_width: Width of the bar of a score of ``vmax``.
        standard_error: Optional standard error per token (nats per token); with
            ``chains ≥ 2`` the table gets a column ``±`` with the half-width of the
            ``level`` interval.
        chains: Number of chains behind the standard errors.
        level: Confidence level of that column.
        distinguishable: Optional flag per token; adds a column ``distinct``
            (``no``: the interval overlaps the sentence's median).
        vmax: Scale of the bars in nats per token (default: the largest score):
            bars are absolute, 0 nats is an empty bar.
        notes: Lines added below the table (e.g. :data:`NO_TOKEN_STANDS_OUT`).

    Returns:
        The table, lines joined by ``"\\n"`` (no trailing newline).
    """
    score_list, sigma_list = _as_list(scores), _as_list(sigma)
    if not len(score_list) == len(sigma_list) == len(tokens):
        raise ValueError(
            f"scores and sigma must have one value per token: {len(tokens)} tokens, "
            f"{len(score_list)} scores, {len(sigma_list)} sigma"
        )
    widths = half_widths(standard_error, chains, level)
    _check_per_token("standard_error", widths, "values", len(tokens))
    _check_per_token("distinguishable", distinguishable, "flags", len(tokens))
    shown = [repr(t)[1:-1] if not t.isprintable() else t for t in tokens]
    width = max([len(t) for t in shown] + [5])
    fractions = absolute_scores(score_list, shared_vmax([score_list], vmax))
    plus = f"± {_percent(level)}"
    header = f"{'#':>3}  {'token':<{width}}  {SCORE_UNIT:>14}"
    if widths is not None:
        header += f"  {plus:>8}"
    if distinguishable is not None:
        header += "  distinct"
    lines = [header + f"  {'sigma':>7}  information"]
    for index, token in enumerate(shown):
        line = f"{index:>3}  {token:<{width}}  {score_list[index]:>14.3f}"
        if widths is not None:
            line += f"  {widths[index]:>8.3f}"
        if distinguishable is not None:
            line += f"  {'yes' if distinguishable[index] else 'no':>8}"
        bar = "#" * int(round(fractions[index] * bar_width))
        lines.append(line + f"  {sigma_list[index]:>7.4f}  {bar}")
    if widths is not None:
        lines.append(
            f"{plus}: half-width of the {_percent(level)} interval (Student t, "
            f"{chains} chains)."
            + (
                " distinct no: the interval overlaps the sentence's median."
                if distinguishable is not None
                else ""
            )
        )
    lines.extend(notes)
    return "\n".join(lines)


# -- helpers ------------------------------------------------------------------------


def _record_row(
    record: VisualizationDataRecord,
    caption: Optional[str],
    notes: Optional[Sequence[str]],
    distinguishable: Optional[Sequence[bool]],
) -> str:
    prob = record.pred_prob
    predicted = _escape(record.pred_class)
    if isinstance(prob, (int, float)) and math.isfinite(prob):
        predicted = f"{predicted} ({prob:.2f})"
    words = token_marks(
        record.raw_input_ids,
        record.word_attributions,
        token_notes=notes,
        distinguishable=distinguishable,
    )
    if caption is not None:
        words = f'<div class="caption">{_escape(caption)}</div>{words}'
    label = _escape(record.attr_class)
    if NO_TOKEN_STANDS_OUT in str(record.attr_class):
        label = f'<span class="notice">{label}</span>'
    cells = [
        _escape(record.true_class),
        predicted,
        label,
        f"{float(record.attr_score):.2f}",
        words,
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _legend(vmax: Optional[float], marked: bool, level: float) -> str:
    steps = [0.0, 0.25, 0.5, 0.75, 1.0]
    if vmax is None:
        swatches = "".join(
            f'<span class="swatch" style="background-color: {token_colour(v)}">'
            "</span>"
            for v in steps
        )
        text = (
            f"<b>Legend:</b> low {swatches} high (values as given in the records, "
            "no unit)"
        )
    else:
        swatches = "".join(
            f'<span class="swatch" style="background-color: {token_colour(v)}">'
            f"{_tick(v * vmax)}</span>"
            for v in steps
        )
        text = (
            f"<b>Legend:</b> information in {SCORE_UNIT}: {swatches} "
            f"(0 = white; {_tick(vmax)} nats per token and more = darkest; one scale "
            "for every sentence on this page)"
        )
    mark = ""
    if marked:
        mark = (
            '<br><span class="dashed">dashed border</span>: the token\'s '
            f"{_percent(level)} interval overlaps the sentence's median (not "
            "distinguishable from it)"
        )
    return f'<p class="legend">{text}{mark}</p>'


def _percent(level: float) -> str:
    return f"{100 * level:.3g} %"


def _tick(value: float) -> str:
    return f"{value:.3g}"


def _wrap(text: str, width: float, points: float) -> str:
    """Wraps each line of ``text`` to a figure ``width`` in inches at a font size."""
    chars = max(20, int(width * 72 / (0.55 * points)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _indistinct_patch(x: float, y: float, shade: float) -> Rectangle:
    """A hatched, dashed cell outline; light grey on dark cells (``shade`` > 0.6
    of the colour scale), dark grey otherwise, so that it shows on both."""
    return Rectangle(
        (x + 0.04, y + 0.04),
        0.92,
        0.92,
        fill=False,
        hatch="///",
        edgecolor="0.85" if shade > 0.6 else "0.35",
        linestyle="--",
        linewidth=1.2,
    )


def _figure_legend(
    fig: Figure,
    marked: bool,
    notes: Sequence[str],
    level: float,
    width: float,
    reference: str = "the sentence's median",
) -> None:
    handles = []
    if marked:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="0.35",
                hatch="///",
                linestyle="--",
                label=_wrap(
                    f"hatched, grey dashed outline: the {_percent(level)} interval "
                    f"overlaps {reference} (not distinguishable from it)",
                    width - 1.0,
                    8.5,
                ),
            )
        )
    for note in notes:
        handles.append(
            Patch(
                facecolor="none",
                edgecolor="none",
                label=_wrap(_plain(note), width - 1.0, 8.5),
            )
        )
    if handles:
        fig.legend(
            handles=handles,
            loc="outside lower center",
            frameon=False,
            fontsize="small",
            handlelength=1.6,
        )


def _pieces(pieces: Optional[Sequence[int]], size: int) -> List[int]:
    if pieces is None:
        return [1] * size
    _check_per_token("pieces", pieces, "counts", size)
    return [max(int(p), 1) for p in pieces]


def _special(special: Optional[Sequence[bool]], size: int) -> List[bool]:
    if special is None:
        return [False] * size
    _check_per_token("special", special, "flags", size)
    return [bool(s) for s in special]


def _per_piece(
    values: Sequence[float], counts: Sequence[int], special: Optional[Sequence[bool]]
) -> List[float]:
    flags = _special(special, len(values))
    return [
        value / count
        for value, count, skip in zip(values, counts, flags)
        if not skip and math.isfinite(value)
    ]


def _flatten(values: Any) -> Iterable[float]:
    if isinstance(values, (torch.Tensor, np.ndarray)):
        yield from (float(v) for v in np.asarray(values, dtype=np.float64).ravel())
        return
    for value in values:
        if isinstance(value, numbers.Real):
            yield float(value)
        else:
            yield from _flatten(value)


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def _plain(label: str) -> str:
    """Keeps matplotlib from reading ``$...$`` in a token as mathtext."""
    return label.replace("$", r"\$")


def _as_list(values: Union[Sequence[float], torch.Tensor, np.ndarray]) -> List[float]:
    if isinstance(values, torch.Tensor):
        return [float(v) for v in values.detach().cpu().reshape(-1).tolist()]
    return [float(v) for v in values]


def _check_per_token(
    name: str, values: Optional[Sequence[object]], what: str, size: int
) -> None:
    """Raises a ``ValueError`` unless ``values`` (when given) holds one entry per
    token, ``size`` in all; the message names ``name`` and its entries, ``what``
    (e.g. ``"flags"``)."""
    if values is not None and len(values) != size:
        raise ValueError(f"{name}: got {len(values)} {what} for {size} tokens")


def _check_parallel(name: str, values: Optional[Sequence[object]], size: int) -> None:
    if values is not None and len(values) != size:
        raise ValueError(f"{name}: got {len(values)} entries for {size} records")
