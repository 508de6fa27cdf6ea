"""Removal operators and the eligible mask."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from eval_toy_models import CLS, MASK, PAD, SEP

from captum_sigma.evaluation import (
    Removal,
    delete_tokens,
    eligible_token_mask,
    mask_tokens,
    remove_tokens,
    special_token_ids_of,
)

IDS = torch.tensor([[CLS, 4, 5, 6, SEP, PAD], [CLS, 7, 8, SEP, PAD, PAD]])
ATTENTION = torch.tensor([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 0, 0]])
REMOVE = torch.tensor(
    [
        [False, False, True, False, False, False],
        [False, True, True, False] + [False] * 2,
    ]
)


def test_delete_shifts_left_and_repads() -> None:
    ids, mask = delete_tokens(IDS, ATTENTION, REMOVE, pad_token_id=PAD)
    assert ids.tolist() == [[CLS, 4, 6, SEP, PAD, PAD], [CLS, SEP, PAD, PAD, PAD, PAD]]
    assert mask.tolist() == [[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]]
    assert ids.dtype == IDS.dtype and mask.dtype == ATTENTION.dtype


def test_delete_uses_the_given_pad_id() -> None:
    ids, _ = delete_tokens(IDS, ATTENTION, REMOVE, pad_token_id=9)
    assert ids.tolist()[1] == [CLS, SEP, 9, 9, 9, 9]


def test_mask_replaces_in_place_and_keeps_length() -> None:
    ids, mask = mask_tokens(IDS, ATTENTION, REMOVE, mask_token_id=MASK)
    assert ids.tolist() == [
        [CLS, 4, MASK, 6, SEP, PAD],
        [CLS, MASK, MASK, SEP, PAD, PAD],
    ]
    assert torch.equal(mask, ATTENTION)
    assert IDS[0, 2] == 5  # inputs untouched


def test_remove_tokens_dispatches_on_operator() -> None:
    deleted = remove_tokens(IDS, ATTENTION, REMOVE, "delete", pad_token_id=PAD)
    masked = remove_tokens(IDS, ATTENTION, REMOVE, "mask", mask_token_id=MASK)
    assert torch.equal(deleted[0], delete_tokens(IDS, ATTENTION, REMOVE)[0])
    assert torch.equal(masked[0], mask_tokens(IDS, ATTENTION, REMOVE, MASK)[0])


def test_removal_applies_its_operator_with_its_ids() -> None:
    deleted = Removal("delete", pad_token_id=9).apply(IDS, ATTENTION, REMOVE)
    masked = Removal("mask", mask_token_id=MASK).apply(IDS, ATTENTION, REMOVE)
    for got, want in zip(deleted, delete_tokens(IDS, ATTENTION, REMOVE, 9)):
        assert torch.equal(got, want)
    for got, want in zip(masked, mask_tokens(IDS, ATTENTION, REMOVE, MASK)):
        assert torch.equal(got, want)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "drop"}, "operator"), ({"kind": "mask"}, "mask_token_id")],
)
def test_removal_rejects_a_bad_kind_when_built(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Removal(**kwargs)


def test_removing_nothing_is_the_identity() -> None:
    nothing = torch.zeros_like(REMOVE)
    for operator in ("delete", "mask"):
        ids, mask = remove_tokens(IDS, ATTENTION, nothing, operator, mask_token_id=MASK)
        assert torch.equal(ids, IDS) and torch.equal(mask, ATTENTION)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"operator": "drop"}, "operator"),
        ({"operator": "mask"}, "mask_token_id"),
    ],
)
def test_remove_tokens_rejects_bad_operator(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        remove_tokens(IDS, ATTENTION, REMOVE, **kwargs)


def test_padding_cannot_be_removed() -> None:
    remove = torch.zeros_like(REMOVE)
    remove[0, 5] = True
    for operator in ("delete", "mask"):
        with pytest.raises(ValueError, match="remove marks padding"):
            remove_tokens(IDS, ATTENTION, remove, operator, mask_token_id=MASK)


def test_shape_mismatch_names_the_argument() -> None:
    with pytest.raises(ValueError, match="remove"):
        delete_tokens(IDS, ATTENTION, REMOVE[:, :4])
    with pytest.raises(ValueError, match="attention_mask"):
        mask_tokens(IDS, ATTENTION[:1], REMOVE, MASK)


def test_delete_requires_right_padding() -> None:
    left_padded = torch.tensor([[0, 1, 1, 1]])
    with pytest.raises(ValueError, match="right-padded"):
        delete_tokens(torch.tensor([[PAD, CLS, 4, SEP]]), left_padded, left_padded == 2)


def test_eligible_mask_excludes_special_tokens_and_padding() -> None:
    eligible = eligible_token_mask(IDS, ATTENTION, special_token_ids=[PAD, CLS, SEP])
    assert eligible.dtype == torch.bool
    assert eligible.tolist() == [
        [False, True, True, True, False, False],
        [False, True, True, False, False, False],
    ]
    special = torch.tensor([[1, 0, 0, 0, 1, 1], [1, 0, 0, 1, 1, 1]])
    from_mask = eligible_token_mask(IDS, ATTENTION, special_tokens_mask=special)
    assert torch.equal(from_mask, eligible)


def test_eligible_mask_needs_an_explicit_special_token_policy() -> None:
    with pytest.raises(ValueError, match="special_token_ids"):
        eligible_token_mask(IDS, ATTENTION)
    every_attended = eligible_token_mask(IDS, ATTENTION, special_token_ids=())
    assert torch.equal(every_attended, ATTENTION.bool())


def test_special_token_ids_of_keeps_unk_eligible() -> None:
    tokenizer = SimpleNamespace(all_special_ids=[3, 0, 1, 2, 100], unk_token_id=100)
    assert special_token_ids_of(tokenizer) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="all_special_ids"):
        special_token_ids_of(object())


def test_eligible_mask_from_an_offline_bert_tokenizer(tmp_path) -> None:
    transformers = pytest.importorskip("transformers")
    words = ["good", "bad", "movie", "plot"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(tmp_path / "vocab.txt"))
    enc = tokenizer(
        ["good movie zzz", "bad"],
        padding=True,
        return_tensors="pt",
        return_special_tokens_mask=True,
    )
    ids, attention = enc["input_ids"], enc["attention_mask"]
    by_ids = eligible_token_mask(ids, attention, special_token_ids_of(tokenizer))
    by_mask = eligible_token_mask(
        ids, attention, special_tokens_mask=enc["special_tokens_mask"]
    )
    assert torch.equal(by_ids, by_mask)
    # [UNK] (for "zzz") is a word: eligible; [CLS]/[SEP]/[PAD] are not
    assert by_ids.tolist() == [
        [False, True, True, True, False],
        [False, True, False, False, False],
    ]
