"""Seeded Gaussian noise whose values do not depend on batch composition or padding.

The sigma objective is optimised for many examples at once, yet each example's result
must depend only on that example, the options and the seed (Captum's targets test asks
that row ``i`` of a batched call equals the call on example ``i`` alone). Two design
choices give that property:

* Every example of a batch receives the *same* standard-normal draw (common random
  numbers): the draw for element ``(position p, inner index j)`` of a step is a
  function of ``(seed, stream, step, sample, p, j)`` only, never of the batch index.
  The examples' optimisation problems stay independent of each other; they merely
  share the random numbers, as if each were run alone with the same seed.
* The draw is made in blocks of a fixed number of positions, each block from a
  ``torch.Generator`` re-seeded with a hash of its key. Padding a sequence to a longer
  length adds blocks or extends the last one without changing any earlier value.

Plain ``torch.randn(T, D, generator=g)`` would not do: the value at ``(t, d)`` of a
draw depends on the total size of that draw (CPU kernels vectorise over the whole
buffer, CUDA's Philox offsets depend on the launch grid), so a padded batch would see
different noise than the same example alone.
"""

import hashlib
from typing import Hashable, Tuple

import torch

__all__ = ["derive_seed", "positional_normal"]

#: Number of elements drawn per generator seeding; positions per block are derived
#: from it and from the inner size, never from the number of positions.
_BLOCK_ELEMENTS = 1 << 16


def derive_seed(*key: Hashable) -> int:
    """Returns a 63-bit seed that is a deterministic hash of ``key``.

    Args:
        *key: Any values with a stable ``repr`` (ints, strings, tuples of them).

    Returns:
        A non-negative integer usable by ``torch.Generator.manual_seed``.
    """
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _positions_per_block(inner: int) -> int:
    return max(1, _BLOCK_ELEMENTS // max(1, inner))


def positional_normal(
    key: Tuple[Hashable, ...],
    n_positions: int,
    inner_shape: Tuple[int, ...],
    device: torch.device,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draws standard normals of shape ``(n_positions, *inner_shape)``.

    The value at ``(p, *j)`` depends on ``key``, ``p``, ``j``, ``inner_shape`` and the
    device type only: drawing more positions (a longer padding) never changes the
    values of the first ones.

    Args:
        key: Identifies the stream (e.g. ``(seed, "noise", input_index, step)``).
        n_positions: Number of positions (the leading axis) to draw.
        inner_shape: Shape drawn for every position.
        device: Device on which the noise is generated.
        dtype: Floating dtype of the result.

    Returns:
        A tensor of shape ``(n_positions, *inner_shape)``.
    """
    inner = 1
    for size in inner_shape:
        inner *= size
    per_block = _positions_per_block(inner)
    generator = torch.Generator(device=device)
    blocks = []
    for block in range((n_positions + per_block - 1) // per_block):
        generator.manual_seed(derive_seed(*key, block))
        blocks.append(
            torch.randn(
                per_block, inner, generator=generator, device=device, dtype=dtype
            )
        )
    if not blocks:
        return torch.empty(0, *inner_shape, device=device, dtype=dtype)
    return torch.cat(blocks)[:n_positions].reshape(n_positions, *inner_shape)
