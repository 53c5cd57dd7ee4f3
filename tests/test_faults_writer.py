"""Faults on the writing side: two writers, a killed writer, lost or damaged staged files and
checkpoints, a full disk. Each ends in a clear error or in a run equal to a clean one."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import IncompleteRunError, RunLockedError
from embedding_explorer.resume import CHECKPOINT, FOLDER
from embedding_explorer.store.format import RENDERINGS, staging_path
from embedding_explorer.store.lock import lock_path
from support import MLP, assert_same_run, leftovers

LAYERS = ["input", "fc1", "fc2"]

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import torch
    from torch import nn
    import embedding_explorer as ee
    from embedding_explorer import extract

    extract.CHECKPOINT_SECONDS = 0.0  # a checkpoint at every point, as in the other tests
    LAYERS = ["0", "2"]

    def model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 4))

    def data():
        return torch.randn(3000, 8, generator=torch.Generator().manual_seed(1))

    if __name__ == "__main__":
        out, started, go, mode = sys.argv[1:5]
        m, calls = model(), [0]
        def hold(module, args):
            calls[0] += 1
            if calls[0] == 12:  # part way, after a checkpoint
                Path(started).write_text(str(os.getpid()))
                if mode == "die":
                    os._exit(9)  # no cleanup at all, as with SIGKILL
                while not Path(go).exists():
                    time.sleep(0.05)
        m.register_forward_pre_hook(hold)
        import embedding_explorer.store.format as fmt
        fmt.CHUNK_BYTES = 1  # 256-row chunks: checkpoints every few batches
        ee.explore(m, data(), LAYERS, out=out, batch_size=64, progress=False)
    """
)


