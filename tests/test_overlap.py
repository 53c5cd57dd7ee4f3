"""The background thread (embedding_explorer.overlap) and extraction's overlapped path: the CPU-side
work of one batch runs while the model computes the next, with the same results."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from torch import nn

import embedding_explorer as ee
from embedding_explorer import NonFiniteActivationError
from embedding_explorer import resume as ee_resume
from embedding_explorer.extract import GATHER_ROWS, moment_work
from embedding_explorer.overlap import Background
from embedding_explorer.store.writer import RunWriter
from support import assert_same_run, leftovers

N, BATCH = 48, 8


# ---- the background thread ---------------------------------------------------------------------
def test_items_run_in_order_on_one_other_thread() -> None:
    done: list[tuple[int, str]] = []
    with Background(lambda i: done.append((i, threading.current_thread().name)), depth=2) as background:
        for i in range(20):
            background.submit(i)
        background.drain()
        assert [i for i, _ in done] == list(range(20))
    assert {name for _, name in done} == {"ee-background"} != {threading.current_thread().name}


def test_an_error_in_the_thread_is_raised_in_the_caller_and_stops_the_rest() -> None:
    done: list[int] = []

    def work(i: int) -> None:
        if i == 3:
            raise ValueError("item 3 is bad")
        done.append(i)

    with pytest.raises(ValueError, match="item 3 is bad"), Background(work, depth=1) as background:
        for i in range(50):
            background.submit(i)
    assert done == [0, 1, 2]


def test_an_error_in_the_caller_stops_the_thread() -> None:
    done: list[int] = []
    with pytest.raises(RuntimeError, match="caller"), Background(done.append) as background:
        background.submit(1)
        background.drain()
        raise RuntimeError("caller")
    assert done == [1]


# ---- extraction --------------------------------------------------------------------------------
class SlowDevice(nn.Module):
    """A model whose second forward pass waits until the first batch's rows have been written:
    it returns only when the write happened *while it was running* (or after ``patience`` s)."""

    def __init__(self, first_written: threading.Event, patience: float) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(6, 12), nn.Linear(12, 4)
        self.first_written, self.patience = first_written, patience
        self.calls = 0
        self.saw_write_during_call_2: bool | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == 2:  # the slow "device step" of batch 2
            self.saw_write_during_call_2 = self.first_written.wait(self.patience)
        return self.fc2(torch.relu(self.fc1(x)))


@pytest.fixture
def watched_writes(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, list[str]]:
    """Records the thread of every activation write; sets the event at the first one."""
    first, threads = threading.Event(), []
    original = RunWriter.append_activations

    def append(self: RunWriter, layer: str, rows: np.ndarray) -> Any:
        threads.append(threading.current_thread().name)
        result = original(self, layer, rows)
        first.set()
        return result

    monkeypatch.setattr(RunWriter, "append_activations", append)
    return first, threads


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(N, 6, generator=g), torch.randint(0, 3, (N,), generator=g)


def test_writes_of_a_batch_overlap_the_next_forward_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watched_writes: tuple[threading.Event, list[str]]
) -> None:
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: True)
    first, threads = watched_writes
    model = SlowDevice(first, patience=60.0)
    ee.explore(model, data(), ["fc1", "fc2"], out=tmp_path / "run", batch_size=BATCH, progress=False)
    assert model.saw_write_during_call_2 is True  # batch 1's rows were written during forward 2
    assert set(threads) == {"ee-background"}


def test_without_overlap_the_writes_follow_the_forward_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watched_writes: tuple[threading.Event, list[str]]
) -> None:
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: False)
    first, threads = watched_writes
    model = SlowDevice(first, patience=0.5)  # the write of batch 1 has already happened: no wait
    ee.explore(model, data(), ["fc1", "fc2"], out=tmp_path / "run", batch_size=BATCH, progress=False)
    assert model.saw_write_during_call_2 is True and set(threads) == {threading.current_thread().name}


@pytest.mark.parametrize("resume", [False, True], ids=["plain", "checkpointed"])
def test_overlapped_run_equals_the_sequential_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resume: bool
) -> None:
    if resume:  # a checkpoint every batch: each waits for the background to finish its batches
        monkeypatch.setattr("embedding_explorer.extract.checkpoint_rows", lambda *args: BATCH)
    images = torch.rand(N, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    labels = torch.arange(N) % 4
    runs = []
    for overlap in (False, True):
        monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device, o=overlap: o)
        model = nn.Sequential(nn.Flatten(), nn.Linear(144, 16), nn.ReLU(), nn.Linear(16, 3))
        torch.manual_seed(0)
        model.apply(lambda m: m.reset_parameters() if isinstance(m, nn.Linear) else None)
        runs.append(
            ee.explore(
                model,
                (images, labels),
                ["input", "2", "3"],
                out=tmp_path / f"run{overlap}",
                batch_size=BATCH,
                progress=False,
                render="image",
            )
        )
    assert_same_run(*runs)


def test_a_nan_found_in_the_background_names_layer_and_sample(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: True)
    x, y = data()
    x[29, 2] = float("nan")
    out = tmp_path / "runs" / "bad"
    with pytest.raises(NonFiniteActivationError, match="layer 'fc1' produced NaN for sample 29"):
        ee.explore(
            SlowDevice(threading.Event(), 0.0), (x, y), ["fc1"], out=out, batch_size=BATCH, progress=False
        )
    assert leftovers(out) == []


# ---- the moments on a thread of their own --------------------------------------------------------
def test_moments_run_on_their_own_thread_beside_the_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, watched_writes: tuple[threading.Event, list[str]]
) -> None:
    """The first batch's moments return only once a *later* batch has been written (or after 60
    s): the writes go on while the moments of a batch are still being computed."""
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: True)
    monkeypatch.setattr("embedding_explorer.extract.GATHER_ROWS", 1)  # each batch's moments as it comes
    _, write_threads = watched_writes
    later_written = threading.Event()
    original_append = RunWriter.append_activations

    def append(self: RunWriter, layer: str, rows: np.ndarray) -> Any:
        original_append(self, layer, rows)
        if len(write_threads) > 2:  # fc1 and fc2 of batch 1, then batch 2's
            later_written.set()

    monkeypatch.setattr(RunWriter, "append_activations", append)
    fits: list[tuple[str, bool]] = []
    original_fit = ee.StreamingPCA.partial_fit

    def partial_fit(self: ee.StreamingPCA, x: Any) -> ee.StreamingPCA:
        waited = later_written.wait(60.0) if not fits else True
        fits.append((threading.current_thread().name, waited))
        return original_fit(self, x)

    monkeypatch.setattr(ee.StreamingPCA, "partial_fit", partial_fit)
    model = SlowDevice(threading.Event(), patience=0.0)
    run = ee.explore(model, data(), ["fc1", "fc2"], out=tmp_path / "run", batch_size=BATCH, progress=False)
    assert fits[0] == ("ee-moments", True)  # batch 2 was written while batch 1's moments waited
    assert {name for name, _ in fits} == {"ee-moments"} and len(fits) == 2 * N // BATCH
    assert set(write_threads) == {"ee-background"}
    x = data()[0]
    reference = PCA(n_components=4, svd_solver="full").fit(
        model.fc2(torch.relu(model.fc1(x))).detach().double()
    )
    np.testing.assert_allclose(
        run["fc2"].explained_variance_ratio, reference.explained_variance_ratio_, rtol=0, atol=1e-12
    )


def test_an_error_in_the_moments_thread_is_raised_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: True)
    monkeypatch.setattr("embedding_explorer.extract.GATHER_ROWS", 1)  # each batch's moments as it comes
    calls: list[int] = []
    original_fit = ee.StreamingPCA.partial_fit

    def partial_fit(self: ee.StreamingPCA, x: Any) -> ee.StreamingPCA:
        calls.append(1)
        if len(calls) == 5:
            raise MemoryError("no room for the moments of batch 3")
        return original_fit(self, x)

    monkeypatch.setattr(ee.StreamingPCA, "partial_fit", partial_fit)
    out = tmp_path / "runs" / "bad"
    with pytest.raises(MemoryError, match="batch 3"):
        ee.explore(
            SlowDevice(threading.Event(), 0.0),
            data(),
            ["fc1", "fc2"],
            out=out,
            batch_size=BATCH,
            progress=False,
        )
    assert leftovers(out) == []


def test_overlapped_blocks_of_rows_end_at_each_spill_as_in_a_sequential_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows gathered (the default), spill points every two batches (but none at the last batch)
    and no checkpoint due: the moments thread adds each layer's block at every spill point (a
    None in its queue), the blocks a sequential run adds on its own thread, and the two runs
    are equal to the bit."""
    monkeypatch.setattr("embedding_explorer.extract.checkpoint_rows", lambda *args: 2 * BATCH)
    monkeypatch.setattr("embedding_explorer.extract.CHECKPOINT_SECONDS", 3600.0)
    fits: list[tuple[str, int]] = []
    original_fit = ee.StreamingPCA.partial_fit

    def partial_fit(self: ee.StreamingPCA, x: Any) -> ee.StreamingPCA:
        fits.append((threading.current_thread().name, int(x.shape[0])))
        return original_fit(self, x)

    monkeypatch.setattr(ee.StreamingPCA, "partial_fit", partial_fit)
    runs, seen = [], []
    for overlapped in (False, True):
        monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device, o=overlapped: o)
        fits.clear()
        out = tmp_path / ("overlapped" if overlapped else "sequential")
        model = SlowDevice(threading.Event(), patience=0.0)
        runs.append(ee.explore(model, data(), ["fc1", "fc2"], out=out, batch_size=BATCH, progress=False))
        seen.append(list(fits))
    blocks = [2 * BATCH] * (2 * N // (2 * BATCH))  # two layers, a block of two batches each spill
    assert [rows for _, rows in seen[0]] == [rows for _, rows in seen[1]] == blocks
    assert {name for name, _ in seen[0]} == {threading.current_thread().name}
    # the run's last batch carries no spill point (its finish follows): its blocks are added
    # once the stream has ended, on the calling thread
    assert {name for name, _ in seen[1][:-2]} == {"ee-moments"}
    assert {name for name, _ in seen[1][-2:]} == {threading.current_thread().name}
    assert_same_run(runs[1], runs[0])


def test_an_error_adding_the_last_blocks_is_raised_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rows gathered and no spill point before the end: the blocks are added once the stream
    has ended; an error there fails the run as one in a batch's moments does."""
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: True)

    def partial_fit(self: ee.StreamingPCA, x: Any) -> ee.StreamingPCA:
        raise MemoryError(f"no room for a block of {len(x)} rows")

    monkeypatch.setattr(ee.StreamingPCA, "partial_fit", partial_fit)
    out = tmp_path / "runs" / "bad"
    with pytest.raises(MemoryError, match=f"block of {N} rows"):
        ee.explore(
            SlowDevice(threading.Event(), 0.0), data(), ["fc1"], out=out, batch_size=BATCH, progress=False
        )
    assert leftovers(out) == []


