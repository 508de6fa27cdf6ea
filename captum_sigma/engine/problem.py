"""The sigma problem: inputs, feature groups, padding masks, normalisation, the loss.

Notation follows Guan et al., "Towards a Deep and Unified Understanding of Deep Neural
Models in NLP", ICML 2019 (http://proceedings.mlr.press/v97/guan19a.html): Φ maps the
inputs ``x`` to a hidden state ``s = Φ(x)``; word (feature group) ``g`` of example ``b``
is perturbed by isotropic Gaussian noise of scale ``σ_bg = scale · sigmoid(ρ_bg)``; the
loss of example ``b`` is

    mean over output elements of (Φ(x̃) − s)² / r²  −  rate · mean_g log(σ_bg / scale)

where ``r`` is the per-element standard deviation of ``s`` over a data sample, or, when
no ``r`` is given, the reference implementation's self-normalisation by the mean of
``s²`` over the example's own output elements.

This module is plain torch and knows nothing of Captum.
"""

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import torch
from torch import Tensor

__all__ = ["HiddenFunction", "SigmaProblem", "REGULARIZATION_EPS"]

#: Entries of ``r`` (and the self-normalising mean of ``s²``) are clamped below by this
#: value before division, so a constant output element never produces NaN or Inf: its
#: squared change is divided by ``REGULARIZATION_EPS²`` instead of by zero.
REGULARIZATION_EPS = 1e-6

#: ``hidden_fn(inputs, n_repeats)`` receives inputs whose batch is ``n_repeats`` copies
#: of the problem's batch stacked sample-major (rows ``k·B … k·B + B − 1`` are copy
#: ``k``) and returns Φ of every row, batch first.
HiddenFunction = Callable[[Tuple[Tensor, ...], int], Tensor]


