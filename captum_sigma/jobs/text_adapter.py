"""The text layer as the corpus job's :class:`~captum_sigma.jobs.BatchExplainer`.

One function, :func:`text_job_identity`, builds the explainer's part of a job's
identity on both paths, so that they cannot drift apart:

- from Python, :meth:`TextBatchExplainer.describe` derives it from the explainer
  itself (:func:`explainer_job_identity`): the model's tensors and config, the
  tokenizer's vocabulary and settings and the values of ``r`` are hashed, so a
  model that never touched a file is identified too;
- the command line (``captum-sigma explain-dataset``) builds it before loading any
  weights (:func:`text_job_settings`): the model's files (weights, config and
  tokenizer) and the ``r`` data sample are hashed instead, a faster equivalent.

Both record the same fields: the explained output, layer and target, every
:class:`~captum_sigma.SigmaOptions` field, the text settings (batch size, longest
input, pooling, perturbed and explained modules), the weights, the tokenizer,
``r``, the device type and torch's CPU threads.
"""

import inspect
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from captum_sigma.engine import SigmaOptions
from captum_sigma.jobs.identity import (
    config_sha256,
    files_sha256,
    module_sha256,
    qualified_name,
    tensor_sha256,
    texts_sha256,
    tokenizer_sha256,
)
from captum_sigma.text import TextExplainer

__all__ = [
    "TextBatchExplainer",
    "explainer_job_identity",
    "text_job_identity",
    "text_job_settings",
]

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
    "standard_error",
    "chains",
    "preset",
    "units",
    "flat",
)


