"""A run that stops part way (killed process, full disk, Ctrl-C) resumes from its last checkpoint:
no sample lost, none counted twice, the same numbers as a run that never stopped."""

from __future__ import annotations

import errno
import functools
import itertools
import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from embedding_explorer import IncompleteRunError
from embedding_explorer import resume as ee_resume
from embedding_explorer.resume import CHECKPOINT, FOLDER
from embedding_explorer.store.format import staging_path
from embedding_explorer.store.writer import RowWriter, RunWriter
from support import MLP, assert_same_run, leftovers

LAYERS = ["input", "fc1", "fc2"]


def stop_after(model: nn.Module, calls: int, error: BaseException) -> Any:
    """A forward pre-hook that raises ``error`` on call number ``calls + 1`` (hooks change
    neither the model's fingerprint nor its numbers)."""
    seen = [0]

    def hook(module: nn.Module, args: Any) -> None:
        seen[0] += 1
        if seen[0] > calls:
            raise error

    return model.register_forward_pre_hook(hook)


@pytest.fixture
def xy2000() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(2000, 8, generator=g), torch.randint(0, 4, (2000,), generator=g)


def texts(n: int) -> list[str]:
    return [f"sample {i}" + "!" * (i % 7) for i in range(n)]


# ---- a killed process ------------------------------------------------------------------------
KILLED = textwrap.dedent(
    """
    import os, sys
    import torch
    from torch import nn
    import embedding_explorer as ee
    from embedding_explorer import extract

    extract.CHECKPOINT_SECONDS = 0.0  # a checkpoint at every point, as in the other tests

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(16, 512), nn.ReLU(), nn.Linear(512, 8))

    def data():
        g = torch.Generator().manual_seed(1)
        return torch.randn(20_000, 16, generator=g), torch.randint(0, 10, (20_000,), generator=g)

    texts = [f"text {i}" for i in range(20_000)]
    if __name__ == "__main__":
        m, calls = model(), [0]
        def kill(module, args):
            calls[0] += 1
            if calls[0] > int(sys.argv[2]):
                os._exit(9)  # no cleanup at all, as with SIGKILL
        m.register_forward_pre_hook(kill)
        ee.explore(m, data(), ["input", "0", "2"], out=sys.argv[1], render=texts, progress=False)
    """
)


@pytest.mark.slow
def test_killed_process_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    script = tmp_path / "killed.py"
    script.write_text(KILLED)
    out = tmp_path / "runs" / "r"
    # 40 batches of 256 rows: chunks of 4096 rows (the 512-wide layer), checkpoints at 4096 and 8192
    done = subprocess.run([sys.executable, str(script), str(out), "40"], timeout=300)
    assert done.returncode == 9
    assert (staging_path(out) / FOLDER / CHECKPOINT).exists() and not out.exists()
    with pytest.raises(IncompleteRunError):
        ee.open_run(out)

    namespace: dict[str, Any] = {}
    exec(compile(KILLED, str(script), "exec"), namespace)  # the same model, data and texts
    model, calls = namespace["model"](), [0]
    model.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    layers = ["input", "0", "2"]
    resumed = ee.explore(
        model, namespace["data"](), layers, out=out, render=namespace["texts"], progress=False
    )
    assert calls[0] == 79 - 8192 // 256  # 79 batches in all; the 32 checkpointed are not run again
    assert resumed.manifest["timings"]["resumed_at"] == 8192
    assert leftovers(out) == ["r"] and not (out / FOLDER).exists()  # no checkpoint in the finished run
    clean = ee.explore(
        namespace["model"](), namespace["data"](), layers, out=tmp_path / "clean", render=namespace["texts"],
        progress=False,
    )  # fmt: skip
    assert_same_run(resumed, clean)
    assert resumed.rendering(19_999) == b"text 19999"


# ---- a full disk -----------------------------------------------------------------------------
def test_full_disk_leaves_the_completed_chunks_resumable(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes = [0]
    original = RowWriter._write

    def write_until_full(self: RowWriter, block: np.ndarray) -> None:
        writes[0] += 1
        if writes[0] > 10:  # 3 layers: the fourth chunk of the first layer fails
            raise OSError(errno.ENOSPC, "No space left on device")
        original(self, block)

    monkeypatch.setattr(RowWriter, "_write", write_until_full)
    model = MLP()
    kwargs: dict[str, Any] = {"out": run_dir, "batch_size": 64, "render": texts(2000), "progress": False}
    with pytest.raises(OSError, match="No space left"):
        ee.explore(model, xy2000, LAYERS, **kwargs)
    assert staging_path(run_dir).exists()
    with pytest.raises(IncompleteRunError):
        ee.open_run(run_dir)
    monkeypatch.setattr(RowWriter, "_write", original)
    before = model.calls
    resumed = ee.explore(model, xy2000, LAYERS, **kwargs)
    # chunks of 256 rows = 4 batches; three chunks were checkpointed (768 samples)
    assert model.calls - before == 32 - 12
    assert resumed.manifest["timings"]["resumed_at"] == 768
    clean = ee.explore(model, xy2000, LAYERS, **{**kwargs, "out": tmp_path / "clean"})
    assert_same_run(resumed, clean)


def test_a_failure_while_scoring_resumes_after_the_extraction(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as failing:
        failing.setattr("embedding_explorer.build.finish.write_scores", _disk_full)
        model = MLP()
        with pytest.raises(OSError):
            ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=100, progress=False)
    before = model.calls
    resumed = ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=100, progress=False)
    # chunks of 300 rows (256 rounded up to whole batches); the last checkpoint is at 1800
    assert model.calls - before == 2
    clean = ee.explore(model, xy2000, LAYERS, out=tmp_path / "clean", batch_size=100, progress=False)
    assert_same_run(resumed, clean)


