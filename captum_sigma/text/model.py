"""Finding the parts of a Hugging Face model, and the explained outputs Φ.

Each ``*Output`` callable takes ``(input_ids, attention_mask, ...)`` positionally, as
:class:`~captum_sigma.LayerSigmaAttribution` calls its forward function, and returns
the explained output already divided by ``r`` (when ``r`` is known), so that several
rows of one batch may use different ``r`` (per class, per layer) while the sigma
problem is given ``regularization=1``: ``((Φ(x̃) − s) / r)²`` either way.
"""

from contextlib import contextmanager
from operator import attrgetter
from typing import Any, Dict, Iterator, List, Optional, Sequence

import torch
from torch import Tensor, nn

from captum_sigma.attr import StopForward, captured_outputs
from captum_sigma.engine import REGULARIZATION_EPS

__all__ = [
    "LayersOutput",
    "LogOddsOutput",
    "LogitsOutput",
    "POOLINGS",
    "PooledOutput",
    "ProbabilitiesOutput",
    "base_model",
    "eval_mode",
    "find_embeddings",
    "find_layers",
    "is_classifier",
    "model_device",
    "model_max_length",
]

#: Attribute paths (from the base model) of the list of encoder layers.
_LAYER_PATHS = (
    "encoder.layer",  # BERT, RoBERTa, ELECTRA, MiniLM, XLM-R
    "transformer.layer",  # DistilBERT
    "encoder.layers",
    "layers",
    "layer",
)
#: Sentence embeddings of a bare encoder.
POOLINGS = ("mean", "cls", "pooler")
#: Tokenizers without a real maximum report this sentinel (or larger).
_UNSET_MAX_LENGTH = 1_000_000


def base_model(model: nn.Module) -> nn.Module:
    """The model without its head (``model.base_model``, or the model itself)."""
    base = getattr(model, "base_model", None)
    return base if isinstance(base, nn.Module) else model


def is_classifier(model: nn.Module) -> bool:
    """Whether ``model`` is an ``...ForSequenceClassification`` (else: an encoder)."""
    return "ForSequenceClassification" in type(model).__name__


def find_embeddings(model: nn.Module) -> nn.Module:
    """The embeddings module whose output (word + position + ...) is perturbed.

    ``model.base_model.embeddings`` (the sum of word, position and token-type
    embeddings), else the model's ``get_input_embeddings()``.

    Raises:
        ValueError: If the model has neither.
    """
    embeddings = getattr(base_model(model), "embeddings", None)
    if isinstance(embeddings, nn.Module):
        return embeddings
    if hasattr(model, "get_input_embeddings"):
        return model.get_input_embeddings()
    raise ValueError(
        f"model: cannot find the embeddings module of {type(model).__name__} "
        "(looked for model.base_model.embeddings and get_input_embeddings()); pass "
        "embeddings=<module whose output is perturbed>"
    )


def find_layers(model: nn.Module) -> List[nn.Module]:
    """The encoder layers in order (``encoder.layer``, ``transformer.layer``, ...).

    Raises:
        ValueError: If no list of layers is found.
    """
    base = base_model(model)
    for path in _LAYER_PATHS:
        try:
            layers = attrgetter(path)(base)
        except AttributeError:
            continue
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return list(layers)
    raise ValueError(
        f"model: cannot find the encoder layers of {type(model).__name__} (looked for "
        f"base_model.{', base_model.'.join(_LAYER_PATHS)}); pass layers=<list of "
        "layer modules>"
    )


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless model)."""
    parameter = next(model.parameters(), None)
    return torch.device("cpu") if parameter is None else parameter.device


def model_max_length(model: nn.Module, tokenizer: Any) -> int:
    """The longest input (in tokens, special tokens included) the model takes."""
    limits = []
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < _UNSET_MAX_LENGTH:
        limits.append(tokenizer_limit)
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None)
    if isinstance(positions, int) and positions > 0:
        # RoBERTa-style models offset positions by padding_idx + 1.
        offset = 2 if "roberta" in str(getattr(config, "model_type", "")) else 0
        limits.append(positions - offset)
    return min(limits) if limits else 512


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Puts ``model`` in eval mode (no dropout) and restores its mode afterwards."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _normalise(output: Tensor, r: Optional[Tensor]) -> Tensor:
    if r is None:
        return output
    return output / r.to(output.device, output.dtype).clamp_min(REGULARIZATION_EPS)


class LogitsOutput:
    """Φ = the classifier's logits (divided by ``r``, shape ``(C,)``)."""

    def __init__(self, model: nn.Module, r: Optional[Tensor] = None) -> None:
        self.model = model
        self.r = r

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        logits = getattr(output, "logits", output)
        if not isinstance(logits, Tensor) or logits.dim() != 2:
            raise ValueError(
                "model: a sequence classifier must return logits of shape "
                "(batch, classes)"
            )
        return _normalise(logits, self.r)


