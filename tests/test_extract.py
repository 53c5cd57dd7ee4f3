"""The extraction ledger: per-sample bookkeeping spilled to disk, read back in order."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

import embedding_explorer as ee
from embedding_explorer import extract, heap
from embedding_explorer.exceptions import EmbeddingExplorerError
from embedding_explorer.extract import GATHER_ROWS, Ledger
from embedding_explorer.pca import StreamingPCA
from embedding_explorer.store.writer import RunWriter


# ---- host rows gathered into blocks for their moments ---------------------------------------------
def _fits_seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The rows of each block added to an accumulator (each StreamingPCA.partial_fit call)."""
    sizes: list[int] = []
    original = StreamingPCA.partial_fit

    def partial_fit(self: StreamingPCA, x: Any) -> StreamingPCA:
        sizes.append(int(x.shape[0]))
        return original(self, x)

    monkeypatch.setattr(StreamingPCA, "partial_fit", partial_fit)
    return sizes


def test_host_rows_are_added_to_their_moments_in_blocks_that_equal_sklearn(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches of 64 rows go in as blocks of 512 (the last one when the moments are read); the
    rows handed over may be overwritten at once (the next forward pass reuses their memory)."""
    sizes = _fits_seen(monkeypatch)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((1100, 24)) @ rng.standard_normal((24, 24))).astype(np.float32)
    ledger = Ledger(5, 64)
    buffer = np.empty((64, 24), dtype=np.float32)
    for start in range(0, len(x), 64):
        rows = buffer[: len(x[start : start + 64])]
        rows[:] = x[start : start + 64]
        ledger.accumulate("fc", torch.from_numpy(rows), rows)
        buffer[:] = np.nan  # what the caller does with that memory next does not matter
    assert sizes == [512, 512]  # 76 rows still gathered
    result = ledger.accumulators["fc"].finalize()
    assert sizes == [512, 512, 76] and ledger.accumulators["fc"].n_samples_seen_ == 1100
    reference = PCA(n_components=5, svd_solver="full").fit(x.astype(np.float64))
    ratios = reference.explained_variance_ratio_
    np.testing.assert_allclose(result.explained_variance_ratio, ratios, atol=1e-12)
    np.testing.assert_allclose(result.mean, reference.mean_, atol=1e-12)
    per_batch = StreamingPCA(5).fit(x, batch_size=64).finalize()
    np.testing.assert_allclose(result.explained_variance, per_batch.explained_variance, rtol=1e-12)


def test_blocks_hold_at_most_gather_bytes_and_large_batches_go_in_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 4096-wide layer gathers 256 rows (8 MiB of float64) at most; a batch of at least a
    block goes in as it is, after the rows gathered before it (their order kept)."""
    sizes = _fits_seen(monkeypatch)
    assert extract.GatheredRows(4096).capacity == 256 and extract.GatheredRows(16).capacity == GATHER_ROWS
    rng = np.random.default_rng(4)
    ledger = Ledger(3, 64)
    batches = [rng.standard_normal((n, 16)).astype(np.float32) for n in (100, 600, 30, 30)]
    for rows in batches:
        ledger.accumulate("fc", torch.from_numpy(rows), rows)
    ledger.add_gathered()
    assert sizes == [100, 600, 60]
    whole = np.concatenate(batches).astype(np.float64)
    acc = ledger.accumulators["fc"]
    np.testing.assert_allclose(acc.mean_, whole.mean(axis=0), atol=1e-13)
    np.testing.assert_allclose(acc.variances(), whole.var(axis=0, ddof=1), rtol=1e-12)


def test_a_layer_whose_width_changes_or_is_zero_is_refused_as_before() -> None:
    """The rows gathered so far go in first, so the accumulator names the change; a layer of no
    features is refused by the accumulator, not by a division by zero."""
    ledger = Ledger(3, 64)
    rows = np.ones((10, 24), dtype=np.float32)
    ledger.accumulate("fc", torch.from_numpy(rows), rows)
    narrow = np.ones((10, 1), dtype=np.float32)
    with pytest.raises(ValueError, match="batch has 1 features, earlier batches had 24"):
        ledger.accumulate("fc", torch.from_numpy(narrow), narrow)
    empty = np.ones((10, 0), dtype=np.float32)
    with pytest.raises(ValueError, match="0 features"):
        Ledger(3, 64).accumulate("none", torch.from_numpy(empty), empty)


@pytest.mark.parametrize("storage_dtype", ["float32", "float16"])
def test_explore_names_the_layer_and_samples_whose_width_changes_or_is_zero(
    tmp_path: Path, storage_dtype: str
) -> None:
    """Through ``explore`` (not overlapped, on the CPU) the error names the layer and the first
    sample, before the moments or the float16 check see the rows."""
    changing = [torch.randn(4, 6), torch.randn(4, 7)]  # e.g. flattened tokens of another length
    model = torch.nn.Sequential(torch.nn.Identity())
    changed = r"layer 'body' gave rows of shape \(4, 7\) for the samples from 4 on; its earlier batches had 6"
    with pytest.raises(EmbeddingExplorerError, match=changed):
        ee.explore(model, changing, {"body": "0"}, out=tmp_path / "a", progress=False,
                   storage_dtype=storage_dtype)  # fmt: skip
    empty = [torch.randn(4, 0)]
    with pytest.raises(EmbeddingExplorerError, match=r"shape \(4, 0\) for the samples from 0 on; PCA"):
        ee.explore(model, empty, {"body": "0"}, out=tmp_path / "b", progress=False,
                   storage_dtype=storage_dtype)  # fmt: skip


def test_a_layer_wider_than_max_dense_dim_is_not_gathered(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = _fits_seen(monkeypatch)
    ledger = Ledger(3, 8)  # 16 features > 8: means and variances only, per batch
    rows = np.ones((10, 16), dtype=np.float32)
    ledger.accumulate("wide", torch.from_numpy(rows), rows)
    assert sizes == [10]


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
