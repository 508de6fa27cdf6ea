"""One tokenisation for every text path: explanations, the comparison, the CLI."""

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

__all__ = ["TokenizedTexts", "tokenize_texts"]


@dataclass
class TokenizedTexts:
    """Texts tokenised as one right-padded batch.

    Attributes:
        texts: The texts.
        input_ids: Token ids, ``(B, T)``, on the requested device.
        attention_mask: 1 for real tokens, 0 for padding, ``(B, T)``.
        tokens: Each text's real tokens (special tokens included, padding not).
        word_ids: Each real token's word index (None for special tokens), from a
            fast tokenizer; None per text for a slow one.
        offsets: Each real token's ``(start, end)`` characters (fast tokenizers).
        truncated: Whether each text was longer than ``max_length`` tokens.
    """

    texts: List[str]
    input_ids: Tensor
    attention_mask: Tensor
    tokens: List[List[str]]
    word_ids: List[Optional[List[Optional[int]]]]
    offsets: List[Optional[List[Tuple[int, int]]]]
    truncated: List[bool]


def tokenize_texts(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int,
    device: Union[None, str, torch.device] = None,
) -> TokenizedTexts:
    """Tokenises ``texts`` with padding and truncation to ``max_length`` tokens.

    Args:
        tokenizer: A Hugging Face tokenizer (a fast one also gives word ids and
            character offsets).
        texts: The texts.
        max_length: Longest input in tokens, special tokens included.
        device: Where ``input_ids`` and ``attention_mask`` go (None: CPU).

    Returns:
        The batch (:class:`TokenizedTexts`).
    """
    texts = list(texts)
    fast = bool(getattr(tokenizer, "is_fast", False))
    encoding = tokenizer(
        texts,
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
        return_offsets_mapping=fast,
    )
    lengths = tokenizer(
        texts, truncation=True, max_length=max_length + 1, padding=False
    )["input_ids"]
    ids = encoding["input_ids"]
    mask = encoding["attention_mask"]
    tokens, word_ids, offsets = [], [], []
    for row in range(len(texts)):
        real = mask[row].bool()
        positions = real.nonzero().flatten().tolist()
        tokens.append(tokenizer.convert_ids_to_tokens(ids[row][real].tolist()))
        if fast:
            row_words = encoding.word_ids(row)
            row_offsets = encoding["offset_mapping"][row].tolist()
            word_ids.append([row_words[p] for p in positions])
            offsets.append([tuple(row_offsets[p]) for p in positions])
        else:
            word_ids.append(None)
            offsets.append(None)
    return TokenizedTexts(
        texts=texts,
        input_ids=ids.to(device),
        attention_mask=mask.to(device),
        tokens=tokens,
        word_ids=word_ids,
        offsets=offsets,
        truncated=[len(row) > max_length for row in lengths],
    )
