"""The C heap around extraction (heap.reused_heap): glibc keeps freed blocks, then hands them back."""

from __future__ import annotations

import ctypes
import os
import resource
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import embedding_explorer as ee
from embedding_explorer import extract, heap


class FakeLibc:
    """Records mallopt and malloc_trim calls; ``cap``: the largest threshold it accepts."""

    def __init__(self, cap: int | None = None) -> None:
        self.calls: list[tuple[str, int, int]] = []
        self.cap = cap

    def mallopt(self, param: int, value: int) -> int:
        accepted = self.cap is None or value <= self.cap
        if accepted:
            self.calls.append(("mallopt", param, value))
        return int(accepted)

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad, 0))
        return 1


@pytest.fixture
def libc(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(heap, "_glibc", lambda: fake)
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: fake)  # release_freed_memory's trim
    return fake


RAISED = [("mallopt", heap.M_MMAP_THRESHOLD, heap.KEPT), ("mallopt", heap.M_TRIM_THRESHOLD, heap.KEPT)]
RESTORED = [
    ("mallopt", heap.M_MMAP_THRESHOLD, heap.DYNAMIC_MMAP_MAX),
    ("mallopt", heap.M_TRIM_THRESHOLD, 2 * heap.DYNAMIC_MMAP_MAX),
    ("malloc_trim", 0, 0),
]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_thresholds_are_raised_once_for_nested_runs_then_restored_and_trimmed(libc: FakeLibc) -> None:
    with heap.reused_heap():
        assert libc.calls == RAISED
        with heap.reused_heap():  # a second run extracting meanwhile: nothing changes
            pass
        assert libc.calls == RAISED
    assert libc.calls == RAISED + RESTORED
    assert 2 * heap.DYNAMIC_MMAP_MAX == 64 * 2**20  # glibc's own limits on 64-bit: 32 MiB, trim twice that


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_thresholds_are_restored_when_the_run_fails(libc: FakeLibc) -> None:
    with pytest.raises(RuntimeError, match="boom"), heap.reused_heap():
        raise RuntimeError("boom")
    assert libc.calls == RAISED + RESTORED


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_a_glibc_that_caps_the_mmap_threshold_gets_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeLibc(cap=heap.KEPT - 1)  # refuses 1 GiB for the mmap threshold (and the trim)
    monkeypatch.setattr(heap, "_glibc", lambda: fake)
    monkeypatch.setattr(heap.ctypes, "CDLL", lambda name: fake)
    with heap.reused_heap():
        assert fake.calls == [("mallopt", heap.M_MMAP_THRESHOLD, heap.DYNAMIC_MMAP_MAX)]


@pytest.mark.parametrize(
    "variable",
    [
        "MALLOC_TRIM_THRESHOLD_=65536",
        "MALLOC_MMAP_THRESHOLD_=131072",
        "GLIBC_TUNABLES=glibc.malloc.trim_threshold=0",
        "LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
    ],
)
def test_a_malloc_configured_or_replaced_at_startup_is_left_alone(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """Dask starts its workers with MALLOC_TRIM_THRESHOLD_: that choice is kept; so is another
    allocator preloaded."""
    name, _, value = variable.partition("=")
    monkeypatch.setattr(heap, "startup_environment", lambda: {"PATH": "/usr/bin", name: value})
    assert heap._glibc() is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/environ")
def test_the_environment_read_is_the_one_the_process_started_with(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask's LocalCluster sets MALLOC_TRIM_THRESHOLD_ in os.environ for the workers it starts;
    this process's malloc read its environment at startup, so that does not count."""
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    started = heap.startup_environment()
    assert "MALLOC_TRIM_THRESHOLD_" not in started and started.get("PATH") == os.environ["PATH"]


@pytest.mark.skipif(heap._glibc() is None, reason="glibc's malloc as it comes (not configured, not replaced)")
def test_blocks_freed_inside_are_reused_without_page_faults() -> None:
    """The mechanism, measured on glibc itself: a 64 MiB block malloc'd, written and freed six
    times pages in its 16,384 pages once inside (then reuses them), where outside every
    allocation of a block above glibc's 32 MiB mmap ceiling is a fresh mapping, paged in anew."""
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = 64 * 2**20

    def faults_of_allocations() -> list[int]:
        out = []
        for _ in range(6):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            block = libc.malloc(size)
            assert block
            ctypes.memset(block, 1, size)
            libc.free(block)
            out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return out

    outside = faults_of_allocations()
    assert min(outside) > 8_000  # each one pages in most of its 16,384 pages
    with heap.reused_heap():
        inside = faults_of_allocations()
    assert max(inside[1:]) < 1_000  # the first one pages in; the others reuse it
    assert min(faults_of_allocations()) > 8_000  # afterwards: handed back again


def test_a_run_extracts_inside_reused_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    """``explore``'s extraction loop runs inside :func:`heap.reused_heap`, entered once per run."""
    entered: list[int] = []
    real = heap.reused_heap

    def counted() -> object:
        entered.append(1)
        return real()

    monkeypatch.setattr(extract, "reused_heap", counted)
    x = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU())
    with tempfile.TemporaryDirectory() as tmp:
        run = ee.explore(model, x, ["0"], out=Path(tmp) / "run", batch_size=16, progress=False)
        assert entered == [1]
        assert len(run.samples) == 40


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_spills_in_a_kept_heap_measure_growth_from_the_first_spill_after_a_trim(
    libc: FakeLibc, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a kept heap the forward pass's pages come back at the next batch: a spill right after a
    trim sets the baseline instead of trimming again at once (which would make every spill trim);
    memory that keeps growing past it is still trimmed."""
    rss = [500 * 2**20]
    monkeypatch.setattr(heap, "resident_bytes", lambda: rss[0])
    trims = lambda: sum(call[0] == "malloc_trim" for call in libc.calls)  # noqa: E731
    with heap.reused_heap():
        heap.release_freed_memory(grown=heap.TRIM_GROWTH)  # the first spill: the baseline (500 MiB)
        rss[0] += heap.TRIM_GROWTH  # the working set back, within the allowance
        heap.release_freed_memory(grown=heap.TRIM_GROWTH)
        assert trims() == 0
        rss[0] += 1  # grown past it: trimmed
        heap.release_freed_memory(grown=heap.TRIM_GROWTH)
        assert trims() == 1
        rss[0] = 700 * 2**20  # the forward pass paged its activations back in after the trim
        heap.release_freed_memory(grown=heap.TRIM_GROWTH)  # the new baseline, no trim
        rss[0] += heap.TRIM_GROWTH
        heap.release_freed_memory(grown=heap.TRIM_GROWTH)
        assert trims() == 1
    assert trims() == 2  # the trim on leaving
    assert heap._trimmed_at[0] == rss[0]  # outside, the growth is measured from after a trim again