class TextBatchExplainer:
    """Explains batches of texts with a :class:`~captum_sigma.text.TextExplainer`.

    Args:
        explainer: The configured text explainer (model, tokenizer, r, options).
        model_name: A label for the model. Not part of the job's identity: the
            model is identified by its tensors, so the same model under another
            name resumes a job and another model under the same name is refused.
        layer: Explain this encoder layer's hidden state (1-based) instead of the
            prediction.
        target: Class index or label name to explain instead of the predicted one.
        settings: What :meth:`describe` returns (see :func:`text_job_settings`);
            default: the identity derived from the explainer
            (:func:`explainer_job_identity`).
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
        """The explainer's part of the job's identity (:func:`text_job_identity`).

        Without ``settings``: derived from the explainer (hashes the model's
        tensors and estimates ``r`` if it is used and not yet cached).
        """
        if self.settings is not None:
            return dict(self.settings)
        return explainer_job_identity(self.explainer, self.layer, self.target)


def text_job_identity(
    *,
    output: Optional[str],
    layer: Optional[int],
    target: Union[None, int, str],
    options: SigmaOptions,
    batch_size: Optional[int],
    max_length: Optional[int],
    pooling: str,
    embeddings: Optional[str],
    layer_module: Optional[str],
    weights: Mapping[str, Any],
    tokenizer: Mapping[str, Any],
    r: Optional[Mapping[str, Any]],
    device: str,
    threads: int,
) -> Dict[str, Any]:
    """The explainer's part of a corpus job's identity (Python and the CLI).

    Every argument is required, so that both paths state every field.

    Args:
        output: A classifier's explained output (``"probability"`` or
            ``"logit"``), None for a bare encoder.
        layer: The explained encoder layer (1-based), or None.
        target: The explained class, or None (the predicted one).
        options: The sigma options; every field is recorded
            (``dataclasses.asdict``), including fields added later.
        batch_size: The explainer's texts per batch (``r``'s estimate and the
            optimisation run batch by batch).
        max_length: Longest input in tokens; None: the model's maximum (the CLI:
            fixed by the hashed model files).
        pooling: A bare encoder's sentence embedding.
        embeddings: The perturbed module's name in the model; None: the model's
            default (the CLI).
        layer_module: The explained layer's module name in the model, or None
            (no layer, or the model's default layers: the CLI).
        weights: The model's fingerprint, e.g. ``{"tensors_sha256": ...}`` or
            ``{"files_sha256": ...}``.
        tokenizer: The tokenizer's fingerprint.
        r: ``r``'s fingerprint (its values or its data sample), None when there
            is none.
        device: The device type (``cpu``, ``cuda``, ``mps``).
        threads: torch's CPU threads (reductions split differently).

    Returns:
        A JSON-serialisable mapping (flattened field names such as
        ``options.rate`` or ``weights.tensors_sha256`` name a difference).
    """
    if not isinstance(options, SigmaOptions):
        raise TypeError(f"options must be a SigmaOptions, got {type(options).__name__}")
    return {
        "output": output,
        "layer": layer,
        "target": target,
        "options": asdict(options),
        "text": {
            "batch_size": batch_size,
            "max_length": max_length,
            "pooling": pooling,
            "embeddings": embeddings,
            "layer_module": layer_module,
        },
        "weights": dict(weights),
        "tokenizer": dict(tokenizer),
        "r": None if r is None else dict(r),
        "device": device,
        "threads": threads,
    }


def explainer_job_identity(
    explainer: TextExplainer,
    layer: Optional[int] = None,
    target: Union[None, int, str] = None,
) -> Dict[str, Any]:
    """The job identity of a :class:`~captum_sigma.text.TextExplainer`'s results.

    Derived from the explainer itself: its explained output, every sigma option,
    its batch size, longest input and pooling, the perturbed (and explained
    layer's) module, a hash of the model's class, config and tensors (parameters
    and buffers: names, dtypes, shapes, bytes), of the tokenizer's vocabulary and
    settings and of ``r``'s values (estimated here if it is used and not cached),
    the device type and torch's threads.

    Args:
        explainer: The explainer.
        layer: The explained encoder layer (1-based), or None.
        target: The explained class, or None (the predicted one).
    """
    model = explainer.model
    r = explainer.regularization(layer)
    layer_module = None
    if layer is not None:
        module = explainer.layers[layer - 1 if layer > 0 else layer]
        layer_module = _module_name(model, module)
    return text_job_identity(
        output=explainer.output,
        layer=layer,
        target=target,
        options=explainer.options,
        batch_size=explainer.batch_size,
        max_length=explainer.max_length,
        pooling=explainer.pooling,
        embeddings=_module_name(model, explainer.embeddings),
        layer_module=layer_module,
        weights={
            "class": qualified_name(model),
            "config_sha256": config_sha256(model),
            "tensors_sha256": module_sha256(model),
        },
        tokenizer={"sha256": tokenizer_sha256(explainer.tokenizer)},
        r=None if r is None else {"values_sha256": tensor_sha256(r)},
        device=explainer.device.type,
        threads=torch.get_num_threads(),
    )


def text_job_settings(
    model_files: Sequence[Path],
    data: Optional[Sequence[str]],
    layer: Optional[int],
    target: Union[None, int, str],
    options: Union[SigmaOptions, Mapping[str, Any]],
    device: str,
    threads: int,
    output: Optional[str] = None,
) -> Dict[str, Any]:
    """The command line's job identity, known before loading any weights.

    The same fields as :func:`explainer_job_identity` (both call
    :func:`text_job_identity`), with file hashes standing for the loaded objects:
    the model's files (weights, config and tokenizer) for the weights and the
    tokenizer, the ``r`` data sample for ``r``. The CLI builds its explainer with
    :class:`~captum_sigma.text.TextExplainer`'s default pooling, perturbed module
    and layers, and the model's own maximum length.

    Args:
        model_files: The model's files and folders (hashed by content).
        data: The ``r`` data sample (hashed), or None (self-normalised).
        layer: The explained layer, or None.
        target: The explained class, or None (the predicted one).
        options: The sigma options: a :class:`~captum_sigma.SigmaOptions`, or
            every one of its fields (``dataclasses.asdict``) plus the
            explainer's ``batch_size``.
        device: The device type (``cpu``, ``cuda``, ``mps``).
        threads: torch's CPU threads (reductions split differently).
        output: A classifier's explained output (``"probability"`` or
            ``"logit"``), None for a bare encoder.

    Raises:
        TypeError: ``options`` lacks a SigmaOptions field or has an unknown one.
    """
    sigma, batch_size = _split_options(options)
    digest = files_sha256(model_files)
    return text_job_identity(
        output=output,
        layer=layer,
        target=target,
        options=sigma,
        batch_size=batch_size,
        max_length=None,
        pooling=_DEFAULT_POOLING,
        embeddings=None,
        layer_module=None,
        weights={"files_sha256": digest},
        tokenizer={"files_sha256": digest},
        r=None if data is None else {"data_sha256": texts_sha256(data)},
        device=device,
        threads=threads,
    )


#: TextExplainer's default pooling (the CLI does not choose one).
_DEFAULT_POOLING: str = inspect.signature(TextExplainer).parameters["pooling"].default


def _split_options(
    options: Union[SigmaOptions, Mapping[str, Any]],
) -> Tuple[SigmaOptions, Optional[int]]:
    """``(SigmaOptions, batch_size)`` from options given as an object or a mapping."""
    if isinstance(options, SigmaOptions):
        return options, None
    values = dict(options)
    batch_size = values.pop("batch_size", None)
    names = {item.name for item in fields(SigmaOptions)}
    missing, unknown = names - set(values), set(values) - names
    if missing or unknown:
        raise TypeError(
            "options must hold every SigmaOptions field (dataclasses.asdict) and "
            f"batch_size; missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    return SigmaOptions(**values), batch_size


def _module_name(model: nn.Module, module: nn.Module) -> str:
    """``module``'s name in ``model``; a module outside it: its class and hash."""
    for name, candidate in model.named_modules():
        if candidate is module:
            return name
    return f"outside the model: {qualified_name(module)} {module_sha256(module)}"
