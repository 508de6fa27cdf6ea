r"""A self-contained HTML page showing a few sentences under every method.

This module lays out the page (a table per sentence, a row per method); the
tokens of each row are rendered by :func:`captum_sigma.visualization.token_marks`,
the package's one token renderer, so that every token is HTML-escaped and coloured
on the package's one scale (:func:`captum_sigma.visualization.token_colour`,
positive green, negative red). Texts, labels and method names are escaped too
(``html.escape`` with ``quote=True``): Captum's ``visualize_text`` does not escape
words (captum issue #1226), so a token such as ``<img src=x onerror=...>`` would
become markup. Signed scores are normalised per sentence and method by the largest
``|score|`` over the eligible tokens; unsigned scores (Sigma, Saliency, Random,
``|name|`` rows) are min-max normalised over the eligible tokens
(:func:`captum_sigma.visualization.normalize_scores`), so that a nearly constant
score vector still shows its ranking. [CLS]/[SEP] are grey and never coloured.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from captum_sigma.evaluation.compare import ComparisonResult
from captum_sigma.visualization import token_marks

__all__ = ["comparison_html"]

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.8em; }
td, th { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left;
         vertical-align: top; font-size: 13px; }
th { background: #f4f4f4; }
mark { display: inline-block; padding: 1px 3px; margin: 1px; border-radius: 3px;
       color: black; }
mark.special { color: #999; background: none; }
.meta { color: #555; font-size: 12px; }
"""


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
    eligible = result.eligible[index]
    for row in rows:
        scores = result.scores[row][index][: len(tokens)]
        marks = token_marks(
            tokens,
            scores,
            normalize="max" if result.signed.get(row, False) else "minmax",
            ranked=eligible,
            token_notes=[f"{score:.4g}" for score in scores],
        )
        lines.append(f"<tr><td>{html.escape(row)}</td><td>{marks}</td></tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _class_name(index: int, class_names: Sequence[str] | None) -> str:
    if class_names is not None and 0 <= index < len(class_names):
        return str(class_names[index])
    return str(index)
