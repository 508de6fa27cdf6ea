"""Tiny deterministic models for the evaluation tests (closed-form outputs)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

PAD, CLS, SEP, MASK = 0, 1, 2, 3
VOCAB_SIZE = 10  # ids 4..9 are words


class BagOfWordsModel(nn.Module):
    """Logistic bag of words: logit_1 = bias + sum of attended token weights.

    ``predict_proba`` returns softmax([0, logit_1]), so p_1 = sigmoid(logit_1).
    """

    def __init__(self, weights: Tensor, bias: float = 0.0) -> None:
        super().__init__()
        self.embedding = nn.Embedding(weights.shape[0], 1, dtype=weights.dtype)
        with torch.no_grad():
            self.embedding.weight.copy_(weights[:, None])
        self.bias = bias

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        contributions = self.embedding(input_ids).squeeze(-1)
        logit = (contributions * attention_mask).sum(dim=1) + self.bias
        return torch.stack([torch.zeros_like(logit), logit], dim=1).softmax(dim=1)


# weights by id: [PAD], [CLS], [SEP], [MASK], then words 4..9
HAND_WEIGHTS = [0.0, 0.1, -0.2, -0.3, 2.0, -1.0, 0.5, 1.0, 0.25, -0.5]
HAND_BIAS = 0.2


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def closed_form_p1(ids: list[int], removed: set[int], operator: str) -> float:
    """p_1 of the bag of words for one unpadded sentence with tokens removed.

    Deleting a token drops its weight; masking it swaps in the [MASK] weight.
    """
    logit = HAND_BIAS
    for position, token in enumerate(ids):
        if position not in removed:
            logit += HAND_WEIGHTS[token]
        elif operator == "mask":
            logit += HAND_WEIGHTS[MASK]
    return sigmoid(logit)
