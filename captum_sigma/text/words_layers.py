r"""WordsLayersExplanation: the information of every word in every layer."""

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
from matplotlib.figure import Figure

from captum_sigma import visualization
from captum_sigma.text._serialization import explanation_fields, explanation_record
from captum_sigma.text._subwords import (
    merge_standard_errors,
    merge_values,
    merged_fields,
    word_groups,
)
from captum_sigma.visualization import DEFAULT_LEVEL, MERGED_NOTE, SCORE_UNIT

__all__ = ["FORMAT_VERSION", "WordsLayersExplanation"]

#: Version of the dictionary layout (2: ``standard_error``, ``chains``, ``pieces``;
#: version 1 dictionaries are still read).
FORMAT_VERSION = 2

_DERIVED_KEYS = ("format_version", "units")


@dataclass
class WordsLayersExplanation:
    r"""
    The paper's words × layers view of one text: one sigma objective per encoder
    layer ``ℓ`` (``Φ_ℓ`` = the network up to layer ``ℓ``'s output hidden state, each
    normalised by its own ``r_ℓ`` from the same data sample), stacked into an
    ``(n_layers, n_tokens)`` matrix of information in nats per token.

    Paper: "Towards a Deep and Unified Understanding of Deep Neural Models in NLP",
    Guan, Wang, Zhang, Chen, He and Xie, ICML 2019,
    http://proceedings.mlr.press/v97/guan19a.html

    Attributes:
        text: The input text.
        tokens: Tokens (or words after :meth:`merge_subwords`), padding removed.
        layers: Encoder layers explained (1 = first layer's output).
        scores: ``scores[l][i]``: information of token ``i`` in ``layers[l]``, in
            nats per token.
        sigma: ``sigma[l][i]``: the matching noise scales.
        scale: The upper bound of σ used.
        predicted_name: Predicted class name (classifiers only).
        probability: Probability of the predicted class.
        word_ids: Word index per token (None for special tokens), if known.
        offsets: ``(start, end)`` character span of each token in ``text``.
        merged: Whether sub-words were merged into words.
        truncated: Whether the text was truncated to the model's maximum length.
        standard_error: ``standard_error[l][i]``: standard error of
            ``scores[l][i]`` in nats per token from independent chains (None with
            one chain).
        chains: Number of independent chains (``chains - 1`` degrees of freedom).
        pieces: After :meth:`merge_subwords`, the sub-word tokens behind each word.
    """

    text: str
    tokens: List[str]
    layers: List[int]
    scores: List[List[float]]
    sigma: List[List[float]]
    scale: float = 0.5
    predicted_name: Optional[str] = None
    probability: Optional[float] = None
    word_ids: Optional[List[Optional[int]]] = None
    offsets: Optional[List[Tuple[int, int]]] = None
    merged: bool = False
    truncated: bool = False
    standard_error: Optional[List[List[float]]] = None
    chains: int = 1
    pieces: Optional[List[int]] = None

    def __post_init__(self) -> None:
        shape = (len(self.layers), len(self.tokens))
        for name in ("scores", "sigma", "standard_error"):
            rows = getattr(self, name)
            if rows is None:
                continue
            if len(rows) != shape[0] or any(len(row) != shape[1] for row in rows):
                raise ValueError(
                    f"{name}: expected {shape[0]} rows (layers) of {shape[1]} values "
                    "(tokens)"
                )
        for name in ("word_ids", "offsets", "pieces"):
            value = getattr(self, name)
            if value is not None and len(value) != shape[1]:
                raise ValueError(f"{name}: give one value per token")
        if self.offsets is not None:
            self.offsets = [(int(s), int(e)) for s, e in self.offsets]

    @property
    def matrix(self) -> torch.Tensor:
        """Scores as a float32 tensor of shape ``(n_layers, n_tokens)``."""
        return torch.tensor(self.scores, dtype=torch.float32).reshape(
            len(self.layers), len(self.tokens)
        )

    @property
    def sigma_matrix(self) -> torch.Tensor:
        """σ as a float32 tensor of shape ``(n_layers, n_tokens)``."""
        return torch.tensor(self.sigma, dtype=torch.float32).reshape(
            len(self.layers), len(self.tokens)
        )

    def merge_subwords(self) -> "WordsLayersExplanation":
        """Merges sub-words into words in every layer.

        Scores add (information adds), standard errors combine as ``sqrt(Σ SE²)``
        (assuming the pieces' chain errors are independent), σ is the geometric
        mean.

        Returns:
            A new explanation over words; ``self`` is unchanged.
        """
        words = word_groups(self.tokens, self.word_ids, self.offsets, self.text)
        scores, sigma = [], []
        for layer_scores, layer_sigma in zip(self.scores, self.sigma):
            merged_scores, merged_sigma = merge_values(words, layer_scores, layer_sigma)
            scores.append(merged_scores)
            sigma.append(merged_sigma)
        standard_error = None
        if self.standard_error is not None:
            standard_error = [
                merge_standard_errors(words, row) for row in self.standard_error
            ]
        return dataclasses.replace(
            self,
            scores=scores,
            sigma=sigma,
            standard_error=standard_error,
            **merged_fields(words, self.offsets, self.pieces),
        )

    def distinguishable(
        self, level: float = DEFAULT_LEVEL
    ) -> Optional[List[List[bool]]]:
        """Per layer and token: does the interval exclude that layer's median?

        See :meth:`captum_sigma.text.TextExplanation.distinguishable`.

        Returns:
            ``(n_layers, n_tokens)`` flags, or None without a standard error.
        """
        if self.standard_error is None or self.chains < 2:
            return None
        special = None
        if self.word_ids is not None:
            special = [word_id is None for word_id in self.word_ids]
        return [
            visualization.distinguishable_tokens(
                row, errors, self.chains, special, self.pieces, level
            )
            or []
            for row, errors in zip(self.scores, self.standard_error)
        ]

    def plot(
        self,
        title: Optional[str] = None,
        vmax: Optional[float] = None,
        level: float = DEFAULT_LEVEL,
    ) -> Figure:
        """The words × layers heatmap (words across, layers down).

        Colours are absolute, 0 to ``vmax`` nats per token, with a colour bar;
        cells whose interval overlaps their layer's median are hatched.

        Args:
            title: Figure title.
            vmax: Maximum of the colour scale in nats per token (default: the
                largest score; see :func:`captum_sigma.visualization.shared_vmax`).
            level: Confidence level of the intervals and marks.
        """
        if title is None:
            title = "Information of each word in each layer"
            if self.predicted_name is not None and self.probability is not None:
                title += f" (prediction: {self.predicted_name}, {self.probability:.2f})"
        return visualization.plot_words_layers(
            self.tokens,
            [f"layer {k}" for k in self.layers],
            self.scores,
            title=title,
            vmax=vmax,
            distinguishable=self.distinguishable(level),
            notes=[MERGED_NOTE] if self.merged else [],
            level=level,
        )

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (see :meth:`from_dict`); ``units`` says that
        ``scores`` and ``standard_error`` are in nats per token."""
        units = {"scores": SCORE_UNIT, "standard_error": SCORE_UNIT}
        return explanation_record(self, FORMAT_VERSION, units)

    def to_json(self, indent: Optional[int] = 2) -> str:
        """The explanation as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "WordsLayersExplanation":
        """Rebuilds an explanation written by :meth:`to_dict` (format 1 or 2)."""
        required = ("text", "tokens", "layers", "scores", "sigma")
        return cls(
            **explanation_fields(cls, data, FORMAT_VERSION, _DERIVED_KEYS, required)
        )

    @classmethod
    def from_json(cls, text: str) -> "WordsLayersExplanation":
        """Rebuilds an explanation written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))
