"""Next-token problems of a causal language model as rows of one padded batch.

Captum's ``LLMGradientAttribution`` calls its method once per output token ``k``,
on the prompt followed by the target's first ``k`` tokens. Here every such problem
is one row of a single batch: row ``k`` holds ``prompt + target[:k]``, is padded on
the *right* to the longest row, and explains the model's output at its last real
position for the token ``target[k]``. Right padding keeps the prompt at positions
``0 … n − 1`` in every row, so each prompt token receives the same noise (drawn per
position, :mod:`captum_sigma.engine.noise`) as when its row is solved alone: the
solver's rows are independent, and row ``k`` equals the single-row solve up to the
float rounding that padding causes in the forward pass.

Sigma attribution: Guan et al., ICML 2019, http://proceedings.mlr.press/v97/guan19a.html
"""

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = ["NextTokenRows"]


@dataclass(frozen=True)
class NextTokenRows:
    """A batch of next-token problems, right-padded.

    Attributes:
        input_ids: ``(B, T)`` token ids (padding holds any valid id).
        attention_mask: ``(B, T)`` 1 on real tokens, 0 on padding.
        perturbed: ``(B, T)`` bool, the positions that carry noise (the prompt's
            interpretable tokens); every other position is never perturbed.
        positions: ``(B, L)`` the positions whose next-token output is explained.
        targets: ``(B, L)`` the token explained at each of ``positions``.
        n_prompt: ``(B,)`` prompt length of every row (its columns of scores).
    """

    input_ids: Tensor
    attention_mask: Tensor
    perturbed: Tensor
    positions: Tensor
    targets: Tensor
    n_prompt: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.input_ids.shape[0])

    @classmethod
    def per_token(
        cls,
        prompt_ids: Tensor,
        target_ids: Tensor,
        interpretable: Optional[Tensor] = None,
        pad_id: int = 0,
    ) -> "NextTokenRows":
        """One row per target token: row ``k`` is ``prompt + target[:k]``.

        Args:
            prompt_ids: ``(n,)`` prompt token ids.
            target_ids: ``(m,)`` target token ids, ``m ≥ 1``.
            interpretable: ``(n,)`` bool, the prompt tokens to perturb and score
                (e.g. ``TextTokenInput.itp_mask``); default all.
            pad_id: Token id written into padding (masked out).

        Returns:
            ``m`` rows of width ``n + m − 1``, each explaining one position.
        """
        prompt_ids, target_ids, interpretable = _check(
            prompt_ids, target_ids, interpretable
        )
        n, m = prompt_ids.numel(), target_ids.numel()
        return cls.stack(
            [
                cls._row(
                    prompt_ids, target_ids[:k], interpretable, [n + k - 1], pad_id
                )._with_targets(target_ids[k : k + 1])
                for k in range(m)
            ],
            pad_id,
        )

    @classmethod
    def joint(
        cls,
        prompt_ids: Tensor,
        target_ids: Tensor,
        interpretable: Optional[Tensor] = None,
        pad_id: int = 0,
    ) -> "NextTokenRows":
        """One row explaining every target token at once (teacher forcing).

        The row holds ``prompt + target[:-1]``; its explained output is the vector
        of the ``m`` target tokens' values at positions ``n − 1 … n + m − 2``.
        """
        prompt_ids, target_ids, interpretable = _check(
            prompt_ids, target_ids, interpretable
        )
        n, m = prompt_ids.numel(), target_ids.numel()
        row = cls._row(
            prompt_ids,
            target_ids[:-1],
            interpretable,
            list(range(n - 1, n + m - 1)),
            pad_id,
        )
        return row._with_targets(target_ids)

    @classmethod
    def stack(cls, rows: Sequence["NextTokenRows"], pad_id: int = 0) -> "NextTokenRows":
        """Concatenates rows (same number of explained positions), right-padded."""
        if not rows:
            raise ValueError("no rows to stack")
        widths = {row.positions.shape[1] for row in rows}
        if len(widths) != 1:
            raise ValueError(
                f"rows explain different numbers of positions {sorted(widths)}"
            )
        width = max(row.input_ids.shape[1] for row in rows)

        def pad(tensor: Tensor, value: int) -> Tensor:
            extra = width - tensor.shape[1]
            return torch.nn.functional.pad(tensor, (0, extra), value=value)

        return cls(
            input_ids=torch.cat([pad(r.input_ids, pad_id) for r in rows]),
            attention_mask=torch.cat([pad(r.attention_mask, 0) for r in rows]),
            perturbed=torch.cat([pad(r.perturbed, 0) for r in rows]),
            positions=torch.cat([r.positions for r in rows]),
            targets=torch.cat([r.targets for r in rows]),
            n_prompt=torch.cat([r.n_prompt for r in rows]),
        )

    def select(self, start: int, end: int) -> "NextTokenRows":
        """Rows ``start:end`` with the columns that are padding in all of them
        dropped (they cannot change the explained outputs: right padding)."""
        mask = self.attention_mask[start:end]
        width = int(mask.sum(1).max())
        return NextTokenRows(
            input_ids=self.input_ids[start:end, :width],
            attention_mask=mask[:, :width],
            perturbed=self.perturbed[start:end, :width],
            positions=self.positions[start:end],
            targets=self.targets[start:end],
            n_prompt=self.n_prompt[start:end],
        )

    def to(self, device: torch.device) -> "NextTokenRows":
        return NextTokenRows(
            *(
                getattr(self, name).to(device)
                for name in (
                    "input_ids",
                    "attention_mask",
                    "perturbed",
                    "positions",
                    "targets",
                    "n_prompt",
                )
            )
        )

    @classmethod
    def _row(
        cls,
        prompt_ids: Tensor,
        prefix: Tensor,
        interpretable: Tensor,
        positions: Sequence[int],
        pad_id: int,
    ) -> "NextTokenRows":
        ids = torch.cat([prompt_ids, prefix.to(prompt_ids)]).unsqueeze(0)
        perturbed = torch.cat(
            [interpretable, torch.zeros_like(prefix, dtype=torch.bool)]
        ).unsqueeze(0)
        device = prompt_ids.device
        return cls(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            perturbed=perturbed,
            positions=torch.tensor([list(positions)], device=device),
            targets=torch.zeros(1, len(positions), dtype=torch.long, device=device),
            n_prompt=torch.tensor([prompt_ids.numel()], device=device),
        )

    def _with_targets(self, targets: Tensor) -> "NextTokenRows":
        return NextTokenRows(
            input_ids=self.input_ids,
            attention_mask=self.attention_mask,
            perturbed=self.perturbed,
            positions=self.positions,
            targets=targets.reshape(1, -1).to(self.positions),
            n_prompt=self.n_prompt,
        )


def _check(
    prompt_ids: Tensor, target_ids: Tensor, interpretable: Optional[Tensor]
) -> "tuple[Tensor, Tensor, Tensor]":
    prompt_ids = torch.as_tensor(prompt_ids).reshape(-1).long()
    target_ids = torch.as_tensor(target_ids).reshape(-1).long().to(prompt_ids.device)
    if prompt_ids.numel() == 0:
        raise ValueError("the prompt has no tokens")
    if target_ids.numel() == 0:
        raise ValueError("the target has no tokens (nothing to explain)")
    if interpretable is None:
        interpretable = torch.ones_like(prompt_ids, dtype=torch.bool)
    interpretable = torch.as_tensor(interpretable).reshape(-1).bool()
    if interpretable.numel() != prompt_ids.numel():
        raise ValueError(
            f"interpretable mask has {interpretable.numel()} entries for a prompt "
            f"of {prompt_ids.numel()} tokens"
        )
    if not interpretable.any():
        raise ValueError("every prompt token is skipped: nothing to attribute to")
    return prompt_ids, target_ids, interpretable.to(prompt_ids.device)