class ProbabilitiesOutput:
    """Φ = the classifier's softmax probabilities (shape ``(C,)``), not normalised.

    ``softmax(dim=-1)`` of :class:`LogitsOutput`'s logits, in their dtype: exactly
    what ``captum_sigma.evaluation.classifier_forward(model, "proba")`` computes,
    the quantity the removal metrics measure. Explained self-normalised
    (``regularization=None``: each text divides by its own ``s²``).
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.logits = LogitsOutput(model)

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        return self.logits(input_ids, attention_mask).softmax(dim=-1)


class LogOddsOutput:
    """Φ = every class's log-odds ``log p_c − log(1 − p_c)`` (divided by ``r``).

    ``log p_c − log(1 − p_c) = z_c − logsumexp_{j ≠ c} z_j`` from the logits ``z``,
    computed that way so it stays finite where ``p_c`` rounds to 1 (for two
    classes it is ``z_c − z_other``). Unlike the probability it does not saturate:
    a confident prediction keeps a large, movable log-odds.
    """

    def __init__(self, model: nn.Module, r: Optional[Tensor] = None) -> None:
        self.logits = LogitsOutput(model)
        self.r = r

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        logits = self.logits(input_ids, attention_mask)
        classes = logits.shape[-1]
        if classes < 2:
            raise ValueError("log-odds need a classifier with at least 2 classes")
        others = ~torch.eye(classes, dtype=torch.bool, device=logits.device)
        expanded = logits.unsqueeze(1).expand(-1, classes, -1)
        masked = expanded.masked_fill(~others, float("-inf"))
        return _normalise(logits - torch.logsumexp(masked, dim=-1), self.r)


class PooledOutput:
    """Φ = a bare encoder's sentence embedding (divided by ``r``, shape ``(D,)``).

    ``pooling``: ``"mean"`` (mean of the last hidden state over real tokens, the
    sentence-transformers embedding), ``"cls"`` (the first token's last hidden state)
    or ``"pooler"`` (the model's ``pooler_output``).
    """

    def __init__(
        self, model: nn.Module, pooling: str = "mean", r: Optional[Tensor] = None
    ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.model = base_model(model)
        self.pooling = pooling
        self.r = r

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        output = self.model(input_ids=input_ids, attention_mask=attention_mask)
        if self.pooling == "pooler":
            pooled = getattr(output, "pooler_output", None)
            if pooled is None:
                raise ValueError(
                    f"pooling='pooler': {type(self.model).__name__} has no pooler; "
                    "use pooling='mean' or 'cls'"
                )
        else:
            hidden = output.last_hidden_state
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
                pooled = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)
        return _normalise(pooled, self.r)


class LayersOutput:
    """Φ = encoder layers' output hidden states, one layer per row of the batch.

    Args:
        model: The model (its base model is run; the forward stops after the last
            layer in ``indices``).
        layers: All encoder layers, in order.
        indices: 0-based indices of the explained layers.
        r: ``(len(indices), D)`` per-layer ``r`` or None.
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[nn.Module],
        indices: Sequence[int],
        r: Optional[Tensor] = None,
    ) -> None:
        self.model = base_model(model)
        self.layers = list(layers)
        self.indices = list(indices)
        self.r = r

    def __call__(
        self, input_ids: Tensor, attention_mask: Tensor, row_layer: Tensor
    ) -> Tensor:
        """``(B, T, D)``: row ``j`` is layer ``indices[row_layer[j]]``'s output / r."""
        stacked = self.stacked(input_ids, attention_mask)
        rows = torch.arange(stacked.shape[0], device=stacked.device)
        chosen = row_layer.to(stacked.device).long()
        hidden = stacked[rows, :, chosen]
        if self.r is None:
            return hidden
        r = self.r.to(hidden.device, hidden.dtype).clamp_min(REGULARIZATION_EPS)
        return hidden / r[chosen].unsqueeze(1)

    def stacked(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """``(B, T, n_layers, D)``: every explained layer's output, not normalised."""
        store: Dict[int, Tensor] = {}
        with captured_outputs(self.layers, self.indices, store):
            try:
                self.model(input_ids=input_ids, attention_mask=attention_mask)
            except StopForward:
                pass
        missing = [i + 1 for i in self.indices if i not in store]
        if missing:
            raise ValueError(
                f"layers: encoder layers {missing} did not run in the model's forward"
            )
        return torch.stack([store[i] for i in self.indices], dim=2)
