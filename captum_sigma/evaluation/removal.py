r"""Token removal operators for removal-based faithfulness metrics.

Two operators remove a set of tokens from a batch of token ids:

- ``"delete"`` (ERASER, DeYoung et al. 2020; ferret's default): the tokens are
  taken out of the sequence, the remaining tokens shift left, the row is
  re-padded on the right with the pad id and the attention mask is updated.
- ``"mask"`` (Atanasova et al. 2020): the tokens are replaced in place by the
  [MASK] id; length and attention mask are unchanged.

:class:`Removal` names one operator and its token ids; every removal metric
takes one. Special tokens ([CLS], [SEP]) and padding are never ranked or
removed: the ``eligible`` mask built by :func:`eligible_token_mask` says which
tokens may be.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from captum_sigma.evaluation._checks import (
    check_operator,
    check_same_shape,
    check_token_batch,
)


def special_token_ids_of(tokenizer: object) -> list[int]:
    r"""Ids of a tokenizer's structural special tokens ([CLS], [SEP], [PAD], ...).

    Reads ``tokenizer.all_special_ids`` (Hugging Face tokenizers) and leaves out
    ``tokenizer.unk_token_id``: [UNK] stands for a real word of the text, so it
    may be ranked and removed like any other token.

    Args:
        tokenizer (object): Any object with an ``all_special_ids`` attribute and
                optionally ``unk_token_id``.

    Returns:
        ids (list[int]): Sorted special token ids, without [UNK].
    """
    if not hasattr(tokenizer, "all_special_ids"):
        raise ValueError("tokenizer must have an all_special_ids attribute")
    unk = getattr(tokenizer, "unk_token_id", None)
    return sorted({int(i) for i in tokenizer.all_special_ids if i != unk})


def eligible_token_mask(
    input_ids: Tensor,
    attention_mask: Tensor,
    special_token_ids: Iterable[int] | None = None,
    special_tokens_mask: Tensor | None = None,
) -> Tensor:
    r"""Marks the tokens that may be ranked and removed.

    A token is eligible when it is attended (``attention_mask == 1``), its id is
    not in ``special_token_ids`` and ``special_tokens_mask`` (as returned by a
    Hugging Face tokenizer with ``return_special_tokens_mask=True``) is 0 there.

    Args:
        input_ids (Tensor): Token ids, shape (B, T).
        attention_mask (Tensor): 1 for real tokens, 0 for padding, shape (B, T).
        special_token_ids (Iterable[int], optional): Ids that are never eligible,
                e.g. ``special_token_ids_of(tokenizer)``. Pass ``()`` for a model
                without special tokens.
        special_tokens_mask (Tensor, optional): 1 where a token is special,
                shape (B, T).
        At least one of ``special_token_ids`` and ``special_tokens_mask`` must
        be given, so that [CLS]/[SEP] are not silently treated as words.

    Returns:
        eligible (Tensor): Bool tensor of shape (B, T).

    Examples::

        >>> enc = tokenizer(texts, padding=True, return_tensors="pt")
        >>> eligible = eligible_token_mask(
        >>>     enc["input_ids"], enc["attention_mask"],
        >>>     special_token_ids=special_token_ids_of(tokenizer),
        >>> )
    """
    check_token_batch(input_ids, attention_mask)
    if special_token_ids is None and special_tokens_mask is None:
        raise ValueError(
            "pass special_token_ids (e.g. special_token_ids_of(tokenizer), or () "
            "for a model without special tokens) or special_tokens_mask"
        )
    eligible = attention_mask.bool().clone()
    if special_token_ids is not None:
        ids = torch.tensor(
            sorted({int(i) for i in special_token_ids}),
            dtype=input_ids.dtype,
            device=input_ids.device,
        )
        eligible &= ~torch.isin(input_ids, ids)
    if special_tokens_mask is not None:
        check_same_shape("special_tokens_mask", special_tokens_mask, input_ids.shape)
        eligible &= ~special_tokens_mask.to(input_ids.device).bool()
    return eligible


def delete_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    remove: Tensor,
    pad_token_id: int = 0,
) -> tuple[Tensor, Tensor]:
    r"""Deletes tokens: the rest shift left and the row is re-padded on the right.

    Args:
        input_ids (Tensor): Token ids, shape (B, T), right-padded.
        attention_mask (Tensor): 1 for real tokens, 0 for padding, shape (B, T).
        remove (Tensor): Bool, True for the tokens to delete, shape (B, T). Only
                attended positions may be removed.
        pad_token_id (int, optional): Id written into the freed positions.
                Default: 0 (BERT's [PAD]).

    Returns:
        (input_ids, attention_mask): New tensors of the same shape and dtypes.
    """
    remove = _check_removal(input_ids, attention_mask, remove)
    if (attention_mask[:, 1:] > attention_mask[:, :-1]).any():
        raise ValueError("attention_mask must be right-padded for operator='delete'")
    keep = attention_mask.bool() & ~remove
    # A stable sort of "not kept" moves kept tokens to the front in their order.
    order = torch.sort((~keep).to(torch.uint8), dim=1, stable=True).indices
    kept_after = keep.gather(1, order)
    ids_after = input_ids.gather(1, order).masked_fill(~kept_after, pad_token_id)
    return ids_after, kept_after.to(attention_mask.dtype)


def mask_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    remove: Tensor,
    mask_token_id: int,
) -> tuple[Tensor, Tensor]:
    r"""Replaces tokens by [MASK] in place; length and attention mask are kept.

    Args:
        input_ids (Tensor): Token ids, shape (B, T).
        attention_mask (Tensor): 1 for real tokens, 0 for padding, shape (B, T).
        remove (Tensor): Bool, True for the tokens to replace, shape (B, T). Only
                attended positions may be replaced.
        mask_token_id (int): Id of [MASK].

    Returns:
        (input_ids, attention_mask): New ids and a copy of ``attention_mask``.
    """
    remove = _check_removal(input_ids, attention_mask, remove)
    return input_ids.masked_fill(remove, mask_token_id), attention_mask.clone()


@dataclass(frozen=True)
class Removal:
    r"""A removal operator: how the removal metrics take tokens out of a batch.

    Args:
        kind (str, optional): ``"delete"`` (see :func:`delete_tokens`) or
                ``"mask"`` (see :func:`mask_tokens`). Default: ``"delete"``.
        pad_token_id (int, optional): Pad id written by ``"delete"``.
                Default: 0 (BERT's [PAD]).
        mask_token_id (int, optional): [MASK] id, required for ``"mask"``.

    Raises:
        ValueError: for another ``kind``, or ``"mask"`` without ``mask_token_id``.

    Examples::

        >>> removal = Removal("mask", mask_token_id=tokenizer.mask_token_id)
        >>> ids, mask = removal.apply(input_ids, attention_mask, remove)
    """

    kind: str = "delete"
    pad_token_id: int = 0
    mask_token_id: int | None = None

    def __post_init__(self) -> None:
        check_operator(self.kind, self.mask_token_id)

    def apply(
        self, input_ids: Tensor, attention_mask: Tensor, remove: Tensor
    ) -> tuple[Tensor, Tensor]:
        r"""Removes the tokens marked in ``remove``.

        Args:
            input_ids (Tensor): Token ids, shape (B, T), right-padded.
            attention_mask (Tensor): 1 for real tokens, 0 for padding, (B, T).
            remove (Tensor): Bool, True for the tokens to remove, shape (B, T).

        Returns:
            (input_ids, attention_mask): The perturbed batch.
        """
        if self.kind == "delete":
            return delete_tokens(input_ids, attention_mask, remove, self.pad_token_id)
        assert self.mask_token_id is not None  # checked in __post_init__
        return mask_tokens(input_ids, attention_mask, remove, self.mask_token_id)


def remove_tokens(
    input_ids: Tensor,
    attention_mask: Tensor,
    remove: Tensor,
    operator: str = "delete",
    *,
    pad_token_id: int = 0,
    mask_token_id: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Applies the removal operator ``"delete"`` or ``"mask"``.

    Shorthand for ``Removal(operator, pad_token_id, mask_token_id).apply(...)``
    (see :class:`Removal`).

    Returns:
        (input_ids, attention_mask): The perturbed batch.
    """
    removal = Removal(operator, pad_token_id, mask_token_id)
    return removal.apply(input_ids, attention_mask, remove)


def _check_removal(input_ids: Tensor, attention_mask: Tensor, remove: Tensor) -> Tensor:
    check_token_batch(input_ids, attention_mask)
    check_same_shape("remove", remove, input_ids.shape)
    remove = remove.to(input_ids.device).bool()
    if (remove & ~attention_mask.bool()).any():
        raise ValueError("remove marks padding positions (attention_mask == 0)")
    return remove
