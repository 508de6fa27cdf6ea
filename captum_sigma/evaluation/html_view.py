r"""A self-contained HTML page showing a few sentences under every method.

Every token, text, label and method name is HTML-escaped (``html.escape`` with
``quote=True``): Captum's ``visualize_text`` does not escape words (captum issue
#1226), so a token such as ``<img src=x onerror=...>`` would become markup.
Signed scores are normalised per sentence and method by the largest ``|score|``
over the eligible tokens (positive green, negative red, the colour scale of
:func:`captum_sigma.visualization.token_colour`, as every other page of the
package); unsigned scores (Sigma,
Saliency, Random, ``|name|`` rows) are min-max normalised over the eligible
tokens, so that a nearly constant score vector still shows its ranking.
[CLS]/[SEP] are grey and never coloured.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np

from captum_sigma.evaluation.compare import ComparisonResult
from captum_sigma.visualization import token_colour

__all__ = ["comparison_html", "token_spans"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.8em; }
td, th { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left;
         vertical-align: top; font-size: 13px; }
th { background: #f4f4f4; }
.tok { display: inline-block; padding: 1px 3px; margin: 1px; border-radius: 3px; }
.special { color: #999; }
.meta { color: #555; font-size: 12px; }
"""


def token_spans(
    tokens: Sequence[str],
    scores: np.ndarray,
    eligible: np.ndarray,
    signed: bool = True,
) -> str:
    r"""HTML spans of one sentence's tokens coloured by their scores.

    Args:
        tokens (sequence of str): Tokens of the sentence (attended positions).
        scores (ndarray): Scores of those positions.
        eligible (ndarray): Bool, which positions are ranked.
        signed (bool, optional): Normalise by the largest ``|score|`` (True) or
                min-max (False). Default: True.

    Returns:
        html (str): Escaped spans, each with its score as a tooltip.
    """
    scores = np.asarray(scores, dtype=np.float64)[: len(tokens)]
    eligible = np.asarray(eligible, dtype=bool)[: len(tokens)]
    finite = scores[eligible & np.isfinite(scores)]
    low = 0.0 if signed or not finite.size else float(finite.min())
    scale = float(np.abs(finite - low).max()) if finite.size else 0.0
    spans = []
    for token, score, ranked in zip(tokens, scores, eligible):
        text = html.escape(str(token), quote=True)
        if not ranked:
            spans.append(f'<span class="tok special">{text}</span>')
            continue
        value = (score - low) / scale if scale > 0 else 0.0
        colour = token_colour(value)
        spans.append(
            f'<span class="tok" style="background:{colour}" '
            f'title="{html.escape(f"{score:.4g}", quote=True)}">{text}</span>'
        )
    return " ".join(spans)


def comparison_html(
    result: ComparisonResult,
    indices: Sequence[int],
    *,
    rows: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    title: str = "Attribution comparison",
) -> str:
    r"""One table per sentence: a row per method with its coloured tokens.

    Args:
        result (ComparisonResult): The comparison.
        indices (sequence of int): Sentences to show.
        rows (sequence of str, optional): Rows to show. Default: every method.
        class_names (sequence of str, optional): Names of the classes.
        title (str, optional): Page title.

    Returns:
        page (str): A complete HTML document without external resources.
    """
    rows = list(result.methods if rows is None else rows)
    body = [f"<h1>{html.escape(title)}</h1>"]
    body.append(
        '<p class="meta">Green: supports the predicted class; red: opposes it '
        "(signed methods). Colours are normalised per sentence and method (signed "
        "methods by the largest |score|, unsigned ones min-max); hover a token for "
        "its score.</p>"
    )
    for index in indices:
        if not 0 <= index < len(result.texts):
            raise ValueError(
                f"indices must be in [0, {len(result.texts)}), got {index}"
            )
        body.append(_sentence_table(result, int(index), rows, class_names))
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def _sentence_table(
    result: ComparisonResult,
    index: int,
    rows: Sequence[str],
    class_names: Sequence[str] | None,
) -> str:
    target = int(result.target[index])
    name = _class_name(target, class_names)
    meta = f"predicted {name} (p = {result.target_proba[index]:.3f})"
    if result.labels is not None:
        meta += f"; label {_class_name(int(result.labels[index]), class_names)}"
    lines = [
        "<table>",
        f"<tr><th colspan='2'>{html.escape(result.texts[index])}"
        f"<div class='meta'>{html.escape(meta)}</div></th></tr>",
    ]
    tokens = result.tokens[index]
    for row in rows:
        spans = token_spans(tokens, result.scores[row][index], result.eligible[index])
        lines.append(f"<tr><td>{html.escape(row)}</td><td>{spans}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _class_name(index: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)
