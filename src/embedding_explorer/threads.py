"""A batch's CPU-side work shared by threads, whole samples each.

Between two forward passes on the CPU the cores torch computes on are idle, and beside a GPU's
forward pass they are idle too; numpy releases the GIL for its arithmetic, so a batch split
along its first axis is done that many times faster. Each sample's values are computed alone,
so they are the same however the batch is split.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")

MIN_SAMPLES_PER_PART = 4
MIN_VALUES_PER_PART = 1 << 18  # below this a thread costs more than it saves


def by_parts(work: Callable[[np.ndarray], T], batch: np.ndarray, workers: int) -> list[T]:
    """``work`` of consecutive parts of ``batch`` (first axis), at most ``workers`` at once
    and in order: one part (no thread) when the batch is too small to be worth sharing."""
    parts = min(workers, len(batch) // MIN_SAMPLES_PER_PART, batch.size // MIN_VALUES_PER_PART)
    if parts <= 1:
        return [work(batch)]
    return list(_pool().map(work, np.array_split(batch, parts)))


@functools.cache
def _pool() -> ThreadPoolExecutor:
    """One pool for the process (made at the first shared batch), not one per batch."""
    return ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="ee-batch")