def _disk_full(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


# ---- checkpoints at most every CHECKPOINT_SECONDS ------------------------------------------
def test_checkpoints_between_spills_resume_from_the_last_one_with_every_rendering(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only every third checkpoint point is due by the clock: the points between spill without
    making anything durable. Stopped after two spills past the second checkpoint, the run
    resumes from that checkpoint (not from a spill), and equals a run that never stopped,
    renderings included (each segment holds the sizes of its own renderings)."""
    points = [0]

    def every_third(self: Any) -> bool:
        points[0] += 1
        return points[0] % 3 == 0

    monkeypatch.setattr("embedding_explorer.extract.Interval.due", every_third)
    saved: list[int] = []
    original_save = ee_resume.save
    monkeypatch.setattr(
        ee_resume, "save", lambda folder, c: (saved.append(c.n_done), original_save(folder, c))
    )
    model = MLP()
    kwargs: dict[str, Any] = {"out": run_dir, "batch_size": 64, "render": texts(2000), "progress": False}
    hook = stop_after(model, 26, KeyboardInterrupt())  # points every 256 samples (4 batches)
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, xy2000, LAYERS, **kwargs)
    assert saved == [768, 1536]  # points 3 and 6 of 6; points 1, 2, 4 and 5 spilled
    hook.remove()
    before = model.calls
    resumed = ee.explore(model, xy2000, LAYERS, **kwargs)
    assert resumed.manifest["timings"]["resumed_at"] == 1536
    assert model.calls - before == 32 - 1536 // 64
    clean = ee.explore(model, xy2000, LAYERS, **{**kwargs, "out": tmp_path / "clean"})
    assert_same_run(resumed, clean)
    some = (0, 767, 1536, 1999)
    assert [resumed.rendering(i) for i in some] == [texts(2000)[i].encode() for i in some]


def test_a_run_shorter_than_checkpoint_seconds_takes_no_checkpoint(
    run_dir: Path, small_chunks: None, xy2000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At the default interval a run of seconds only spills (nothing made durable, no state
    saved), so stopped, it starts over."""
    monkeypatch.setattr("embedding_explorer.extract.CHECKPOINT_SECONDS", 3600.0)
    saved: list[int] = []
    monkeypatch.setattr(ee_resume, "save", lambda folder, c: saved.append(c.n_done))
    model = MLP()
    hook = stop_after(model, 26, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    assert saved == []
    hook.remove()
    before = model.calls
    resumed = ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    assert resumed.manifest["timings"]["resumed_at"] == 0 and model.calls - before == 32


# ---- streams, interrupts, keys ---------------------------------------------------------------
def test_an_interrupted_list_of_uneven_batches_resumes_mid_chunk(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any
) -> None:
    x, y = xy2000
    sizes = [37, 91, 5, 64] * 10 + [30]  # not indexable; batches straddle the 256-row chunks
    bounds = np.cumsum([0, *sizes])
    batches = [(x[a:b], y[a:b]) for a, b in itertools.pairwise(bounds)]
    model = MLP()
    handle = stop_after(model, 25, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, batches, LAYERS, out=run_dir, progress=False)
    handle.remove()
    before = model.calls
    resumed = ee.explore(model, batches, LAYERS, out=run_dir, progress=False)
    n_done = resumed.manifest["timings"]["resumed_at"]
    assert 0 < n_done < 2000 and n_done % 256 != 0  # a checkpoint between batches, mid-chunk
    assert model.calls - before == len(sizes) - int(np.searchsorted(bounds, n_done))
    clean = ee.explore(model, batches, LAYERS, out=tmp_path / "clean", progress=False)
    assert_same_run(resumed, clean)


def test_other_arguments_start_over(run_dir: Path, small_chunks: None, xy2000: Any) -> None:
    model = MLP()
    handle = stop_after(model, 20, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    handle.remove()
    before = model.calls
    run = ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=100, progress=False)  # other batches
    assert model.calls - before == 20
    assert run.manifest["timings"]["resumed_at"] == 0


def test_recompute_ignores_a_checkpoint(run_dir: Path, small_chunks: None, xy2000: Any) -> None:
    model = MLP()
    handle = stop_after(model, 20, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    handle.remove()
    before = model.calls
    ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False, recompute=True)
    assert model.calls - before == 32


def test_a_one_pass_generator_starts_over_and_leaves_nothing(
    run_dir: Path, small_chunks: None, xy2000: Any
) -> None:
    x, y = xy2000

    def generator() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, 2000, 100):
            yield x[start : start + 100], y[start : start + 100]

    model = MLP()
    handle = stop_after(model, 15, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, generator(), LAYERS, out=run_dir, progress=False)
    handle.remove()
    assert leftovers(run_dir) == []  # no fingerprint, so no checkpoint to resume from


def test_a_checkpoint_whose_files_are_gone_starts_over(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any
) -> None:
    model = MLP()
    handle = stop_after(model, 20, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    handle.remove()
    shutil.rmtree(staging_path(run_dir) / "arrays.zarr" / "activations" / "01_fc1")
    before = model.calls
    run = ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    assert model.calls - before == 32 and run.manifest["timings"]["resumed_at"] == 0
    clean = ee.explore(model, xy2000, LAYERS, out=tmp_path / "clean", batch_size=64, progress=False)
    assert_same_run(run, clean)


# ---- review 7: commit failures, unreadable checkpoints, collate functions -------------------
def test_a_failing_commit_keeps_the_finished_extraction_resumable(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as failing:
        failing.setattr(RunWriter, "commit", _disk_full)  # e.g. ENOSPC writing manifest.json
        model = MLP()
        with pytest.raises(OSError):
            ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, render=texts(2000), progress=False)
    assert (staging_path(run_dir) / FOLDER / CHECKPOINT).exists()
    before = model.calls
    resumed = ee.explore(
        model, xy2000, LAYERS, out=run_dir, batch_size=64, render=texts(2000), progress=False
    )
    # checkpoints every 256 rows (4 batches of 64): the last at 1792, so 4 of 32 batches run again
    assert model.calls - before == 4 and resumed.manifest["timings"]["resumed_at"] == 1792
    assert leftovers(run_dir) == ["r"] and not (run_dir / FOLDER).exists()
    clean = ee.explore(
        model, xy2000, LAYERS, out=tmp_path / "clean", batch_size=64, render=texts(2000), progress=False
    )
    assert_same_run(resumed, clean)


@pytest.mark.parametrize(
    "corrupt",
    [
        lambda meta: {k: v for k, v in meta.items() if k != "batches_with_labels"},  # an older layout
        lambda meta: None,
        lambda meta: {**meta, "dims": None},
        lambda meta: {**meta, "renderer": {"kind": None}},
    ],
    ids=["missing-key", "null", "null-dims", "bad-renderer"],
)
def test_an_unreadable_checkpoint_starts_over(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, corrupt: Any, caplog: Any
) -> None:
    model = MLP()
    handle = stop_after(model, 20, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    handle.remove()
    path = staging_path(run_dir) / FOLDER / CHECKPOINT
    path.write_text(json.dumps(corrupt(json.loads(path.read_text()))))
    before = model.calls
    run = ee.explore(model, xy2000, LAYERS, out=run_dir, batch_size=64, progress=False)
    assert model.calls - before == 32 and run.manifest["timings"]["resumed_at"] == 0
    assert "starting over" in caplog.text
    clean = ee.explore(model, xy2000, LAYERS, out=tmp_path / "clean", batch_size=64, progress=False)
    assert_same_run(run, clean)


def _collate(items: list[tuple[torch.Tensor, torch.Tensor]], scale: float) -> Any:
    xs, ys = zip(*items, strict=True)
    return torch.stack(xs) * scale, torch.stack(ys)


def test_a_loader_with_another_partial_collate_starts_over(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any
) -> None:
    def loader(scale: float) -> DataLoader[Any]:
        return DataLoader(
            TensorDataset(*xy2000), batch_size=64, collate_fn=functools.partial(_collate, scale=scale)
        )

    model = MLP()
    handle = stop_after(model, 20, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, loader(2.0), ["input", "fc1"], out=run_dir, progress=False)
    handle.remove()
    run = ee.explore(model, loader(3.0), ["input", "fc1"], out=run_dir, progress=False)
    assert run.manifest["timings"]["resumed_at"] == 0
    np.testing.assert_allclose(run["input"].activations[:], xy2000[0].numpy() * 3.0, rtol=1e-6)


def test_a_finished_run_is_not_reused_for_another_lambda_collate(
    run_dir: Path, small_chunks: None, xy2000: Any
) -> None:
    dataset, layers = TensorDataset(*xy2000), ["input", "fc1"]
    twice = DataLoader(dataset, batch_size=64, collate_fn=lambda b: _collate(b, 2.0))
    thrice = DataLoader(dataset, batch_size=64, collate_fn=lambda b: _collate(b, 3.0))
    thrice_again = DataLoader(dataset, batch_size=64, collate_fn=lambda b: _collate(b, 3.0))
    model = MLP()
    ee.explore(model, twice, layers, out=run_dir, progress=False)
    before = model.calls
    run = ee.explore(model, thrice, layers, out=run_dir, progress=False)
    assert model.calls - before == 32  # recomputed, not reused
    np.testing.assert_allclose(run["input"].activations[:], xy2000[0].numpy() * 3.0, rtol=1e-6)
    before = model.calls
    ee.explore(model, thrice_again, layers, out=run_dir, progress=False)
    assert model.calls == before  # the same collate (another lambda object) is reused
