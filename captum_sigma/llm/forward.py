"""What is explained of a causal language model's next-token output.

The explained value of target token ``y`` given logits ``z`` (one position):

* ``"log_prob"``: ``log softmax(z)_y`` (Captum's LLM target; near 0 when the
  model is sure, so divided by a data ``r`` its change saturates like a
  probability's; self-normalised, i.e. divided by its own clean value, the
  relative change of ``log p`` does not);
* ``"logit"``: ``z_y`` (unbounded, but only defined up to a shift shared by all
  tokens, so it needs ``r`` from data);
* ``"log_odds"``: ``log p_y − log(1 − p_y) = z_y − logsumexp_{j ≠ y} z_j`` (grows
  with the evidence where the log-probability saturates).

:func:`next_token_forward` builds the forward function that the sigma engine
perturbs; :func:`lm_regularization` estimates ``r``, the standard deviation of the
explained value over the next-token positions of a sample of texts (the paper's
normalisation). Sigma attribution: Guan et al., ICML 2019,
http://proceedings.mlr.press/v97/guan19a.html
"""

from typing import Any, Callable, Dict, Sequence

import torch
from torch import Tensor, nn

from captum_sigma.llm.choices import DEFAULT_EXPLAINED, EXPLAINED, check_explained

__all__ = [
    "DEFAULT_EXPLAINED",
    "EXPLAINED",
    "check_explained",
    "explained_values",
    "lm_regularization",
    "next_token_forward",
]


def explained_values(logits: Tensor, targets: Tensor, explained: str) -> Tensor:
    """The explained value of every target token, in float32.

    Args:
        logits: ``(..., V)`` next-token logits.
        targets: ``(...)`` token ids.
        explained: One of :data:`EXPLAINED`.

    Returns:
        Shape ``targets.shape``.
    """
    logits = logits.float()
    index = targets.unsqueeze(-1)
    target_logit = logits.gather(-1, index).squeeze(-1)
    if explained == "logit":
        return target_logit
    if explained == "log_prob":
        return target_logit - torch.logsumexp(logits, dim=-1)
    if explained == "log_odds":
        others = logits.scatter(-1, index, float("-inf"))
        return target_logit - torch.logsumexp(others, dim=-1)
    raise ValueError(f"explained must be one of {EXPLAINED}, got {explained!r}")


def next_token_forward(model: nn.Module, explained: str) -> Callable[..., Tensor]:
    """``f(input_ids, attention_mask, positions, targets) -> (B, L)`` values.

    Runs ``model`` (no cache) and explains the next-token output at ``positions``
    (``(B, L)``) for ``targets`` (``(B, L)``). Only the explained positions go
    through the output head: a pre-hook on ``model.get_output_embeddings()``
    gathers them (the head's memory is ``B·L·V``, not ``B·T·V``); a model without
    that module is read from its full logits. The hook is removed in ``finally``.
    """
    check_explained(explained)
    getter = getattr(model, "get_output_embeddings", None)
    head = getter() if callable(getter) else None

    def forward(
        input_ids: Tensor, attention_mask: Tensor, positions: Tensor, targets: Tensor
    ) -> Tensor:
        state: Dict[str, bool] = {}

        def gather(module: nn.Module, args: Any) -> Any:
            hidden = args[0] if args else None
            if (
                not isinstance(hidden, Tensor)
                or hidden.dim() != 3
                or hidden.shape[:2] != input_ids.shape
            ):
                return None
            state["gathered"] = True
            index = positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
            return (hidden.gather(1, index), *args[1:])

        handle = head.register_forward_pre_hook(gather) if head is not None else None
        try:
            output = model(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False
            )
        finally:
            if handle is not None:
                handle.remove()
        logits = output.logits if hasattr(output, "logits") else output[0]
        if logits.dim() == 4:  # (B, 1, T, V) of some multi-head decoders
            logits = logits[:, 0]
        if not state:
            index = positions.unsqueeze(-1).expand(-1, -1, logits.shape[-1])
            logits = logits.gather(1, index)
        return explained_values(logits, targets, explained)

    return forward


@torch.no_grad()
def lm_regularization(
    model: nn.Module,
    tokenizer: Any,
    texts: Sequence[str],
    explained: str = DEFAULT_EXPLAINED,
) -> Tensor:
    """``r``: the standard deviation of the explained value over a text sample.

    Every next-token position of every text counts (the value of the token that
    follows, given the tokens before it), so ``r`` is the spread of the explained
    value that the model's own predictions show on such text.

    Args:
        model: A causal language model (Hugging Face style).
        tokenizer: Its tokenizer (``encode``).
        texts: At least one text of two tokens or more.
        explained: One of :data:`EXPLAINED`.

    Returns:
        A scalar float32 tensor on the model's device (population std).

    Raises:
        ValueError: If the texts give fewer than two next-token positions.
    """
    check_explained(explained)
    device = next(model.parameters()).device
    forward = next_token_forward(model, explained)
    values = []
    for text in texts:
        ids = torch.as_tensor(tokenizer.encode(text), device=device).reshape(1, -1)
        if ids.shape[1] < 2:
            continue
        positions = torch.arange(ids.shape[1] - 1, device=device).unsqueeze(0)
        values.append(
            forward(ids, torch.ones_like(ids), positions, ids[:, 1:]).reshape(-1)
        )
    if not values or sum(v.numel() for v in values) < 2:
        raise ValueError(
            "texts: give texts with at least two next-token positions in all"
        )
    return torch.cat(values).std(unbiased=False)
