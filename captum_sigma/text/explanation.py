r"""TextExplanation: the sigma attribution of one text, ready to show or save."""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple, Union

from matplotlib.figure import Figure

from captum_sigma import visualization
from captum_sigma.text._subwords import merge_values, merged_word_ids, word_groups
from captum_sigma.visualization import VisualizationDataRecord

__all__ = ["TextExplanation"]

#: Version of the dictionary layout written by :meth:`TextExplanation.to_dict`.
FORMAT_VERSION = 1


@dataclass
class TextExplanation:
    r"""
    The sigma attribution (Guan et al., ICML 2019) of one text: the information of
    each token about the explained output, padding removed.

    ``scores[i] = K · log(scale / sigma[i])`` in nats (larger = more important; ``K``
    the embedding size): the entropy the token's embedding loses against the largest
    allowed noise. ``sigma[i]`` is the largest Gaussian noise scale token ``i``'s
    embedding takes while the explained output (a class's probability,
    self-normalised; or, divided by ``r`` from a data sample, a class's logit, a
    layer's hidden state or a pooled embedding) stays nearly unchanged.

    Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
    http://proceedings.mlr.press/v97/guan19a.html

    Attributes:
        text: The input text.
        tokens: Tokens (or words after :meth:`merge_subwords`), special tokens
            included, padding removed.
        scores: Information per token in nats.
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

    Examples::

        >>> explanation = explainer.explain("a gorgeous, witty film")
        >>> explanation.merge_subwords().tokens
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

    def __post_init__(self) -> None:
        size = len(self.tokens)
        for name in ("scores", "sigma", "word_ids", "offsets"):
            value = getattr(self, name)
            if value is not None and len(value) != size:
                raise ValueError(
                    f"{name}: got {len(value)} values for {size} tokens; give one per "
                    "token"
                )
        if self.offsets is not None:
            self.offsets = [(int(s), int(e)) for s, e in self.offsets]

    def merge_subwords(self) -> "TextExplanation":
        """Merges sub-word tokens (WordPiece ``##``, BPE ``Ġ``) into words.

        A word's score is the sum of its pieces' scores (information adds up) and its
        σ the geometric mean of theirs. Special tokens stay as they are.

        Returns:
            A new explanation over words (``merged=True``); ``self`` is unchanged.
        """
        words = word_groups(self.tokens, self.word_ids, self.offsets, self.text)
        scores, sigma = merge_values(words, self.scores, self.sigma)
        word_ids = merged_word_ids(words)
        offsets = None
        if self.offsets is not None:
            offsets = [word.span or (0, 0) for word in words]
        return dataclasses.replace(
            self,
            tokens=[word.text for word in words],
            scores=scores,
            sigma=sigma,
            word_ids=word_ids,
            offsets=offsets,
            merged=True,
        )

    def normalized_scores(self) -> List[float]:
        """Scores mapped onto ``[0, 1]`` (min to max), as the colours show them."""
        return visualization.normalize_scores(self.scores, "minmax")

    def ranking(self, skip_special: bool = True) -> List[Tuple[str, float]]:
        """``(token, score)`` pairs, most informative first.

        Args:
            skip_special: Leave out special tokens such as ``[CLS]`` / ``[SEP]``
                (those whose ``word_ids`` entry is None), when ``word_ids`` is known.
        """
        pairs = [
            (token, score)
            for index, (token, score) in enumerate(zip(self.tokens, self.scores))
            if not (skip_special and self._is_special(index))
        ]
        return sorted(pairs, key=lambda pair: -pair[1])

    def to_record(
        self, true_class: Union[None, int, str] = None
    ) -> VisualizationDataRecord:
        """A Captum ``VisualizationDataRecord``, scores mapped onto ``[0, 1]``.

        Args:
            true_class: The true class, if known (shown in Captum's table).

        Returns:
            The record: ``raw_input_ids`` are the tokens, ``attr_score`` the total
            information in nats, ``attr_class`` the explained target.
        """
        return visualization.make_record(
            self.tokens,
            self.scores,
            pred_prob=self.probability,
            pred_class=self.predicted_name,
            true_class=true_class,
            attr_class=self.explained,
            attr_score=sum(self.scores),
            normalize="minmax",
        )

    def to_html(
        self,
        title: Optional[str] = None,
        true_class: Union[None, int, str] = None,
    ) -> str:
        """A self-contained HTML page; every token and the text are escaped.

        Args:
            title: Page heading; defaults to one naming the explained target.
            true_class: The true class, if known.

        Returns:
            The page as a string.
        """
        notes = [
            f"{score:.3f} nats, sigma {noise:.4f}"
            for score, noise in zip(self.scores, self.sigma)
        ]
        return visualization.records_to_html(
            [self.to_record(true_class)],
            title=title or f"Sigma attribution: {self.explained}",
            captions=[self.text],
            token_notes=[notes],
        )

    def plot(self, title: Optional[str] = None, per_row: int = 20) -> Figure:
        """A matplotlib figure of the tokens coloured by score, as in the paper.

        Args:
            title: Figure title; defaults to the prediction and explained target.
            per_row: Tokens per row before wrapping.
        """
        return visualization.plot_token_scores(
            self.tokens, self.scores, title=title or self._title(), per_row=per_row
        )

    def table(self) -> str:
        """A plain-text table of tokens, scores and σ (for a terminal)."""
        return visualization.format_token_table(self.tokens, self.scores, self.sigma)

    def summary(self) -> str:
        """One line: the prediction (if any) and what was explained."""
        return self._title()

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (see :meth:`from_dict`)."""
        data = dataclasses.asdict(self)
        if self.offsets is not None:
            data["offsets"] = [list(span) for span in self.offsets]
        data["format_version"] = FORMAT_VERSION
        return data

    def to_json(self, indent: Optional[int] = 2) -> str:
        """The explanation as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "TextExplanation":
        """Rebuilds an explanation written by :meth:`to_dict`.

        Raises:
            ValueError: If ``data`` lacks a field or has an unknown one.
        """
        fields = {field.name for field in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k != "format_version"}
        unknown = sorted(set(values) - fields)
        missing = sorted({"text", "tokens", "scores", "sigma"} - set(values))
        if unknown or missing:
            raise ValueError(
                f"data: not a TextExplanation dictionary (unknown keys {unknown}, "
                f"missing keys {missing})"
            )
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> "TextExplanation":
        """Rebuilds an explanation written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def _is_special(self, index: int) -> bool:
        return self.word_ids is not None and self.word_ids[index] is None

    def _title(self) -> str:
        parts = []
        if self.predicted_name is not None and self.probability is not None:
            parts.append(
                f"prediction: {self.predicted_name} (p = {self.probability:.3f})"
            )
        parts.append(f"explained: {self.explained}")
        return "; ".join(parts)
