"""A batch's work shared by threads: parts in order, whole samples, none for small batches."""

from __future__ import annotations

import concurrent.futures
import pickle
import threading
import time

import numpy as np
import pytest
import torch

from embedding_explorer import threads
from embedding_explorer.cores import available_cores
from embedding_explorer.threads import MIN_VALUES_PER_PART, Scratch, by_parts, each_by_parts


def test_parts_are_consecutive_whole_samples_in_order() -> None:
    batch = np.arange(40 * MIN_VALUES_PER_PART // 8, dtype=np.int64).reshape(40, -1)  # 5 parts' worth
    names: set[str] = set()

    def work(part: np.ndarray) -> np.ndarray:
        names.add(threading.current_thread().name)
        return part[:, 0].copy()

    done = by_parts(work, batch, workers=3)
    assert [len(d) for d in done] == [14, 13, 13]
    np.testing.assert_array_equal(np.concatenate(done), batch[:, 0])
    assert all(name.startswith("ee-batch") for name in names)


def test_small_batches_stay_on_the_calling_thread() -> None:
    caller = threading.current_thread().name
    seen: list[str] = []

    def work(part: np.ndarray) -> int:
        seen.append(threading.current_thread().name)
        return len(part)

    assert by_parts(work, np.zeros((64, 100)), workers=8) == [64]  # too few values
    assert by_parts(work, np.zeros((7, MIN_VALUES_PER_PART)), workers=8) == [7]  # too few samples
    assert by_parts(work, np.zeros((64, MIN_VALUES_PER_PART)), workers=1) == [64]  # one worker
    assert seen == [caller] * 3


def test_scratch_reuses_memory_per_name_and_per_thread() -> None:
    scratch = Scratch()
    first = scratch.array("a", (4, 5), np.int32)
    smaller = scratch.array("a", (3, 5), np.int32)
    assert np.shares_memory(first, smaller) and smaller.shape == (3, 5) and smaller.flags.c_contiguous
    assert not np.shares_memory(scratch.array("a", (5, 5), np.int32), first)  # too small: a new one
    assert scratch.array("a", (2, 2), np.float64).dtype == np.float64
    assert not np.shares_memory(
        scratch.array("b", (2, 2), np.float64), scratch.array("a", (2, 2), np.float64)
    )
    other: list[np.ndarray] = []
    thread = threading.Thread(target=lambda: other.append(scratch.array("a", (2, 2), np.float64)))
    thread.start()
    thread.join()
    assert not np.shares_memory(other[0], scratch.array("a", (2, 2), np.float64))
    assert pickle.loads(pickle.dumps(scratch)).buffers == {}  # sent elsewhere: empty


def test_each_item_is_done_once_in_order_by_at_most_so_many_threads() -> None:
    running, most, lock = 0, 0, threading.Lock()
    threads: set[str] = set()

    def work(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.current_thread().name)
        time.sleep(0.002)
        with lock:
            running -= 1
        return item * item

    items = list(range(23))
    assert each_by_parts(work, items, 3) == [i * i for i in items]
    assert most <= 3 and len(threads) == min(3, available_cores())  # the pool has a thread per core
    threads.clear()
    assert each_by_parts(work, items, 1) == [i * i for i in items]
    assert threads == {threading.current_thread().name}  # one worker: the calling thread
    assert each_by_parts(work, [], 4) == []


def test_the_pool_s_threads_run_torch_on_one_thread_and_share_nothing_further(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Torch ops in a pool thread use one OpenMP thread (the pool is the parallelism), also once
    ``torch.set_num_threads`` was called (torch then sets each new thread's count at its first
    call), the caller's torch keeps its threads, and a pool task that shares work again does it
    itself (waiting on the pool's own threads would deadlock once they are all taken)."""
    before = torch.get_num_threads()
    torch.set_num_threads(before)  # as a user, or an earlier test, may have
    fresh: list[concurrent.futures.ThreadPoolExecutor] = []
    monkeypatch.setattr(threads, "_POOLS", fresh)  # threads made after that call
    inside = each_by_parts(lambda i: torch.get_num_threads(), list(range(8)), 4)
    assert set(inside) == {1} and torch.get_num_threads() == before and len(fresh) == 1

    def nested(i: int) -> int:
        parts = by_parts(len, np.zeros((64, 1 << 13)), 4)  # one part: done by this pool thread itself
        return sum(each_by_parts(lambda j: j, list(range(5)), 4)) + len(parts)

    with concurrent.futures.ThreadPoolExecutor(1) as watchdog:
        assert watchdog.submit(each_by_parts, nested, list(range(8)), 4).result(timeout=60) == [10 + 1] * 8
    fresh[0].shutdown()
