"""Grouping sub-word tokens into words (WordPiece ``##``, byte-level BPE ``Ġ``).

With a fast tokenizer the grouping comes from its ``word_ids`` (and the words' text
from the character offsets); without them, from the tokens' spelling.
"""

import math
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

__all__ = [
    "Word",
    "merge_pieces",
    "merge_standard_errors",
    "merge_values",
    "merged_fields",
    "merged_word_ids",
    "word_groups",
]

#: Special tokens recognised by spelling when no ``word_ids`` are known.
_SPECIAL_TOKENS = frozenset(
    [
        "[CLS]",
        "[SEP]",
        "[PAD]",
        "[UNK]",
        "[MASK]",
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
        "<mask>",
        "<cls>",
        "<sep>",
    ]
)
_CONTINUATION = "##"
_WORD_STARTS = ("Ġ", "▁")


class Word(NamedTuple):
    """One word: the indices of its tokens, its text, and whether it is special."""

    indices: List[int]
    text: str
    special: bool
    span: Optional[Tuple[int, int]]


def word_groups(
    tokens: Sequence[str],
    word_ids: Optional[Sequence[Optional[int]]] = None,
    offsets: Optional[Sequence[Sequence[int]]] = None,
    text: Optional[str] = None,
) -> List[Word]:
    """Groups consecutive sub-word tokens into words.

    Args:
        tokens: The tokens (e.g. ``["[CLS]", "un", "##bel", "##ievable", "[SEP]"]``).
        word_ids: Word index of each token from a fast tokenizer (None for special
            tokens); when given it decides the grouping.
        offsets: ``(start, end)`` character span of each token in ``text``.
        text: The text the offsets point into; with ``offsets`` a word's text is
            the original characters, otherwise its pieces joined without ``##`` /
            ``Ġ`` / ``▁``.

    Returns:
        The words in order; every token belongs to exactly one word.
    """
    if word_ids is not None and len(word_ids) != len(tokens):
        raise ValueError(
            f"word_ids: got {len(word_ids)} for {len(tokens)} tokens; one per token"
        )
    if offsets is not None and len(offsets) != len(tokens):
        raise ValueError(
            f"offsets: got {len(offsets)} for {len(tokens)} tokens; give one per token"
        )
    if word_ids is not None:
        groups = _groups_from_word_ids(word_ids)
    else:
        groups = _groups_from_spelling(tokens)
    return [
        _make_word(tokens, indices, special, offsets, text)
        for indices, special in groups
    ]


def merge_values(
    words: Sequence[Word], scores: Sequence[float], sigma: Sequence[float]
) -> Tuple[List[float], List[float]]:
    """Word scores (sums: information adds up) and σ (geometric means).

    Args:
        words: From :func:`word_groups`.
        scores: Per-token scores.
        sigma: Per-token σ (positive).

    Returns:
        ``(word_scores, word_sigma)``.
    """
    word_scores, word_sigma = [], []
    for word in words:
        if len(word.indices) == 1:  # exact, so that merging twice changes nothing
            word_scores.append(float(scores[word.indices[0]]))
            word_sigma.append(float(sigma[word.indices[0]]))
            continue
        word_scores.append(float(sum(scores[i] for i in word.indices)))
        logs = [math.log(sigma[i]) for i in word.indices]
        word_sigma.append(float(math.exp(sum(logs) / len(logs))))
    return word_scores, word_sigma


def merge_standard_errors(
    words: Sequence[Word], standard_error: Sequence[float]
) -> List[float]:
    """Standard errors of word scores: ``sqrt(Σ SE²)`` over a word's pieces.

    A word's score is the sum of its pieces' scores, so its variance is the sum of
    theirs **if the pieces' chain errors are independent**. They come from the same
    chains and may be correlated (e.g. positively, when a chain that stopped early
    left every σ near its start): then this understates the error.

    Args:
        words: From :func:`word_groups`.
        standard_error: Per-token standard errors in nats per token.

    Returns:
        One standard error per word.
    """
    merged = []
    for word in words:
        if len(word.indices) == 1:
            merged.append(float(standard_error[word.indices[0]]))
        else:
            merged.append(
                float(math.sqrt(sum(standard_error[i] ** 2 for i in word.indices)))
            )
    return merged