@dataclass
class SigmaProblem:
    """One batch of sigma problems.

    Attributes:
        inputs: Clean inputs ``x``, each of shape ``(B, d1, ...)``, floating point.
        groups: Feature-group id of every input element, same shapes as ``inputs``,
            ``int64``; ids run over ``0 … n_groups − 1`` for the whole tuple, and ``-1``
            marks elements that are never perturbed nor scored (padding).
        n_groups: Number of group ids (the largest id plus one).
        hidden_fn: Computes Φ (see :data:`HiddenFunction`).
        regularization: ``r``, broadcastable to one example's output shape, or
            ``None`` for self-normalisation.
        output_mask: ``(B, T)`` bool mask of the real positions of a per-position
            output ``(B, T, ...)``; masked positions are left out of the loss. ``None``
            when every output element counts.
        restrict: ``restrict(rows)`` returns the :data:`HiddenFunction` of the
            examples ``rows`` (indices into this batch) alone, so that examples
            that are done can leave the forward pass (:meth:`select`). None: the
            batch cannot shrink.
    """

    inputs: Tuple[Tensor, ...]
    groups: Tuple[Tensor, ...]
    n_groups: int
    hidden_fn: HiddenFunction
    regularization: Optional[Tensor] = None
    output_mask: Optional[Tensor] = None
    restrict: Optional[Callable[[Tensor], HiddenFunction]] = None

    def select(self, rows: Tensor) -> "SigmaProblem":
        """The problem of the examples ``rows`` alone (needs :attr:`restrict`).

        Args:
            rows: ``int64`` indices into this batch, in the order wanted.
        """
        if self.restrict is None:
            raise ValueError("this problem cannot be restricted to some of its rows")
        restrict = self.restrict

        def sub_restrict(sub_rows: Tensor) -> HiddenFunction:
            return restrict(rows[sub_rows])

        return SigmaProblem(
            inputs=tuple(inp[rows] for inp in self.inputs),
            groups=tuple(group[rows] for group in self.groups),
            n_groups=self.n_groups,
            hidden_fn=restrict(rows),
            regularization=self.regularization,
            output_mask=None if self.output_mask is None else self.output_mask[rows],
            restrict=sub_restrict,
        )

    @property
    def batch_size(self) -> int:
        return self.inputs[0].shape[0]

    @property
    def device(self) -> torch.device:
        return self.inputs[0].device

    def group_sizes(self) -> Tensor:
        """Number of input elements in every group, shape ``(B, n_groups)``."""
        sizes = torch.zeros(
            self.batch_size, self.n_groups + 1, device=self.device, dtype=torch.float32
        )
        for group in self.groups:
            flat = group.reshape(self.batch_size, -1)
            # shift by one so that -1 (never perturbed) lands in a discarded column
            sizes.scatter_add_(1, flat + 1, torch.ones_like(flat, dtype=sizes.dtype))
        return sizes[:, 1:]

    def perturb(self, sigma: Tensor, noise: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        """Adds ``σ``-scaled noise to every input.

        Args:
            sigma: ``(B, n_groups)`` noise scales.
            noise: Standard normals per input, each ``(S, 1 or B, d1, ...)``.

        Returns:
            The perturbed inputs, each of shape ``(S·B, d1, ...)``, sample-major.
        """
        perturbed = []
        for inp, element_sigma, eps in zip(
            self.inputs, self.element_sigma(sigma), noise
        ):
            x_tilde = inp.unsqueeze(0) + element_sigma.unsqueeze(0) * eps
            perturbed.append(x_tilde.to(inp.dtype).flatten(0, 1))
        return tuple(perturbed)

    def element_sigma(self, sigma: Tensor) -> Tuple[Tensor, ...]:
        """Every input element's ``σ`` (its group's; 0 where the id is -1).

        Args:
            sigma: ``(B, n_groups)`` noise scales.

        Returns:
            One tensor per input, of the input's shape.
        """
        padded_sigma = torch.cat([sigma.new_zeros(sigma.shape[0], 1), sigma], dim=1)
        return tuple(
            torch.gather(
                padded_sigma, 1, group.reshape(group.shape[0], -1) + 1
            ).reshape(group.shape)
            for group in self.groups
        )

    def element_weights(self, hidden: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-element loss weights of one output batch.

        Args:
            hidden: The clean output ``s``, shape ``(B, ...)``.

        Returns:
            ``(weights, counts)``: ``weights`` broadcastable to ``hidden`` holding
            ``1 / r²`` (or ``1 / mean(s²)``) on counted elements and 0 on masked ones;
            ``counts`` of shape ``(B,)``, the number of counted elements per example.
        """
        batch = hidden.shape[0]
        mask = self._output_element_mask(hidden)
        counts = mask.reshape(batch, -1).sum(1).to(torch.float32)
        if self.regularization is not None:
            r = self.regularization.to(device=hidden.device, dtype=torch.float32)
            inverse_r2 = r.clamp_min(REGULARIZATION_EPS).pow(-2)
            weights = mask * inverse_r2.unsqueeze(0)
        else:
            squared = (hidden.to(torch.float32) ** 2 * mask).reshape(batch, -1).sum(1)
            mean_square = squared / counts.clamp_min(1)
            scale = 1.0 / mean_square.clamp_min(REGULARIZATION_EPS**2)
            weights = mask * scale.reshape(batch, *([1] * (hidden.dim() - 1)))
        return weights, counts

    def _output_element_mask(self, hidden: Tensor) -> Tensor:
        ones = torch.ones_like(hidden, dtype=torch.float32)
        if self.output_mask is None or not self.has_sequence_output(hidden):
            return ones
        extra = [1] * (hidden.dim() - 2)
        mask = self.output_mask.to(device=hidden.device, dtype=torch.float32)
        return ones * mask.reshape(*mask.shape, *extra)

    def has_sequence_output(self, hidden: Tensor) -> bool:
        """Whether ``hidden`` is a per-position output ``(B, T, ...)`` to be masked."""
        return (
            self.output_mask is not None
            and hidden.dim() >= 3
            and tuple(hidden.shape[:2]) == tuple(self.output_mask.shape)
        )
