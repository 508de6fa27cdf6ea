r"""TextExplanation: the sigma attribution of one text, ready to show or save."""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

from matplotlib.figure import Figure

from captum_sigma import visualization
from captum_sigma.text._serialization import explanation_fields, explanation_record
from captum_sigma.text._subwords import (
    merge_standard_errors,
    merge_values,
    merged_fields,
    word_groups,
)
from captum_sigma.visualization import (
    DEFAULT_LEVEL,
    MERGED_NOTE,
    NO_TOKEN_STANDS_OUT,
    SCORE_UNIT,
    VisualizationDataRecord,
)

__all__ = ["FORMAT_VERSION", "RankedToken", "TextExplanation"]

#: Version of the dictionary layout written by :meth:`TextExplanation.to_dict`
#: (2: ``standard_error``, ``chains``, ``passes``, ``preset``, ``pieces``; version 1
#: dictionaries are still read).
FORMAT_VERSION = 2

#: Keys :meth:`TextExplanation.to_dict` adds for readers and
#: :meth:`TextExplanation.from_dict` ignores.
_DERIVED_KEYS = ("format_version", "units", "flat")


class RankedToken(NamedTuple):
    """One entry of :meth:`TextExplanation.ranking`.

    Attributes:
        token: The token (or word).
        score: Its information in nats per token.
        standard_error: Its standard error in nats per token (None with one chain).
        tied: Whether its interval overlaps the next entry's (the two cannot be
            ordered at this budget); without a standard error, whether the two
            scores are equal. Always False for the last entry.
        index: Its position in :attr:`TextExplanation.tokens`.
    """

    token: str
    score: float
    standard_error: Optional[float]
    tied: bool
    index: int


