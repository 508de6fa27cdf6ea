"""Shared fixtures: offline Hugging Face, one CPU thread, small random models."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


def make_tiny_bert(num_labels: int = 2, seed: int = 0):
    """A 2-layer, hidden-32 random BERT classifier, built offline, in eval mode."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        num_labels=num_labels,
    )
    return BertForSequenceClassification(config).eval()


@pytest.fixture
def tiny_bert():
    return make_tiny_bert()


@pytest.fixture
def padded_ids():
    """Three sentences of lengths 10, 6 and 3 padded to 10 (0 = [PAD])."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 100, (3, 10), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    return ids * mask, mask
