"""Fixtures of the evaluation tests."""

from __future__ import annotations

import pytest
import torch
from eval_toy_models import HAND_BIAS, HAND_WEIGHTS, BagOfWordsModel


@pytest.fixture
def bow_model() -> BagOfWordsModel:
    weights = torch.tensor(HAND_WEIGHTS, dtype=torch.float64)
    return BagOfWordsModel(weights, HAND_BIAS).double().eval()
