"""Shared fixtures: offline Hugging Face, one CPU thread, small random models."""

import os
import sys
from pathlib import Path

# the research harness (benchmarks/comparison/, benchmarks/_common.py) imports as
# the benchmark scripts import it: with benchmarks/ on sys.path
_BENCHMARKS = str(Path(__file__).resolve().parents[1] / "benchmarks")
if _BENCHMARKS not in sys.path:
    sys.path.insert(0, _BENCHMARKS)

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


#: The tiny saved model's vocabulary after the special tokens.
TINY_WORDS = [
    "good",
    "bad",
    "film",
    "the",
    "plot",
    "is",
    "not",
    ".",
    "<",
    ">",
    "script",
]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random BERT classifier and WordPiece tokenizer saved like a HF model."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer
    from transformers.utils import logging as hf_logging

    torch.manual_seed(0)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: index for index, token in enumerate(specials + TINY_WORDS)}
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    folder = tmp_path_factory.mktemp("tiny-model")
    hf_logging.disable_progress_bar()
    BertForSequenceClassification(config).eval().save_pretrained(folder)
    BertTokenizer(vocab=vocab, model_max_length=32).save_pretrained(folder)
    hf_logging.enable_progress_bar()
    return folder