@dataclass
class TextExplanation:
    r"""
    The sigma attribution (Guan et al., ICML 2019) of one text: the information of
    each token about the explained output, padding removed.

    ``scores[i] = K · log(scale / sigma[i])`` in nats per token (larger = more
    important; ``K`` the embedding size, the sum over the token's ``K`` embedding
    elements): the entropy the token's embedding loses against the largest allowed
    noise. ``sigma[i]`` is the largest Gaussian noise scale token ``i``'s embedding
    takes while the explained output (a class's probability, self-normalised; or,
    divided by ``r`` from a data sample, a class's logit, a layer's hidden state or a
    pooled embedding) stays nearly unchanged.

    With several independent chains the explanation carries a standard error per
    token; :meth:`interval`, :meth:`distinguishable` and :meth:`is_flat` turn it into
    statements, and every view (:meth:`summary`, :meth:`table`, :meth:`to_html`,
    :meth:`plot`, :meth:`to_record`) says :data:`NO_TOKEN_STANDS_OUT` when the
    explanation is flat.

    Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
    http://proceedings.mlr.press/v97/guan19a.html

    Attributes:
        text: The input text.
        tokens: Tokens (or words after :meth:`merge_subwords`), special tokens
            included, padding removed.
        scores: Information per token in nats per token.
        sigma: Noise scale per token (``0 < σ < scale``).
        explained: What was explained, in words (e.g. ``"probability of class 1
            (positive)"``, ``"logit of class 1 (positive) / r"``, ``"layer 3 hidden
            state"``).
        target: Class index explained; None for a hidden state.
        target_name: Name of that class.
        layer: Encoder layer whose hidden state was explained (1 = first layer).
        predicted_label: Predicted class index (classifiers only).
        predicted_name: Predicted class name.
        probability: Softmax probability of the predicted class.
        scale: The upper bound of σ used (``scores`` are relative to it).
        word_ids: Word index of each token (None for special tokens), if known.
        offsets: ``(start, end)`` character span of each token in ``text``.
        merged: Whether sub-words were merged into words.
        truncated: Whether the text was truncated to the model's maximum length.
        standard_error: Standard error of each token's score in nats per token,
            estimated from the run's independent chains (None with a single chain;
            ignored when ``chains < 2``).
        chains: Number of independent chains behind ``scores`` (the standard
            error has ``chains - 1`` degrees of freedom).
        passes: Forward+backward passes of the model the explanation cost.
        preset: Name of the preset the explainer ran (see
            :mod:`captum_sigma.text.presets`), None for custom settings.
        pieces: After :meth:`merge_subwords`, the number of sub-word tokens behind
            each word (None before merging: one per token).

    Examples::

        >>> explanation = explainer.explain("a gorgeous, witty film")
        >>> explanation.merge_subwords().tokens
        >>> explanation.interval()          # 95 % intervals, nats per token
        >>> explanation.is_flat()           # no token stands out?
        >>> open("page.html", "w").write(explanation.to_html())
        >>> explanation.plot().savefig("tokens.png")
    """

    text: str
    tokens: List[str]
    scores: List[float]
    sigma: List[float]
    explained: str = ""
    target: Optional[int] = None
    target_name: Optional[str] = None
    layer: Optional[int] = None
    predicted_label: Optional[int] = None
    predicted_name: Optional[str] = None
    probability: Optional[float] = None
    scale: float = 0.5
    word_ids: Optional[List[Optional[int]]] = None
    offsets: Optional[List[Tuple[int, int]]] = None
    merged: bool = False
    truncated: bool = False
    standard_error: Optional[List[float]] = None
    chains: int = 1
    passes: Optional[int] = None
    preset: Optional[str] = None
    pieces: Optional[List[int]] = None

    def __post_init__(self) -> None:
        size = len(self.tokens)
        names = ("scores", "sigma", "word_ids", "offsets", "standard_error", "pieces")
        for name in names:
            value = getattr(self, name)
            if value is not None and len(value) != size:
                raise ValueError(
                    f"{name}: got {len(value)} values for {size} tokens; give one per "
                    "token"
                )
        if self.chains < 1:
            raise ValueError(f"chains must be at least 1, got {self.chains}")
        if self.offsets is not None:
            self.offsets = [(int(s), int(e)) for s, e in self.offsets]

    # -- uncertainty --------------------------------------------------------------

    def interval(
        self, level: float = DEFAULT_LEVEL
    ) -> Optional[List[Tuple[float, float]]]:
        """Per-token ``(low, high)`` intervals in nats per token.

        ``score ± t × standard_error`` with ``t`` the Student-t quantile
        ``scipy.stats.t.ppf(0.5 + level / 2, chains - 1)``.

        Args:
            level: Confidence level, e.g. 0.95.

        Returns:
            One interval per token, or None without a standard error (one chain).
        """
        return visualization.score_intervals(
            self.scores, self.standard_error, self.chains, level
        )

    def distinguishable(self, level: float = DEFAULT_LEVEL) -> Optional[List[bool]]:
        """Which tokens' intervals exclude the sentence's median.

        The median is that of the non-special tokens' scores (special: ``word_ids``
        entry None, when ``word_ids`` is known). After :meth:`merge_subwords` a
        word of ``k`` pieces is compared with ``k`` times the median information
        per piece (see :func:`captum_sigma.visualization.distinguishable_tokens`).

        Args:
            level: Confidence level of the intervals.

        Returns:
            One bool per token (True: distinguishable), or None without a standard
            error.
        """
        return self._judge(visualization.distinguishable_tokens, level)

    def is_flat(self, level: float = DEFAULT_LEVEL) -> bool:
        """Whether no token stands out at this budget.

        True when the information spread over the non-special tokens,
        ``(max − min) / max``, is below 20 % of its maximum, or, with a standard
        error, when no non-special token is distinguishable from the median: the
        rule of docs/evaluation.md, implemented once in
        :func:`captum_sigma.visualization.is_flat`.

        Args:
            level: Confidence level of the intervals.
        """
        return self._judge(visualization.is_flat, level)

    def ranking(
        self, skip_special: bool = True, level: float = DEFAULT_LEVEL
    ) -> List[RankedToken]:
        """Tokens, most informative first, with ties marked.

        Args:
            skip_special: Leave out special tokens such as ``[CLS]`` / ``[SEP]``
                (those whose ``word_ids`` entry is None), when ``word_ids`` is known.
            level: Confidence level of the intervals that decide ties.

        Returns:
            :class:`RankedToken` entries ``(token, score, standard_error, tied,
            index)``; ``tied`` says the entry's interval overlaps the next one's.
        """
        order = sorted(
            (
                index
                for index in range(len(self.tokens))
                if not (skip_special and self._is_special(index))
            ),
            key=lambda index: -self.scores[index],
        )
        intervals = self.interval(level)
        ranked = []
        for position, index in enumerate(order):
            tied = False
            if position + 1 < len(order):
                following = order[position + 1]
                if intervals is None:
                    tied = self.scores[index] == self.scores[following]
                else:
                    tied = intervals[index][0] <= intervals[following][1]
            error = None
            if intervals is not None and self.standard_error is not None:
                error = float(self.standard_error[index])
            ranked.append(
                RankedToken(
                    self.tokens[index], float(self.scores[index]), error, tied, index
                )
            )
        return ranked

    # -- sub-words ----------------------------------------------------------------

    def merge_subwords(self) -> "TextExplanation":
        """Merges sub-word tokens (WordPiece ``##``, BPE ``Ġ``) into words.

        A word's score is the sum of its pieces' scores (information adds up), its
        standard error ``sqrt(Σ SE²)`` (which assumes the pieces' chain errors are
        independent) and its σ the geometric mean of theirs; ``pieces`` records
        how many tokens each word sums. Special tokens stay as they are.

        Returns:
            A new explanation over words (``merged=True``); ``self`` is unchanged.
        """
        words = word_groups(self.tokens, self.word_ids, self.offsets, self.text)
        scores, sigma = merge_values(words, self.scores, self.sigma)
        standard_error = None
        if self.standard_error is not None:
            standard_error = merge_standard_errors(words, self.standard_error)
        return dataclasses.replace(
            self,
            scores=scores,
            sigma=sigma,
            standard_error=standard_error,
            **merged_fields(words, self.offsets, self.pieces),
        )

    # -- views --------------------------------------------------------------------

    def normalized_scores(self, vmax: Optional[float] = None) -> List[float]:
        """Scores on the colours' absolute scale: ``score / vmax`` in ``[0, 1]``.

        Args:
            vmax: The scale's maximum in nats per token (default: this
                explanation's largest score). 0 nats is 0; never min–max.
        """
        return visualization.absolute_scores(self.scores, self._vmax(vmax))

    def token_notes(self, level: float = DEFAULT_LEVEL) -> List[str]:
        """One tooltip per token: score ± half-width in nats per token, and σ.

        Args:
            level: Confidence level of the intervals.
        """
        widths = visualization.half_widths(self.standard_error, self.chains, level)
        marks = self.distinguishable(level)
        median = self._reference_median()
        notes = []
        for index, (score, noise) in enumerate(zip(self.scores, self.sigma)):
            note = f"{score:.3f} {SCORE_UNIT}"
            if widths is not None:
                note = (
                    f"{score:.3f} ± {widths[index]:.3f} {SCORE_UNIT} "
                    f"({100 * level:.3g} % interval, {self.chains} chains)"
                )
            if self.pieces is not None and self.pieces[index] > 1:
                note += f", sum over {self.pieces[index]} word pieces"
            note += f"; sigma {noise:.4f}"
            if marks is not None and not marks[index]:
                note += (
                    "; not distinguishable from the sentence's median "
                    f"({median:.3f} {SCORE_UNIT}"
                )
                if self.pieces is not None and self.pieces[index] > 1:
                    note += f" per piece, × {self.pieces[index]} pieces"
                note += ")"
            notes.append(note)
        return notes

    def to_record(
        self,
        true_class: Union[None, int, str] = None,
        vmax: Optional[float] = None,
        level: float = DEFAULT_LEVEL,
    ) -> VisualizationDataRecord:
        """A Captum ``VisualizationDataRecord`` on an absolute colour scale.

        Args:
            true_class: The true class, if known (shown in Captum's table).
            vmax: Maximum of the colour scale in nats per token (give the same one
                to every record of a page: :func:`captum_sigma.visualization.
                shared_vmax`); default: this explanation's largest score.
            level: Confidence level of the flatness test.

        Returns:
            The record: ``raw_input_ids`` are the tokens, ``word_attributions``
            ``score / vmax`` clipped to ``[0, 1]``, ``attr_score`` the total
            information in nats, ``attr_class`` the explained target, followed by
            ``" — no token stands out at this budget"`` for a flat explanation.
        """
        label = self.explained
        if self.is_flat(level):
            label = f"{label} — {NO_TOKEN_STANDS_OUT}" if label else NO_TOKEN_STANDS_OUT
        return visualization.make_record(
            self.tokens,
            self.scores,
            pred_prob=self.probability,
            pred_class=self.predicted_name,
            true_class=true_class,
            attr_class=label,
            attr_score=sum(self.scores),
            vmax=self._vmax(vmax),
        )

    def to_html(
        self,
        title: Optional[str] = None,
        true_class: Union[None, int, str] = None,
        vmax: Optional[float] = None,
        level: float = DEFAULT_LEVEL,
    ) -> str:
        """A self-contained HTML page; every token and the text are escaped.

        Colours are absolute nats per token (legend in nats per token); tokens
        whose interval overlaps the median have a dashed border; each token's
        tooltip shows its score ± half-width. For several explanations on one
        scale use :func:`captum_sigma.visualization.explanations_to_html`.

        Args:
            title: Page heading; defaults to one naming the explained target.
            true_class: The true class, if known.
            vmax: Maximum of the colour scale in nats per token; default: this
                explanation's largest score.
            level: Confidence level of the intervals and marks.

        Returns:
            The page as a string.
        """
        return visualization.explanations_to_html(
            [self],
            title=title or f"Sigma attribution: {self.explained}",
            vmax=self._vmax(vmax),
            true_classes=[true_class],
            level=level,
        )

    def plot(
        self,
        title: Optional[str] = None,
        per_row: int = 20,
        vmax: Optional[float] = None,
        level: float = DEFAULT_LEVEL,
    ) -> Figure:
        """A matplotlib figure of the tokens coloured by information.

        The colour scale is absolute, 0 to ``vmax`` nats per token, with a colour
        bar; tokens whose interval overlaps the median are hatched; a flat
        explanation says :data:`NO_TOKEN_STANDS_OUT` in the title.

        Args:
            title: Figure title; defaults to the prediction and explained target.
            per_row: Tokens per row before wrapping.
            vmax: Maximum of the colour scale in nats per token (the same for
                every figure of a report: :func:`captum_sigma.visualization.
                shared_vmax`); default: this explanation's largest score.
            level: Confidence level of the intervals and marks.
        """
        title = title or self._title()
        if self.is_flat(level):
            title = f"{title}\n{NO_TOKEN_STANDS_OUT}"
        return visualization.plot_token_scores(
            self.tokens,
            self.scores,
            title=title,
            per_row=per_row,
            vmax=self._vmax(vmax),
            distinguishable=self.distinguishable(level),
            notes=[MERGED_NOTE] if self.merged else [],
            level=level,
        )

    def table(self, level: float = DEFAULT_LEVEL) -> str:
        """A plain-text table for a terminal: tokens, nats per token, ± the
        half-width of the ``level`` interval and a ``distinct`` column (with a
        standard error), σ and a bar; notes for flat and merged explanations."""
        return visualization.format_token_table(
            self.tokens,
            self.scores,
            self.sigma,
            standard_error=self.standard_error,
            chains=self.chains,
            level=level,
            distinguishable=self.distinguishable(level),
            notes=self._notes(level),
        )

    def summary(self, level: float = DEFAULT_LEVEL) -> str:
        """One line: the prediction (if any), what was explained and, for a flat
        explanation, :data:`NO_TOKEN_STANDS_OUT`."""
        line = self._title()
        if self.is_flat(level):
            line += f"; {NO_TOKEN_STANDS_OUT}"
        return line

    # -- JSON ---------------------------------------------------------------------

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (see :meth:`from_dict`).

        Besides the fields it holds ``format_version``, ``units`` (``scores`` and
        ``standard_error`` are in nats per token) and ``flat`` (:meth:`is_flat` at
        95 %); :meth:`from_dict` ignores those three.
        """
        units = {
            "scores": SCORE_UNIT,
            "standard_error": SCORE_UNIT,
            "sigma": "embedding units (the scale of scale)",
        }
        data = explanation_record(self, FORMAT_VERSION, units)
        data["flat"] = self.is_flat()
        return data

    def to_json(self, indent: Optional[int] = 2) -> str:
        """The explanation as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TextExplanation":
        """Rebuilds an explanation written by :meth:`to_dict` (format 1 or 2).

        Raises:
            ValueError: If ``data`` lacks a field, has an unknown one or comes from
                a newer format.
        """
        required = ("text", "tokens", "scores", "sigma")
        return cls(
            **explanation_fields(cls, data, FORMAT_VERSION, _DERIVED_KEYS, required)
        )

    @classmethod
    def from_json(cls, text: str) -> "TextExplanation":
        """Rebuilds an explanation written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    # -- helpers ------------------------------------------------------------------

    def _is_special(self, index: int) -> bool:
        return self.word_ids is not None and self.word_ids[index] is None

    def _special_flags(self) -> Optional[List[bool]]:
        if self.word_ids is None:
            return None
        return [word_id is None for word_id in self.word_ids]

    def _judge(self, rule: Callable[..., Any], level: float) -> Any:
        """``rule(scores, standard_error, chains, special, pieces, level)`` on this
        explanation: a rule of :mod:`captum_sigma.visualization` on its intervals."""
        return rule(
            self.scores,
            self.standard_error,
            self.chains,
            self._special_flags(),
            self.pieces,
            level,
        )

    def _reference_median(self) -> float:
        return visualization.median_information(
            self.scores, self._special_flags(), self.pieces
        )

    def _vmax(self, vmax: Optional[float]) -> float:
        return visualization.shared_vmax([self.scores], vmax)

    def _notes(self, level: float) -> List[str]:
        notes = []
        if self.is_flat(level):
            notes.append(f"Flat explanation: {NO_TOKEN_STANDS_OUT}.")
        if self.merged:
            notes.append(f"{MERGED_NOTE[0].upper()}{MERGED_NOTE[1:]}.")
        return notes

    def _title(self) -> str:
        parts = []
        if self.predicted_name is not None and self.probability is not None:
            parts.append(
                f"prediction: {self.predicted_name} (p = {self.probability:.3f})"
            )
        parts.append(f"explained: {self.explained}")
        return "; ".join(parts)
