"""Subsets of a data set that keep its label balance, for quick runs over large data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

SEED = 0


def stratified_subset(categories: Sequence[Any] | np.ndarray, n: int, seed: int = SEED) -> np.ndarray:
    """Indices of ``n`` samples, balanced over categories: each category gives all its samples
    or the same quota, whichever is smaller (quota chosen so the total is ``n``; the remainder
    goes one each to randomly chosen larger categories); drawn at random with ``seed`` and
    returned in the original order."""
    cats = np.asarray(categories)
    if n >= len(cats):
        return np.arange(len(cats))
    values, counts = np.unique(cats, return_counts=True)
    quota = _quota(counts, n)
    takes = np.minimum(counts, quota)
    rng = np.random.default_rng(seed)
    larger = np.flatnonzero(counts > quota)
    takes[rng.permutation(larger)[: n - int(takes.sum())]] += 1
    chosen = [
        rng.choice(np.flatnonzero(cats == value), size=int(take), replace=False)
        for value, take in zip(values, takes, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _quota(counts: np.ndarray, n: int) -> int:
    """The largest per-category cap whose capped total stays within ``n``."""
    lo, hi = 0, int(counts.max())
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if np.minimum(counts, mid).sum() <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo
