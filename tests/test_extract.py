"""The extraction ledger: per-sample bookkeeping spilled to disk, read back in order."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedding_explorer.extract import Ledger
from embedding_explorer.store.writer import RunWriter


def test_a_spill_leaves_no_per_sample_arrays_in_memory_and_segments_read_back(tmp_path: Path) -> None:
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
    writer.abort()
