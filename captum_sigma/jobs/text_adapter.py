"""The text layer as the corpus job's :class:`~captum_sigma.jobs.BatchExplainer`."""

from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

import captum_sigma
from captum_sigma.jobs.identity import files_sha256, texts_sha256
from captum_sigma.text import TextExplainer

__all__ = ["TextBatchExplainer", "text_job_settings"]

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
        settings: What :meth:`describe` returns (see :func:`text_job_settings`);
            default: the model's name and the explainer's options.
    """

    def __init__(
        self,
        explainer: TextExplainer,
        model_name: str,
        layer: Optional[int] = None,
        target: Union[None, int, str] = None,
        settings: Optional[Mapping[str, Any]] = None,
    ) -> None:
        self.explainer = explainer
        self.model_name = model_name
        self.layer = layer
        self.target = target
        self.settings = None if settings is None else dict(settings)
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
        if self.settings is not None:
            return dict(self.settings)
        options = self.explainer.options
        return {
            "model": self.model_name,
            "layer": self.layer,
            "target": self.target,
            "options": {**options.attribute_kwargs()},
            "max_length": self.max_length,
            "captum_sigma": captum_sigma.__version__,
        }


def text_job_settings(
    model_files: Sequence[Path],
    data: Optional[Sequence[str]],
    layer: Optional[int],
    target: Union[None, int, str],
    options: Mapping[str, Any],
    device: str,
    threads: int,
    output: Optional[str] = None,
) -> Dict[str, Any]:
    """The explainer's part of a corpus job's identity, known before loading.

    Args:
        model_files: The model's files and folders (hashed by content).
        data: The ``r`` data sample (hashed), or None (self-normalised).
        layer: The explained layer, or None.
        target: The explained class, or None (the predicted one).
        output: A classifier's explained output (``"probability"`` or
            ``"logit"``), None for a bare encoder.
        options: The sigma options (``SigmaOptions.attribute_kwargs()``) and any
            other option that changes the numbers (e.g. ``batch_size``).
        device: The device type (``cpu``, ``cuda``, ``mps``).
        threads: torch's CPU threads (reductions split differently).
    """
    return {
        "model_sha256": files_sha256(model_files),
        "data_sha256": None if data is None else texts_sha256(data),
        "layer": layer,
        "target": target,
        "output": output,
        "options": dict(options),
        "device": device,
        "threads": threads,
    }
