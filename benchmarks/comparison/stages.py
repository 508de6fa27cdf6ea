r"""Named, cached stages of a long comparison run (the report script's engine).

A stage is one expensive computation (e.g. every method on the main sentences, or
the Sigma rows alone). :class:`Stages` caches each result under a key made of the
model's digest, the stage's name and only the settings that stage depends on, so
that changing one stage's settings (say, Sigma's options) recomputes that stage
alone, and several processes (``only``) can fill one cache side by side.
:func:`stratified_order` draws the sentences, so that every prefix of the order is
stratified by label and length.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

__all__ = ["Stages", "stratified_order"]

LOG = logging.getLogger(__name__)


def stratified_order(
    texts: list[str], labels: list[int], lengths: np.ndarray, n: int, seed: int
) -> list[int]:
    """Indices of ``n`` sentences: 8 cells (label x length quartile), round-robin.

    Args:
        texts: The candidate sentences.
        labels: Their binary labels.
        lengths: Their token counts.
        n: How many to draw.
        seed: Seed of the order within each cell.

    Returns:
        Indices into ``texts``; every prefix visits the cells in turn.
    """
    quartiles = np.quantile(lengths, [0.25, 0.5, 0.75])
    cell_of = np.asarray(labels) * 4 + np.searchsorted(quartiles, lengths, "right")
    rng = np.random.default_rng(seed)
    cells = [rng.permutation(np.flatnonzero(cell_of == c)).tolist() for c in range(8)]
    order: list[int] = []
    while len(order) < n and any(cells):
        for cell in cells:
            if cell and len(order) < n:
                order.append(cell.pop(0))
    return order


class Stages:
    """Runs named stages, caching their results and wall times.

    Each stage is cached under a key made of the model's digest, the stage's name
    and only the settings that stage depends on, so enlarging one prefix (e.g.
    ``--sampling-n``) recomputes that stage alone, and several processes started
    with ``--stages`` can fill one cache side by side.

    Args:
        cache: The cache folder (created).
        digest: What every result depends on (e.g. the model's SHA-256).
        fresh: Ignore cached values (and overwrite them).
        only: Names of the stages that may be computed; None: all.
    """

    def __init__(
        self, cache: Path, digest: str, fresh: bool, only: set[str] | None
    ) -> None:
        self.folder = cache
        self.folder.mkdir(parents=True, exist_ok=True)
        self.digest = digest
        self.fresh = fresh
        self.only = only
        self.seconds: dict[str, float] = {}
        self.computed: set[str] = set()
        self.missing: list[str] = []

    def path(self, name: str, depends: dict[str, Any]) -> Path:
        """The cache file of stage ``name`` with the settings ``depends``."""
        key = hashlib.sha256(
            repr((self.digest, name, sorted(depends.items()))).encode()
        ).hexdigest()[:12]
        return self.folder / f"{name}-{key}.pkl"

    def run(self, name: str, depends: dict[str, Any], fn: Callable[[], Any]) -> Any:
        """The stage's cached value, else ``fn()`` (cached atomically).

        Returns None (and records the name in :attr:`missing`) for a stage that
        is neither cached nor selected by ``only``.
        """
        path = self.path(name, depends)
        if path.exists() and not self.fresh:
            with open(path, "rb") as handle:
                value, seconds = pickle.load(handle)
            LOG.info("stage %s: cached (%.0f s when computed)", name, seconds)
        elif self.only is not None and name not in self.only:
            LOG.info("stage %s: not cached and not selected by --stages", name)
            self.missing.append(name)
            return None
        else:
            LOG.info("stage %s: running", name)
            start = time.perf_counter()
            value = fn()
            seconds = time.perf_counter() - start
            # Written under a temporary name and renamed: an interrupted stage
            # never leaves a truncated pickle that a later run would trust.
            partial = path.with_suffix(".partial")
            with open(partial, "wb") as handle:
                pickle.dump((value, seconds), handle)
            os.replace(partial, path)
            LOG.info("stage %s: %.0f s", name, seconds)
            self.computed.add(name)
        self.seconds[name] = seconds
        return value
