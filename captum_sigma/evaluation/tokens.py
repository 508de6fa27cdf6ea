r"""A tokenised batch of sentences with everything the compared methods share.

Every method of :func:`~captum_sigma.evaluation.compare.compare` sees the same
:class:`TokenBatch`: the same token ids, the same eligible tokens (never
[CLS]/[SEP]/padding), the same baseline (``[PAD]`` at every eligible token,
[CLS]/[SEP] and padding kept) and the same feature mask (one feature per
eligible token). Every removal metric
(:mod:`~captum_sigma.evaluation.faithfulness`,
:mod:`~captum_sigma.evaluation.dependence`) takes one too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from captum_sigma.evaluation._checks import (
    TargetLike,
    check_eligible,
    check_positive_int,
    check_token_batch,
)
from captum_sigma.evaluation.forward import target_tensor
from captum_sigma.evaluation.removal import (
    Removal,
    eligible_token_mask,
    special_token_ids_of,
)
from captum_sigma.text.tokenization import TokenizedTexts, tokenize_texts

__all__ = ["TokenBatch", "check_texts", "encode_texts", "tokenize_with_eligible"]


@dataclass(frozen=True)
class TokenBatch:
    r"""Right-padded token ids of a few sentences and their shared inputs.

    Build one with :meth:`build`; :meth:`removal` gives the removal operator
    with this batch's pad and [MASK] ids.

    Attributes:
        input_ids (Tensor): Token ids, shape (B, T).
        attention_mask (Tensor): 1 for real tokens, 0 for padding, shape (B, T).
        eligible (Tensor): Bool, tokens that may be ranked and removed, (B, T).
        baseline_ids (Tensor): ``input_ids`` with every eligible token replaced
                by ``pad_token_id`` ([CLS]/[SEP] and padding kept), (B, T).
        feature_mask (Tensor): Long (B, T): eligible tokens numbered 0, 1, ...
                in order; every other position 0 (its baseline equals its input,
                so ablating it with feature 0 changes nothing).
        target (Tensor or None): Class to explain per sentence, long (B,);
                None (removal metrics only): the predicted class.
        indices (Tensor): Position of each sentence in the full list, long (B,);
                methods derive per-sentence seeds from it, so results do not
                depend on how sentences are batched.
        pad_token_id (int): Id of [PAD].
        mask_token_id (int or None): Id of [MASK].
    """

    input_ids: Tensor
    attention_mask: Tensor
    eligible: Tensor
    baseline_ids: Tensor
    feature_mask: Tensor
    target: Tensor | None
    indices: Tensor
    pad_token_id: int = 0
    mask_token_id: int | None = None

    @classmethod
    def build(
        cls,
        input_ids: Tensor,
        attention_mask: Tensor,
        eligible: Tensor,
        target: TargetLike = None,
        indices: Tensor | None = None,
        pad_token_id: int = 0,
        mask_token_id: int | None = None,
    ) -> TokenBatch:
        r"""Derives the baseline and the feature mask from ids and eligibility.

        Args:
            input_ids (Tensor): Token ids, shape (B, T), right-padded.
            attention_mask (Tensor): Attention mask, shape (B, T).
            eligible (Tensor): Bool mask of the rankable tokens, shape (B, T);
                    never padding.
            target (int, sequence or Tensor, optional): Class per sentence
                    (or one int for all). Default: None, the predicted class
                    (for the removal metrics; the methods need a target).
            indices (Tensor, optional): Sentence positions; default 0..B-1.
            pad_token_id (int, optional): Id of [PAD]. Default: 0.
            mask_token_id (int, optional): Id of [MASK]. Default: None.

        Returns:
            TokenBatch: The batch.
        """
        check_token_batch(input_ids, attention_mask)
        eligible = check_eligible(eligible, attention_mask)
        n_rows = input_ids.shape[0]
        if target is not None:
            target = target_tensor(target, n_rows).to(input_ids.device)
        if indices is None:
            indices = torch.arange(n_rows)
        feature_mask = (eligible.long().cumsum(dim=1) - 1).clamp_min(0) * eligible
        return cls(
            input_ids=input_ids,
            attention_mask=attention_mask,
            eligible=eligible,
            baseline_ids=input_ids.masked_fill(eligible, pad_token_id),
            feature_mask=feature_mask,
            target=target,
            indices=torch.as_tensor(indices).long().cpu(),
            pad_token_id=pad_token_id,
            mask_token_id=mask_token_id,
        )

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def select(self, rows: Sequence[int] | Tensor, trim: bool = True) -> TokenBatch:
        r"""Sub-batch of the given rows, trimmed to its longest sentence.

        Args:
            rows (sequence of int or Tensor): Row positions in this batch.
            trim (bool, optional): Drop the trailing columns that are padding in
                    every selected row. Default: True.

        Returns:
            TokenBatch: The selected sentences.
        """
        index = torch.as_tensor(rows, dtype=torch.long)
        width = self.input_ids.shape[1]
        if trim and index.numel():
            width = max(1, int(self.attention_mask[index].sum(dim=1).max()))
        device_index = index.to(self.input_ids.device)
        return TokenBatch(
            input_ids=self.input_ids[device_index, :width],
            attention_mask=self.attention_mask[device_index, :width],
            eligible=self.eligible[device_index, :width],
            baseline_ids=self.baseline_ids[device_index, :width],
            feature_mask=self.feature_mask[device_index, :width],
            target=None if self.target is None else self.target[device_index],
            indices=self.indices[index],
            pad_token_id=self.pad_token_id,
            mask_token_id=self.mask_token_id,
        )

    def to(self, device: str | torch.device) -> TokenBatch:
        """The same batch with every tensor but ``indices`` on ``device``."""
        return TokenBatch(
            input_ids=self.input_ids.to(device),
            attention_mask=self.attention_mask.to(device),
            eligible=self.eligible.to(device),
            baseline_ids=self.baseline_ids.to(device),
            feature_mask=self.feature_mask.to(device),
            target=None if self.target is None else self.target.to(device),
            indices=self.indices,
            pad_token_id=self.pad_token_id,
            mask_token_id=self.mask_token_id,
        )

    def removal(self, kind: str = "delete") -> Removal:
        """The removal operator ``kind`` with this batch's pad and [MASK] ids."""
        return Removal(kind, self.pad_token_id, self.mask_token_id)


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    max_length: int = 128,
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Tokenises sentences, right-padded, with [CLS]/[SEP] marked ineligible.

    The tokenisation is :func:`captum_sigma.text.tokenization.tokenize_texts`, the
    one :class:`~captum_sigma.text.TextExplainer` uses.

    Args:
        tokenizer (object): A Hugging Face tokenizer (callable, with
                ``all_special_ids``).
        texts (sequence of str): The sentences.
        max_length (int, optional): Truncation length in tokens. Default: 128.

    Returns:
        (input_ids, attention_mask, eligible): Tensors of shape (B, T).
    """
    check_texts(texts)
    check_positive_int("max_length", max_length)
    encoded, eligible = tokenize_with_eligible(tokenizer, texts, max_length)
    return encoded.input_ids, encoded.attention_mask, eligible


def tokenize_with_eligible(
    tokenizer: Any, texts: Sequence[str], max_length: int
) -> tuple[TokenizedTexts, Tensor]:
    """The shared tokenisation of ``texts`` and the mask of their eligible tokens."""
    encoded = tokenize_texts(tokenizer, texts, max_length)
    eligible = eligible_token_mask(
        encoded.input_ids,
        encoded.attention_mask,
        special_token_ids=special_token_ids_of(tokenizer),
    )
    return encoded, eligible


def check_texts(texts: Sequence[str]) -> None:
    """Raises unless ``texts`` is a non-empty sequence of strings (not a str)."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a sequence of strings")
    if len(texts) == 0:
        raise ValueError("texts must hold at least one sentence")