@pytest.fixture
def writer_script(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    namespace: dict[str, Any] = {}
    exec(compile(WRITER, str(script), "exec"), namespace)  # the same model and data here
    return script, namespace


def _start_writer(script: Path, out: Path, tmp_path: Path, mode: str) -> tuple[subprocess.Popen[bytes], Path]:
    started, go = tmp_path / f"started-{mode}", tmp_path / f"go-{mode}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen([sys.executable, str(script), str(out), str(started), str(go), mode], env=env)
    for _ in range(2400):
        if started.exists():
            return process, go
        if process.poll() is not None and mode != "die":
            raise AssertionError(f"the writer ended early with {process.returncode}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("the writer never reached its hold point")


def _explore(namespace: dict[str, Any], out: Path, **kwargs: Any) -> tuple[ee.Run, int]:
    model, calls = namespace["model"](), [0]
    model.register_forward_pre_hook(lambda module, args: calls.__setitem__(0, calls[0] + 1))
    run = ee.explore(
        model, namespace["data"](), namespace["LAYERS"], out=out, batch_size=64, progress=False, **kwargs
    )
    return run, calls[0]


def test_a_second_writer_is_refused_naming_the_first_then_waits_and_reuses_its_run(
    tmp_path: Path, writer_script: tuple[Path, dict[str, Any]], small_chunks: None, caplog: Any
) -> None:
    script, namespace = writer_script
    out = tmp_path / "runs" / "r"
    process, go = _start_writer(script, out, tmp_path, "hold")
    try:
        with pytest.raises(RunLockedError, match=rf"process {process.pid} on .*wait=True"):
            _explore(namespace, out)
        assert process.poll() is None and not out.exists()  # the first writer is untouched

        result: dict[str, Any] = {}

        def second() -> None:
            try:
                result["run"], result["calls"] = _explore(namespace, out, wait=True)
            except BaseException as error:  # reported below
                result["error"] = error

        caplog.set_level(logging.INFO, logger="embedding_explorer.store.lock")
        thread = threading.Thread(target=second)
        thread.start()
        for _ in range(2400):  # the second writer says it waits, then the first goes on
            if "waiting for process" in caplog.text or not thread.is_alive():
                break
            time.sleep(0.05)
        assert f"waiting for process {process.pid}" in caplog.text
        go.touch()
        thread.join(timeout=300)
        assert process.wait(timeout=300) == 0
    finally:
        go.touch()
        if process.poll() is None:
            process.kill()
    assert "error" not in result, result.get("error")
    assert result["calls"] == 0  # the first writer's run was reused as it is
    clean, _ = _explore(namespace, tmp_path / "clean")
    assert_same_run(ee.open_run(out), clean)
    assert leftovers(out) == ["r"]  # neither a staging folder nor a lock is left


def test_the_lock_of_a_killed_writer_is_taken_over_and_its_run_resumes(
    tmp_path: Path, writer_script: tuple[Path, dict[str, Any]], small_chunks: None
) -> None:
    script, namespace = writer_script
    out = tmp_path / "runs" / "r"
    process, _ = _start_writer(script, out, tmp_path, "die")
    assert process.wait(timeout=300) == 9
    assert lock_path(out).exists() and (staging_path(out) / FOLDER / CHECKPOINT).exists()
    run, calls = _explore(namespace, out)  # wait=False: the dead process's lock is no obstacle
    assert run.manifest["timings"]["resumed_at"] > 0 and calls < 3000 // 64 + 1
    clean, _ = _explore(namespace, tmp_path / "clean")
    assert_same_run(run, clean)
    assert leftovers(out) == ["r"]


# ---- lost and damaged staged files -----------------------------------------------------------------
@pytest.fixture
def xy2000() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(5)
    return torch.randn(2000, 8, generator=g), torch.randint(0, 4, (2000,), generator=g)


def _stop_after(model: nn.Module, calls: int) -> Any:
    seen = [0]

    def hook(module: nn.Module, args: Any) -> None:
        seen[0] += 1
        if seen[0] > calls:
            raise KeyboardInterrupt

    return model.register_forward_pre_hook(hook)


def _stopped(run_dir: Path, xy: Any, calls: int = 20, **kwargs: Any) -> MLP:
    model = MLP()
    handle = _stop_after(model, calls)
    with pytest.raises(KeyboardInterrupt):
        ee.explore(model, xy, LAYERS, out=run_dir, batch_size=64, progress=False, **kwargs)
    handle.remove()
    assert (staging_path(run_dir) / FOLDER / CHECKPOINT).exists()
    return model


def _truncate(path: Path, keep: float = 0.5) -> None:
    with open(path, "r+b") as f:
        f.truncate(int(path.stat().st_size * keep))


def _resumed_run(tmp_path: Path, run_dir: Path, model: MLP, xy: Any, **kwargs: Any) -> tuple[ee.Run, int]:
    """The run the next call makes (checked equal to a clean run) and how many batches it ran."""
    before = model.calls
    run = ee.explore(model, xy, LAYERS, out=run_dir, batch_size=64, progress=False, **kwargs)
    calls = model.calls - before
    clean = ee.explore(model, xy, LAYERS, out=tmp_path / "clean", batch_size=64, progress=False, **kwargs)
    assert_same_run(run, clean)
    return run, calls


def test_a_lost_staged_chunk_starts_over_instead_of_resuming_zeros(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, caplog: Any
) -> None:
    model = _stopped(run_dir, xy2000)
    chunk = staging_path(run_dir) / "arrays.zarr" / "activations" / "01_fc1" / "c" / "1" / "0"
    chunk.unlink()
    run, calls = _resumed_run(tmp_path, run_dir, model, xy2000)
    assert calls == 32 and run.manifest["timings"]["resumed_at"] == 0
    assert str(chunk) in caplog.text and "starting over" in caplog.text
    assert np.abs(run["fc1"].activations[256:512]).sum() > 0


def test_a_truncated_staged_chunk_starts_over(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, caplog: Any
) -> None:
    model = _stopped(run_dir, xy2000)
    chunk = staging_path(run_dir) / "arrays.zarr" / "activations" / "00_input" / "c" / "0" / "0"
    _truncate(chunk)
    run, calls = _resumed_run(tmp_path, run_dir, model, xy2000)
    assert run.manifest["timings"]["resumed_at"] == 0 and calls == 32 and str(chunk) in caplog.text


@pytest.mark.parametrize("damage", ["truncate", "delete"])
@pytest.mark.parametrize("kind", ["state", "labels", "sizes"])
def test_a_damaged_checkpoint_file_starts_over_naming_it(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, caplog: Any, kind: str, damage: str
) -> None:
    texts = [f"sample {i}" for i in range(2000)]
    model = _stopped(run_dir, xy2000, render=texts)
    folder = staging_path(run_dir) / FOLDER
    path = sorted(folder.glob(f"{kind}-*"))[0]  # state: the last one; labels, sizes: the first segment
    if damage == "truncate":
        _truncate(path)
    else:
        path.unlink()
    run, calls = _resumed_run(tmp_path, run_dir, model, xy2000, render=texts)
    assert run.manifest["timings"]["resumed_at"] == 0 and calls == 32
    assert "starting over" in caplog.text and path.name in caplog.text


def test_a_truncated_checkpoint_json_starts_over(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, caplog: Any
) -> None:
    model = _stopped(run_dir, xy2000)
    _truncate(staging_path(run_dir) / FOLDER / CHECKPOINT)
    run, calls = _resumed_run(tmp_path, run_dir, model, xy2000)
    assert run.manifest["timings"]["resumed_at"] == 0 and calls == 32 and CHECKPOINT in caplog.text


def test_truncated_staged_renderings_start_over(
    tmp_path: Path, run_dir: Path, small_chunks: None, xy2000: Any, caplog: Any
) -> None:
    texts = [f"sample {i}" for i in range(2000)]
    model = _stopped(run_dir, xy2000, render=texts)
    _truncate(staging_path(run_dir) / RENDERINGS, 0.2)
    run, calls = _resumed_run(tmp_path, run_dir, model, xy2000, render=texts)
    assert run.manifest["timings"]["resumed_at"] == 0 and calls == 32 and RENDERINGS in caplog.text
    assert run.rendering(1999) == b"sample 1999"


# ---- a full disk -------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (root only; skipped elsewhere), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    try:
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True, capture_output=True
        )
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"cannot mount a tmpfs here: {error}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_full_disk_is_a_clear_error_and_the_next_call_finishes_the_run(
    tmp_path: Path, small_disk: Path, small_chunks: None, caplog: Any
) -> None:
    x = torch.randn(4000, 8, generator=torch.Generator().manual_seed(2))
    model = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Linear(64, 4))  # ~1.2 MB of rows
    out = small_disk / "runs" / "r"
    kwargs: dict[str, Any] = {"batch_size": 64, "progress": False}
    with pytest.raises(OSError) as info:
        ee.explore(model, x, ["0", "2"], out=out, **kwargs)
    assert info.value.errno == errno.ENOSPC
    assert any("is full; nothing was committed" in note for note in getattr(info.value, "__notes__", []))
    with pytest.raises(IncompleteRunError):  # nothing half-written opens as finished
        ee.open_run(out)
    assert not lock_path(out).exists()
    subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    run = ee.explore(model, x, ["0", "2"], out=out, **kwargs)
    clean = ee.explore(model, x, ["0", "2"], out=tmp_path / "clean", **kwargs)
    assert_same_run(run, clean)
    assert leftovers(out) == ["r"]
    shutil.rmtree(out)
