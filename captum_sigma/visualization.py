r"""Records, escaped HTML pages, figures and tables of sigma attributions.

Everything here takes plain tokens and numbers (no models, no tokenizers), so
:mod:`captum_sigma.text` calls it and not the other way round.

Scores are the sigma attribution's per-token information in nats,
``K · log(scale / σ)`` for a ``K``-dimensional embedding (larger = more important),
from Guan et al., "Towards a Deep and
Unified Understanding of Deep Neural Models in NLP", ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html

Captum's own ``visualize_text`` does not HTML-escape the words it shows (captum issue
#1226), so a token such as ``<img src=x onerror=...>`` would be injected as markup;
:func:`records_to_html` escapes every token, label and caption with
:func:`html.escape`. :func:`token_marks` is the package's one renderer of tokens
and scores as HTML (every page, including the evaluation's comparison page, uses
it) and :func:`token_colour` its one colour scale.
"""

import html
import math
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from captum.attr import visualization as captum_visualization
from matplotlib.figure import Figure

__all__ = [
    "VisualizationDataRecord",
    "format_token_table",
    "make_record",
    "normalize_scores",
    "plot_token_scores",
    "plot_words_layers",
    "records_to_html",
    "token_colour",
    "token_marks",
]

#: Captum's record class (``captum.attr.visualization.VisualizationDataRecord``).
VisualizationDataRecord = captum_visualization.VisualizationDataRecord

#: Methods of :func:`normalize_scores`.
NORMALIZATIONS = ("max", "minmax")

#: Matplotlib colour map of the figures: darker = more information (the paper's
#: tutorials draw σ with the reversed map, darker = smaller σ).
CMAP = "GnBu"

_PAGE_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table.records { border-collapse: collapse; width: 100%; }
table.records th, table.records td { border: 1px solid #ccc; padding: 0.4em;
  text-align: left; vertical-align: top; }
mark { line-height: 1.9; padding: 0.1em 0.15em; border-radius: 0.2em;
  color: black; }
