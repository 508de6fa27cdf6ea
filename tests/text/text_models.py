"""Tiny offline models and a tiny WordPiece tokenizer for the text API tests.

Imported by the tests as ``text_models`` (pytest puts this folder on sys.path).
"""

import torch

#: 100 tokens: the specials, sentiment and stop words, sub-words, markup pieces.
VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "good",
    "bad",
    "great",
    "awful",
    "film",
    "movie",
    "the",
    "a",
    "is",
    "it",
    "was",
    "and",
    "not",
    "very",
    "plot",
    "un",
    "##believ",
    "##able",
    "##ly",
    "##ably",
    "<",
    ">",
    "/",
    "script",
    "img",
    "src",
    "=",
    "x",
    "onerror",
    "alert",
    "(",
    ")",
    "1",
    ".",
    ",",
    "!",
    "'",
    "&",
    '"',
    ";",
    "$",
] + [f"w{i}" for i in range(54)]


def make_tokenizer(max_length: int = 64):
    from transformers import BertTokenizer

    vocab = {token: index for index, token in enumerate(VOCAB)}
    return BertTokenizer(vocab=vocab, model_max_length=max_length)


def make_tiny_distilbert(num_labels: int = 2, seed: int = 0):
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    torch.manual_seed(seed)
    config = DistilBertConfig(
        vocab_size=100,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=64,
        num_labels=num_labels,
    )
    return DistilBertForSequenceClassification(config).eval()


def make_tiny_roberta(num_labels: int = 3, seed: int = 0):
    from transformers import RobertaConfig, RobertaForSequenceClassification

    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=66,
        pad_token_id=0,
        num_labels=num_labels,
    )
    return RobertaForSequenceClassification(config).eval()


def make_tiny_encoder(seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    return BertModel(config).eval()


__all__ = [
    "VOCAB",
    "make_tiny_distilbert",
    "make_tiny_encoder",
    "make_tiny_roberta",
    "make_tokenizer",
]
