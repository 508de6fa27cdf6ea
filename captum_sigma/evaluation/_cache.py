"""A memoising, length-trimming ``predict_proba`` for the removal metrics (private).

Every compared method is scored with the same removal operators on the same
sentences, so many perturbed sequences recur across methods (all leave-one-out
sequences, the empty and full insertion points, shared top-k sets). The cache
runs each distinct sequence once, in batches of similar length trimmed to their
longest row.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from captum_sigma.evaluation.forward import PredictProba


class CachedPredictProba:
    """``predict_proba(input_ids, attention_mask)`` with a cache of distinct rows.

    Rows must be right-padded (true for both removal operators); a row is
    identified by its attended ids. ``model_rows`` counts the rows actually run.
    """

    def __init__(self, predict_proba: PredictProba, max_rows: int = 256) -> None:
        self.predict_proba = predict_proba
        self.max_rows = max_rows
        self.cache: dict[bytes, np.ndarray] = {}
        self.model_rows = 0
        self.requested_rows = 0

    def __call__(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
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
        proba = np.stack([self.cache[key] for key in keys])
        return torch.from_numpy(proba)

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
                output = self.predict_proba(
                    input_ids[index, :width], attention_mask[index, :width]
                )
            values = output.detach().double().cpu().numpy()
            self.model_rows += len(chunk)
            for row, value in zip(chunk, values):
                self.cache[key_of_row[int(row)]] = value