.caption { color: #555; font-size: 0.9em; margin-bottom: 0.3em; }
.legend span { display: inline-block; width: 1.2em; height: 0.9em;
  border: 1px solid #999; vertical-align: middle; }
"""


def normalize_scores(
    scores: Union[Sequence[float], torch.Tensor], method: str = "max"
) -> List[float]:
    """Scales scores for colours.

    Args:
        scores: Per-token scores (nats, non-negative for sigma).
        method: ``"max"``: ``score / max(|scores|)``, in ``[-1, 1]`` (``[0, 1]`` for
            non-negative scores; keeps ratios and signs, e.g. for Integrated
            Gradients). ``"minmax"``: ``(score - min) / (max - min)`` in ``[0, 1]``
            (contrast, as the paper's figures; all ones when every score is equal).

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


def make_record(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor],
    pred_prob: Optional[float] = None,
    pred_class: Union[None, int, str] = None,
    true_class: Union[None, int, str] = None,
    attr_class: Union[None, int, str] = None,
    attr_score: Optional[float] = None,
    normalize: Union[bool, str] = True,
) -> VisualizationDataRecord:
    """Builds a Captum ``VisualizationDataRecord`` from per-token scores.

    Args:
        tokens: The tokens shown (``raw_input_ids`` of the record).
        scores: Per-token scores, one per token.
        pred_prob: Probability of the predicted class; NaN when there is none.
        pred_class: Predicted class (index or name); ``""`` when there is none.
        true_class: True class, if known; ``""`` otherwise.
        attr_class: What was explained (class or hidden state); ``""`` if unknown.
        attr_score: Total score; defaults to the sum of ``scores`` (information
            adds up over tokens).
        normalize: Scale ``word_attributions`` with :func:`normalize_scores`
            (Captum's colours clip at ``[-1, 1]``): True or ``"max"`` divides by
            the largest absolute score, ``"minmax"`` maps onto ``[0, 1]``, False
            keeps the scores.

    Returns:
        The record; ``word_attributions`` is a 1-D float tensor.
    """
    values = _as_list(scores)
    if len(values) != len(tokens):
        raise ValueError(
            f"scores: got {len(values)} scores for {len(tokens)} tokens; give one per "
            "token"
        )
    if normalize is False:
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
) -> str:
    """Renders records as a self-contained HTML page, every string escaped.

    The layout follows Captum's ``visualize_text`` (true label, predicted label,
    attribution label, attribution score, coloured words) but needs no IPython, no
    script and no external resource, and escapes every token, label, caption and the
    title with :func:`html.escape` (captum issue #1226).

    Args:
        records: Captum records (e.g. from :func:`make_record`); their
            ``word_attributions`` are expected in ``[-1, 1]``.
        title: Page title and heading.
        captions: Optional text shown above each record's words (e.g. the input
            text).
        token_notes: Optional tooltip per token of each record (e.g. the score in
            nats and σ).
        legend: Show the colour legend.

    Returns:
        The HTML page as a string.
    """
    _check_parallel("captions", captions, len(records))
    _check_parallel("token_notes", token_notes, len(records))
    rows = [
        "<tr><th>True label</th><th>Predicted label</th><th>Attribution label</th>"
        "<th>Attribution score</th><th>Word importance</th></tr>"
    ]
    for index, record in enumerate(records):
        caption = None if captions is None else captions[index]
        notes = None if token_notes is None else token_notes[index]
        rows.append(_record_row(record, caption, notes))
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_escape(title)}</title>",
        f"<style>{_PAGE_STYLE}</style></head><body>",
        f"<h2>{_escape(title)}</h2>",
    ]
    if legend:
        parts.append(_legend())
    parts.append('<table class="records">' + "".join(rows) + "</table>")
    parts.append(
        '<p class="caption">Sigma attribution (Guan et al., ICML 2019, '
        "http://proceedings.mlr.press/v97/guan19a.html): information of each token "
        "in nats, K log(scale / &sigma;); darker = more important.</p>"
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def plot_token_scores(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor],
    title: Optional[str] = None,
    per_row: int = 20,
) -> Figure:
    """Draws tokens coloured by score, as in the paper's figures.

    Each row of the figure is a strip of coloured cells, one per token, labelled
    with the token below it; long texts wrap after ``per_row`` tokens.

    Args:
        tokens: The tokens.
        scores: One score per token (nats).
        title: Figure title.
        per_row: Tokens per row.

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
    if per_row <= 0:
        raise ValueError(f"per_row must be positive, got {per_row}")
    count = max(len(tokens), 1)
    n_rows = math.ceil(count / per_row)
    width = min(count, per_row)
    fig = Figure(
        figsize=(1.5 + 0.62 * width, 0.9 + 1.35 * n_rows), layout="constrained"
    )
    axes = fig.subplots(n_rows, 1, squeeze=False)[:, 0]
    finite = [v for v in values if math.isfinite(v)] or [0.0]
    low, high = min(finite), max(finite)
    image = None
    for row, ax in enumerate(axes):
        start, stop = row * per_row, min((row + 1) * per_row, len(tokens))
        strip = np.full((1, width), np.nan)
        strip[0, : stop - start] = values[start:stop]
        image = ax.imshow(
            np.ma.masked_invalid(strip), cmap=CMAP, vmin=low, vmax=high, aspect="auto"
        )
        ax.set_xticks(range(stop - start))
        ax.set_xticklabels(
            [_plain(t) for t in tokens[start:stop]], rotation=50, ha="right"
        )
        ax.set_yticks([])
        ax.set_xlim(-0.5, width - 0.5)
    if title:
        fig.suptitle(_plain(title))
    if image is not None:
        fig.colorbar(image, ax=list(axes), label="information (nats)", shrink=0.9)
    return fig


def plot_words_layers(
    tokens: Sequence[str],
    layers: Sequence[Union[int, str]],
    matrix: Union[Sequence[Sequence[float]], torch.Tensor],
    title: Optional[str] = None,
) -> Figure:
    """Draws the words × layers heatmap (the paper's coherency view).

    Args:
        tokens: The ``n_tokens`` tokens (horizontal axis).
        layers: The ``n_layers`` layer labels (vertical axis, first on top).
        matrix: ``(n_layers, n_tokens)`` scores in nats.
        title: Figure title.

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
    fig = Figure(
        figsize=(2.0 + 0.55 * max(len(tokens), 1), 1.6 + 0.45 * max(len(layers), 1)),
        layout="constrained",
    )
    ax = fig.subplots()
    image = ax.imshow(np.ma.masked_invalid(values), cmap=CMAP, vmin=0.0, aspect="auto")
    ax.set_xticks(range(len(tokens)))
    ax.set_xticklabels([_plain(t) for t in tokens], rotation=50, ha="right")
    ax.set_yticks(range(len(layers)))
    ax.set_yticklabels([_plain(str(layer)) for layer in layers])
    ax.set_ylabel("layer")
    if title:
        ax.set_title(_plain(title))
    fig.colorbar(image, ax=ax, label="information (nats)")
    return fig


def format_token_table(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor],
    sigma: Union[Sequence[float], torch.Tensor],
    bar_width: int = 20,
) -> str:
    """A plain-text table of tokens, scores, σ and a bar, for a terminal.

    Args:
        tokens: The tokens.
        scores: One score per token (nats).
        sigma: One σ per token.
        bar_width: Width of the bar of the largest score.

    Returns:
        The table, lines joined by ``"\\n"`` (no trailing newline).
    """
    score_list, sigma_list = _as_list(scores), _as_list(sigma)
    if not len(score_list) == len(sigma_list) == len(tokens):
        raise ValueError(
            f"scores and sigma must have one value per token: {len(tokens)} tokens, "
            f"{len(score_list)} scores, {len(sigma_list)} sigma"
        )
    shown = [repr(t)[1:-1] if not t.isprintable() else t for t in tokens]
    width = max([len(t) for t in shown] + [5])
    fractions = normalize_scores(score_list)
    lines = [f"{'#':>3}  {'token':<{width}}  {'score':>7}  {'sigma':>7}  information"]
    rows = zip(shown, score_list, sigma_list, fractions)
    for index, (token, value, noise, fraction) in enumerate(rows):
        bar = "#" * int(round(max(fraction, 0.0) * bar_width))
        lines.append(
            f"{index:>3}  {token:<{width}}  {value:>7.3f}  {noise:>7.4f}  {bar}"
        )
    return "\n".join(lines)