@pytest.mark.parametrize(("cores", "threshold"), [(1, 0), (3, 0), (3, None)])
def test_not_overlapped_the_layers_moments_run_side_by_side_between_forward_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cores: int, threshold: int | None
) -> None:
    """torch's threads wait while a batch is consumed: its layers' moments run on one thread per
    core where they are work enough (here always, with a threshold of 0; the default's is far
    above these two small layers: then on this thread), and each batch's are done before the
    next forward pass; the run is the same."""
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: False)
    monkeypatch.setattr("embedding_explorer.extract.GATHER_ROWS", 1)  # each batch's moments as it comes
    monkeypatch.setattr("embedding_explorer.extract.available_cores", lambda: cores)
    if threshold is not None:
        monkeypatch.setattr("embedding_explorer.extract.SIDE_BY_SIDE_WORK", threshold)
    fits: list[tuple[str, int]] = []
    model = SlowDevice(threading.Event(), patience=0.0)
    original_fit = ee.StreamingPCA.partial_fit

    def partial_fit(self: ee.StreamingPCA, x: Any) -> ee.StreamingPCA:
        fits.append((threading.current_thread().name, model.calls))
        return original_fit(self, x)

    monkeypatch.setattr(ee.StreamingPCA, "partial_fit", partial_fit)
    run = ee.explore(model, data(), ["fc1", "fc2"], out=tmp_path / "run", batch_size=BATCH, progress=False)
    names = {name for name, _ in fits}
    if cores == 1 or threshold is None:
        assert names == {threading.current_thread().name}
    else:
        assert all(name.startswith("ee-moments") for name in names)
    # batch b's moments are made after forward pass b and before forward pass b + 1
    assert [calls for _, calls in fits] == [b for b in range(1, N // BATCH + 1) for _ in range(2)]
    monkeypatch.setattr(ee.StreamingPCA, "partial_fit", original_fit)
    monkeypatch.setattr("embedding_explorer.extract.available_cores", lambda: 1)
    alone = ee.explore(
        SlowDevice(threading.Event(), 0.0),
        data(),
        ["fc1", "fc2"],
        out=tmp_path / "one",
        batch_size=BATCH,
        progress=False,
    )
    assert_same_run(run, alone)


# ---- checkpoints in the stream -------------------------------------------------------------------
def checkpoints_seen(monkeypatch: pytest.MonkeyPatch, calls: list[int], ahead: int) -> list[dict[str, Any]]:
    """What each checkpoint saved (samples, renderer state, content hash, every accumulator's
    state) and how many forward passes had started when it was saved. With ``ahead``, a
    checkpoint of b batches is saved only once forward pass b + 2 has started (or ``ahead``
    passes have: the run stops there), or after 10 s: the forward passes go on meanwhile."""
    saved: list[dict[str, Any]] = []
    original = ee_resume.save

    def save(folder: Any, checkpoint: ee_resume.Checkpoint) -> None:
        batches = checkpoint.n_done // BATCH
        deadline = time.monotonic() + 10.0
        while ahead and calls[0] < min(batches + 2, ahead) and time.monotonic() < deadline:
            time.sleep(0.005)
        saved.append(
            {
                "n_done": checkpoint.n_done,
                "renderer": checkpoint.renderer,
                "content_hash": checkpoint.content_hash,
                "moments": {name: acc.state() for name, acc in checkpoint.accumulators.items()},
                "calls": calls[0],
            }
        )
        original(folder, checkpoint)

    monkeypatch.setattr(ee_resume, "save", save)
    return saved


def counted_model(calls: list[int], stop_at: int | None = None) -> nn.Module:
    """A small image MLP (seed 0) counting its forward passes in ``calls``; with ``stop_at``,
    forward pass ``stop_at`` raises KeyboardInterrupt (after being counted)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(144, 16), nn.ReLU(), nn.Linear(16, 3))

    def count(module: nn.Module, args: Any) -> None:
        calls[0] += 1
        if calls[0] == stop_at:
            raise KeyboardInterrupt

    model.register_forward_pre_hook(count)
    return model


@pytest.mark.parametrize("moments", ["host", "device"])
def test_checkpoints_taken_while_later_batches_run_hold_exactly_the_batches_before_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, moments: str
) -> None:
    """Overlapped, a checkpoint is saved by the background thread while the forward passes of
    later batches go on; what it saves (renderer state, content hash, moments) is what the
    sequential run saves at the same sample, and a run resumed from one equals one that never
    stopped. ``device``: the moments accumulate on the forward pass's thread, as on a GPU
    (faked here: the rows stay on the CPU), and the checkpoint gets them as of its batch."""
    monkeypatch.setattr("embedding_explorer.extract.checkpoint_rows", lambda *args: 2 * BATCH)
    # host: rows gathered into blocks, which end at each checkpoint in both runs; device: each
    # batch's moments as it comes, on the forward pass's thread, in both runs (as on a GPU)
    gather = GATHER_ROWS if moments == "host" else 1
    monkeypatch.setattr("embedding_explorer.extract.GATHER_ROWS", gather)
    n = 8 * BATCH  # checkpoints after batches 2, 4 and 6 (none at the last: the finish follows)
    images = torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(2)) * 5 - 1
    data = (images, torch.arange(n) % 4)
    kwargs: dict[str, Any] = {"batch_size": BATCH, "progress": False, "render": "image"}
    layers = ["input", "2", "3"]

    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: False)
    calls = [0]
    reference_saved = checkpoints_seen(monkeypatch, calls, ahead=0)
    reference = ee.explore(counted_model(calls), data, layers, out=tmp_path / "sequential", **kwargs)
    monkeypatch.undo()

    monkeypatch.setattr("embedding_explorer.extract.checkpoint_rows", lambda *args: 2 * BATCH)
    monkeypatch.setattr("embedding_explorer.extract.GATHER_ROWS", gather)
    monkeypatch.setattr("embedding_explorer.extract.overlaps", lambda device: True)
    monkeypatch.setattr("embedding_explorer.extract.moments_on_device", lambda x: moments == "device")
    calls = [0]
    saved = checkpoints_seen(monkeypatch, calls, ahead=n // BATCH)
    overlapped = ee.explore(counted_model(calls), data, layers, out=tmp_path / "overlapped", **kwargs)
    assert [c["n_done"] for c in saved] == [c["n_done"] for c in reference_saved] == [16, 32, 48]
    # the main thread had started two or more further forward passes when each (but the last)
    # was saved (sequentially, or drained first, it would have started none)
    assert all(c["calls"] - c["n_done"] // BATCH >= 2 for c in saved[:-1])
    for got, want in zip(saved, reference_saved, strict=True):
        assert got["renderer"] == want["renderer"] and got["renderer"]["seen"] == got["n_done"]
        assert got["content_hash"] == want["content_hash"] is not None
        for layer, state in want["moments"].items():
            assert got["moments"][layer]["n_samples_seen"] == got["n_done"]
            np.testing.assert_array_equal(got["moments"][layer]["m2"], state["m2"])
            np.testing.assert_array_equal(got["moments"][layer]["mean"], state["mean"])
    assert_same_run(overlapped, reference)

    calls = [0]
    saved = checkpoints_seen(monkeypatch, calls, ahead=7)
    with pytest.raises(KeyboardInterrupt):  # forward pass 7 stops the run
        ee.explore(counted_model(calls, stop_at=7), data, layers, out=tmp_path / "stopped", **kwargs)
    last = saved[-1]  # batches queued behind it are dropped once the main thread stops
    assert last["n_done"] >= 16 and last["calls"] >= last["n_done"] // BATCH + 2
    calls = [0]
    resumed = ee.explore(counted_model(calls), data, layers, out=tmp_path / "stopped", **kwargs)
    assert resumed.manifest["timings"]["resumed_at"] == last["n_done"]
    assert calls[0] == (n - last["n_done"]) // BATCH
    assert_same_run(resumed, reference)


class StaticOutput(nn.Module):
    """Class scores returned in one buffer that every forward pass overwrites (as a CUDA graph's
    static output is), beside a large cache (as a decoder's ``past_key_values``)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 4)
        self.out = torch.zeros(16, 4)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.out[: len(x)] = self.fc(x)
        return {"logits": self.out[: len(x)], "cache": torch.zeros(len(x), 4096)}


def test_overlapped_class_scores_are_taken_before_the_next_pass_overwrites_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The consumer lags two batches behind; the scores it makes columns of are a copy taken
    when their pass ended, so ``predicted`` is each sample's own (not a later batch's)."""
    from embedding_explorer import extract

    checked = extract.checked_rows

    def slow(*args: Any) -> np.ndarray:
        time.sleep(0.02)  # the forward passes run ahead, up to the queue's depth
        return checked(*args)

    monkeypatch.setattr(extract, "overlaps", lambda device: True)
    monkeypatch.setattr(extract, "checked_rows", slow)
    x = torch.randn(160, 6, generator=torch.Generator().manual_seed(4))
    model = StaticOutput()
    run = ee.explore(
        model, x, ["fc"], out=tmp_path / "r", batch_size=16, outputs=lambda out: out["logits"], progress=False
    )
    with torch.no_grad():
        want = model.fc(x).argmax(dim=1).numpy()
    np.testing.assert_array_equal(run.samples["predicted"].to_numpy(), want)


def test_moment_work_counts_rows_times_squared_widths() -> None:
    """By hand: 64 rows of 10 and of 1000 features make covariances; 64 rows of 5000 features,
    past ``max_dense_dim``, only means and variances."""
    outputs = {"a": torch.zeros(64, 10), "b": torch.zeros(64, 1000), "c": torch.zeros(64, 5000)}
    assert moment_work(outputs, max_dense_dim=4096) == 64 * 100 + 64 * 1_000_000 + 64 * 5000
