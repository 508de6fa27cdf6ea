"""The text layer as the corpus job's :class:`~captum_sigma.jobs.BatchExplainer`."""

from typing import Any, Dict, List, Optional, Sequence, Union

import captum_sigma
from captum_sigma.text import TextExplainer

__all__ = ["TextBatchExplainer"]

#: Fields of a TextExplanation that a result row keeps (the job adds index, id, text).
_ROW_FIELDS = (
    "tokens",
    "scores",
    "sigma",
    "explained",
    "target",
    "target_name",
    "layer",
    "predicted_label",
    "predicted_name",
    "probability",
)


class TextBatchExplainer:
    """Explains batches of texts with a :class:`~captum_sigma.text.TextExplainer`.

    Args:
        explainer: The configured text explainer (model, tokenizer, r, options).
        model_name: How the model is named in the job's manifest.
        layer: Explain this encoder layer's hidden state (1-based) instead of the
            prediction.
        target: Class index or label name to explain instead of the predicted one.
    """

    def __init__(
        self,
        explainer: TextExplainer,
        model_name: str,
        layer: Optional[int] = None,
        target: Union[None, int, str] = None,
    ) -> None:
        self.explainer = explainer
        self.model_name = model_name
        self.layer = layer
        self.target = target
        self.max_length = explainer.max_length

    def count_tokens(self, text: str) -> int:
        return len(self.explainer.tokenizer(text, add_special_tokens=True)["input_ids"])

    def explain(self, texts: Sequence[str]) -> List[Dict[str, Any]]:
        explanations = self.explainer.explain(
            list(texts), target=self.target, layer=self.layer
        )
        rows = []
        for explanation in explanations:
            data = explanation.to_dict()
            rows.append({key: data[key] for key in _ROW_FIELDS})
        return rows

    def describe(self) -> Dict[str, Any]:
        options = self.explainer.options
        return {
            "model": self.model_name,
            "layer": self.layer,
            "target": self.target,
            "options": {**options.attribute_kwargs()},
            "max_length": self.max_length,
            "captum_sigma": captum_sigma.__version__,
        }
