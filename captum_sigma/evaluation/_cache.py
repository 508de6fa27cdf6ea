"""A memoising, length-trimming classifier forward for the removal metrics (private).

Every compared method is scored with the same removal operators on the same
sentences, so many perturbed sequences recur across methods (all leave-one-out
sequences, the empty and full insertion points, shared top-k sets) and across
metric families (the signed metrics read probabilities, the
representation-change metrics logits, the distribution-change metrics
probability vectors, all of the same sequences). The cache runs each distinct
sequence once, in batches of similar length trimmed to their longest row, and
keeps its logits and the probabilities derived from them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from captum_sigma.evaluation.forward import PredictLogits


class CachedForward:
    """A classifier's logits and probabilities with a cache of distinct rows.

    Rows must be right-padded (true for both removal operators); a row is
    identified by its attended ids. ``model_rows`` counts the rows actually run,
    ``requested_rows`` the rows asked for through either output.

    The probabilities are ``logits.softmax(dim=-1)`` of each batch of logits as
    the model returned them (its dtype and device), before the float64
    conversion: the very operation of
    :func:`~captum_sigma.evaluation.classifier_forward` with ``output="proba"``
    on the same batch, so the signed metrics get the probabilities a cache of
    that forward would give, bit for bit.

    Args:
        predict_logits (Callable): ``predict_logits(input_ids, attention_mask)``
                returning (N, C) logits, e.g. ``classifier_forward(model,
                "logit")``.
        max_rows (int, optional): Rows per model call. Default: 256.
    """

    def __init__(self, predict_logits: PredictLogits, max_rows: int = 256) -> None:
        self.forward = predict_logits
        self.max_rows = max_rows
        self.cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self.model_rows = 0
        self.requested_rows = 0

    def predict_proba(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(N, C) float64 class probabilities."""
        return self._lookup(input_ids, attention_mask, 1)

    def predict_logits(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """(N, C) float64 logits."""
        return self._lookup(input_ids, attention_mask, 0)

    __call__ = predict_proba

    def _lookup(self, input_ids: Tensor, attention_mask: Tensor, which: int) -> Tensor:
        ids = input_ids.detach().cpu().numpy()
        lengths = attention_mask.detach().sum(dim=1).cpu().numpy().astype(np.int64)
        keys = [row[:n].tobytes() for row, n in zip(ids, lengths)]
        self.requested_rows += len(keys)
        missing: dict[bytes, int] = {}
        for row, key in enumerate(keys):
            if key not in self.cache and key not in missing:
                missing[key] = row
        if missing:
            self._run(input_ids, attention_mask, lengths, missing)
        return torch.from_numpy(np.stack([self.cache[key][which] for key in keys]))

    def _run(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        lengths: np.ndarray,
        missing: dict[bytes, int],
    ) -> None:
        rows = np.array(list(missing.values()))
        rows = rows[np.argsort(lengths[rows], kind="stable")]
        keys = list(missing)
        key_of_row = {row: key for key, row in zip(keys, missing.values())}
        for start in range(0, rows.size, self.max_rows):
            chunk = rows[start : start + self.max_rows]
            width = max(1, int(lengths[chunk].max()))
            index = torch.from_numpy(chunk).to(input_ids.device)
            with torch.no_grad():
                logits = self.forward(
                    input_ids[index, :width], attention_mask[index, :width]
                )
                proba = logits.softmax(dim=-1)
            logits_np = logits.detach().double().cpu().numpy()
            proba_np = proba.detach().double().cpu().numpy()
            self.model_rows += len(chunk)
            for row, z, p in zip(chunk, logits_np, proba_np):
                self.cache[key_of_row[int(row)]] = (z, p)
