"""The background thread (embedding_explorer.overlap) and extraction's overlapped path: the CPU-side
work of one batch runs while the model computes the next, with the same results."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import NonFiniteActivationError
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