def merge_pieces(
    words: Sequence[Word], pieces: Optional[Sequence[int]] = None
) -> List[int]:
    """Number of original word pieces behind each word.

    Args:
        words: From :func:`word_groups`.
        pieces: Pieces behind each token (for an already merged sequence); default
            one per token.

    Returns:
        One count per word.
    """
    return [
        sum(1 if pieces is None else int(pieces[i]) for i in word.indices)
        for word in words
    ]


def merged_word_ids(words: Sequence[Word]) -> List[Optional[int]]:
    """Word ids after merging: 0, 1, 2, ... for words, None for special tokens."""
    ids: List[Optional[int]] = []
    count = 0
    for word in words:
        if word.special:
            ids.append(None)
        else:
            ids.append(count)
            count += 1
    return ids


def merged_fields(
    words: Sequence[Word],
    offsets: Optional[Sequence[Sequence[int]]] = None,
    pieces: Optional[Sequence[int]] = None,
) -> Dict[str, Any]:
    """The fields of an explanation merged into ``words``, besides its values.

    Args:
        words: From :func:`word_groups`.
        offsets: The tokens' character spans, if known.
        pieces: Pieces behind each token (see :func:`merge_pieces`).

    Returns:
        ``tokens`` (the words' text), ``word_ids`` (:func:`merged_word_ids`),
        ``offsets`` (the words' spans, ``(0, 0)`` for a special token; None
        without ``offsets``), ``merged=True`` and ``pieces``
        (:func:`merge_pieces`).
    """
    return {
        "tokens": [word.text for word in words],
        "word_ids": merged_word_ids(words),
        "offsets": (
            None if offsets is None else [word.span or (0, 0) for word in words]
        ),
        "merged": True,
        "pieces": merge_pieces(words, pieces),
    }


def _groups_from_word_ids(
    word_ids: Sequence[Optional[int]],
) -> List[Tuple[List[int], bool]]:
    groups: List[Tuple[List[int], bool]] = []
    previous: Optional[int] = None
    for index, word_id in enumerate(word_ids):
        if word_id is None:
            groups.append(([index], True))
        elif groups and not groups[-1][1] and word_id == previous:
            groups[-1][0].append(index)
        else:
            groups.append(([index], False))
        previous = word_id
    return groups


def _groups_from_spelling(tokens: Sequence[str]) -> List[Tuple[List[int], bool]]:
    marked = any(t.startswith(_WORD_STARTS) for t in tokens)
    groups: List[Tuple[List[int], bool]] = []
    for index, token in enumerate(tokens):
        special = token in _SPECIAL_TOKENS
        follows_word = bool(groups) and not groups[-1][1] and not special
        if follows_word and _continues(token, marked):
            groups[-1][0].append(index)
        else:
            groups.append(([index], special))
    return groups


def _continues(token: str, marked: bool) -> bool:
    if token.startswith(_CONTINUATION) and len(token) > len(_CONTINUATION):
        return True
    return marked and not token.startswith(_WORD_STARTS) and token[:1].isalnum()


def _make_word(
    tokens: Sequence[str],
    indices: List[int],
    special: bool,
    offsets: Optional[Sequence[Sequence[int]]],
    text: Optional[str],
) -> Word:
    span = None
    if offsets is not None and not special:
        span = (int(offsets[indices[0]][0]), int(offsets[indices[-1]][1]))
    if special:
        word = tokens[indices[0]]
    elif span is not None and text is not None and span[1] > span[0]:
        word = text[span[0] : span[1]]
    else:
        word = "".join(_clean(tokens[i]) for i in indices)
    return Word(indices, word, special, span)


def _clean(token: str) -> str:
    if token.startswith(_CONTINUATION) and len(token) > len(_CONTINUATION):
        return token[len(_CONTINUATION) :]
    if token.startswith(_WORD_STARTS):
        return token[1:]
    return token