def _record_row(
    record: VisualizationDataRecord,
    caption: Optional[str],
    notes: Optional[Sequence[str]],
) -> str:
    prob = record.pred_prob
    predicted = _escape(record.pred_class)
    if isinstance(prob, (int, float)) and math.isfinite(prob):
        predicted = f"{predicted} ({prob:.2f})"
    words = token_marks(
        record.raw_input_ids, record.word_attributions, token_notes=notes
    )
    if caption is not None:
        words = f'<div class="caption">{_escape(caption)}</div>{words}'
    cells = [
        _escape(record.true_class),
        predicted,
        _escape(record.attr_class),
        f"{float(record.attr_score):.2f}",
        words,
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def token_marks(
    tokens: Sequence[str],
    scores: Union[Sequence[float], torch.Tensor, np.ndarray],
    normalize: Union[bool, str] = False,
    ranked: Optional[Sequence[bool]] = None,
    token_notes: Optional[Sequence[str]] = None,
) -> str:
    """Renders tokens as escaped ``<mark>`` elements coloured by their scores.

    The package's one token renderer: every token and note is escaped with
    :func:`html.escape` and coloured with :func:`token_colour`.

    Args:
        tokens: The tokens shown.
        scores: At least one score per token (values past ``len(tokens)``, e.g.
            padding, are ignored).
        normalize: False: the scores are already in ``[-1, 1]``; True, ``"max"``
            or ``"minmax"``: scaled with :func:`normalize_scores` over the ranked
            tokens.
        ranked: Which tokens are ranked (default: all); the others (e.g.
            ``[CLS]``) are marked ``class="special"``, without colour or note.
        token_notes: Optional tooltip per token (e.g. its score).

    Returns:
        The marks, joined by spaces.
    """
    values = _as_list(scores)
    if len(values) < len(tokens):
        raise ValueError(f"scores: {len(tokens)} tokens but only {len(values)} scores")
    if token_notes is not None and len(token_notes) != len(tokens):
        raise ValueError(
            f"token_notes: got {len(token_notes)} notes for {len(tokens)} tokens"
        )
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
        marks.append(
            f'<mark style="background-color: {token_colour(values[index])}"{note}>'
            f"{_escape(token)}</mark>"
        )
    return " ".join(marks)


def _legend() -> str:
    steps = [0.0, 0.25, 0.5, 0.75, 1.0]
    swatches = "".join(
        f'<span style="background-color: {token_colour(v)}"></span>' for v in steps
    )
    return (
        f'<p class="legend"><b>Legend:</b> low information {swatches} high '
        "information</p>"
    )


def token_colour(value: float) -> str:
    """The package's one token colour scale (Captum's): a CSS colour for a
    normalised score in [-1, 1], green for positive, red for negative, clipped
    (NaN and Inf: white)."""
    value = 0.0 if not math.isfinite(value) else max(-1.0, min(1.0, value))
    if value >= 0:
        return f"hsl(120, 75%, {100 - int(50 * value)}%)"
    return f"hsl(0, 75%, {100 - int(-40 * value)}%)"


def _escape(value: object) -> str:
    return html.escape(str(value), quote=True)


def _plain(label: str) -> str:
    """Keeps matplotlib from reading ``$...$`` in a token as mathtext."""
    return label.replace("$", r"\$")


def _as_list(values: Union[Sequence[float], torch.Tensor, np.ndarray]) -> List[float]:
    if isinstance(values, torch.Tensor):
        return [float(v) for v in values.detach().cpu().reshape(-1).tolist()]
    return [float(v) for v in values]


def _check_parallel(name: str, values: Optional[Sequence[object]], size: int) -> None:
    if values is not None and len(values) != size:
        raise ValueError(f"{name}: got {len(values)} entries for {size} records")
