"""The extraction ledger: per-sample bookkeeping spilled to disk, read back in order."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from embedding_explorer import extract, heap
from embedding_explorer.extract import Ledger
from embedding_explorer.store.writer import RunWriter


def test_a_spill_leaves_no_per_sample_arrays_in_memory_and_segments_read_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = RunWriter(tmp_path / "run", ["a"])
    ledger = Ledger(2, 64)
    rng = np.random.default_rng(0)
    labels = [np.array([1, 2, 3]), np.array([4, 5]), np.array([6])]
    tokens = [rng.integers(0, 100, size=(len(v), 3)) for v in labels]
    columns = [rng.standard_normal(len(v)) for v in labels]
    for i, (lab, tok, col) in enumerate(zip(labels, tokens, columns, strict=True)):
        ledger.add_labels(lab)
        ledger.add_tokens(tok)
        ledger.add_columns({"n_words": col}, len(lab))
        writer.append_renderings([b"x" * len(lab)], np.array([len(lab)]))
        ledger.n_done += len(lab)
        if i < 2:
            ledger.spill(writer)
            tail = list(ledger.segments())[-1]
            assert tail.size == 0 and tail.labels is None and tail.tokens is None and tail.columns is None
    segments = list(ledger.segments())
    assert [s.size for s in segments] == [3, 2, 1]  # two spilled, then the tail still in memory
    np.testing.assert_array_equal(ledger.labels(), np.concatenate(labels))
    read = [s.tokens for s in segments if s.tokens is not None]
    np.testing.assert_array_equal(np.concatenate(read), np.concatenate(tokens))
    np.testing.assert_array_equal(ledger.columns()["n_words"], np.concatenate(columns))
    assert ledger.n_labels == 6
    read_kinds: list[str] = []
    original = extract.resume.read_segment

    def read_segment(folder: Any, kind: str, segment: int) -> Any:
        read_kinds.append(kind)
        return original(folder, kind, segment)

    monkeypatch.setattr(extract.resume, "read_segment", read_segment)
    np.testing.assert_array_equal(ledger.labels(), np.concatenate(labels))
    assert read_kinds == ["labels", "labels"]  # one per spilled segment, no other kind
    writer.abort()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_spills_trim_freed_memory_only_once_the_resident_memory_grew(monkeypatch: pytest.MonkeyPatch) -> None:
    trims: list[int] = []

    class Libc:
        def malloc_trim(self, pad: int) -> int:
            trims.append(pad)
            return 1

    rss = [100 * 2**20]
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: Libc())
    monkeypatch.setattr(heap, "resident_bytes", lambda: rss[0])
    monkeypatch.setattr(heap, "_trimmed_at", [0])
    heap.release_freed_memory()  # by default: always
    assert len(trims) == 1
    rss[0] += heap.TRIM_GROWTH  # not more than the growth allowed
    heap.release_freed_memory(grown=heap.TRIM_GROWTH)
    assert len(trims) == 1
    rss[0] += 1
    heap.release_freed_memory(grown=heap.TRIM_GROWTH)
    assert len(trims) == 2
    heap.release_freed_memory(grown=heap.TRIM_GROWTH)  # measured from the last trim on
    assert len(trims) == 2
    rss[0] = 100 * 2**20 + 2 * heap.TRIM_GROWTH + 2
    heap.release_freed_memory(grown=heap.TRIM_GROWTH)
    assert len(trims) == 3


def test_resident_bytes_is_this_process_memory() -> None:
    import psutil

    measured = heap.resident_bytes()
    if not sys.platform.startswith("linux"):
        assert measured is None
        return
    assert measured is not None
    assert abs(measured - psutil.Process().memory_info().rss) < 64 * 2**20
