"""store.generation: a run replaced on disk while it is open is never read as a mix of two runs.

A held ``Run`` raises ``RunReplacedError`` once its directory holds another commit; ``open_run``
during a replacement opens the old or the new run, whole."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import embedding_explorer as ee
from embedding_explorer.store.format import MANIFEST
from embedding_explorer.store.generation import GenerationWatch, read_generation
from support import tagged_run


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ee.Run]:
    """Runs A and B in folders of their own: what every read of a replaced run must equal."""
    root = tmp_path_factory.mktemp("generations")
    return {tag: tagged_run(root / tag, tag) for tag in "AB"}


def test_every_commit_gets_a_new_generation(tmp_path: Path) -> None:
    first = tagged_run(tmp_path / "r", "A")
    again = tagged_run(tmp_path / "r", "A")
    assert first.generation != again.generation and len(again.generation) == 32
    assert first.manifest["generation"] == first.generation
    assert read_generation(tmp_path / "r" / MANIFEST) == again.generation


def test_held_run_raises_after_replacement_naming_both_generations(tmp_path: Path) -> None:
    held = tagged_run(tmp_path / "r", "A")
    old = held.generation
    _ = held["fc1"].scores  # read (and kept) before the replacement
    new = tagged_run(tmp_path / "r", "B")
    reads = {
        "scores": lambda: held["fc1"].scores,
        "mean": lambda: held["fc1"].mean,
        "activations": lambda: held["fc2"].activations[:4],
        "rendering": lambda: held.rendering(0),
        "samples": lambda: held.samples,
    }
    for name, read in reads.items():
        with pytest.raises(ee.RunReplacedError) as caught:
            read()
        message = str(caught.value)
        assert f"generation {old} -> {new.generation}" in message, name
        assert f"ee.open_run({str(tmp_path / 'r')!r})" in message
    assert ee.open_run(tmp_path / "r").rendering(0) == b"B-0"


def test_reads_through_zarr_indexers_raise_after_replacement(tmp_path: Path) -> None:
    """``.oindex``, ``.vindex``, ``.blocks`` and ``get_*_selection`` of a held run's arrays are
    checked like plain indexing: after a replacement they raise, never return the new run's rows."""
    held = tagged_run(tmp_path / "r", "A")
    activations = held["fc2"].activations
    rows = np.asarray(activations.oindex[[0, 1], :])  # read (and checked) before the replacement
    np.testing.assert_array_equal(rows, activations[:2])
    tagged_run(tmp_path / "r", "B")
    reads = {
        "oindex": lambda: activations.oindex[[0, 1], :],
        "vindex": lambda: activations.vindex[[0, 1], [0, 1]],
        "blocks": lambda: activations.blocks[0],
        "get_basic_selection": lambda: activations.get_basic_selection(slice(0, 2)),
        "get_orthogonal_selection": lambda: activations.get_orthogonal_selection(([0, 1], slice(None))),
        "get_coordinate_selection": lambda: activations.get_coordinate_selection(([0, 1], [0, 1])),
        "get_mask_selection": lambda: activations.get_mask_selection(np.ones(activations.shape, bool)),
        "get_block_selection": lambda: activations.get_block_selection(0),
    }
    for name, read in reads.items():
        with pytest.raises(ee.RunReplacedError):
            read()
            pytest.fail(f"{name} read the new run")


def test_held_run_of_a_deleted_directory_says_so(tmp_path: Path) -> None:
    held = tagged_run(tmp_path / "r", "A")
    shutil.rmtree(tmp_path / "r")
    with pytest.raises(ee.RunReplacedError, match="-> none: deleted"):
        held.rendering(1)


def test_an_unchanged_run_is_not_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is one stat of manifest.json: the manifest is read again only when it changed."""
    run = tagged_run(tmp_path / "r", "A")
    calls = []
    monkeypatch.setattr(
        "embedding_explorer.store.generation.read_generation", lambda m: calls.append(m) or run.generation
    )
    for i in range(5):
        assert run.rendering(i) == f"A-{i}".encode()
    assert calls == []


def test_watch_reads_again_when_the_manifest_changed(tmp_path: Path) -> None:
    run = tagged_run(tmp_path / "r", "A")
    watch = GenerationWatch(run.location, run.generation, None)  # a stamp that never matches
    assert watch.current() == run.generation
    watch.check()


def replace_repeatedly(out: Path, times: int, stop: threading.Event, errors: list[BaseException]) -> None:
    try:
        for i in range(times):
            tagged_run(out, "AB"[i % 2])
    except BaseException as error:  # reported by the test
        errors.append(error)
    finally:
        stop.set()


def test_reads_while_another_thread_replaces_the_run_never_mix(
    tmp_path: Path, references: dict[str, ee.Run]
) -> None:
    """Issue 12, item 2: a Run held across a replacement read mixed data, and open_run during a
    replacement returned mismatched runs. Every read is now of one run, or refused."""
    out = tmp_path / "r"
    tagged_run(out, "B")
    stop, errors = threading.Event(), []
    writer = threading.Thread(target=replace_repeatedly, args=(out, 6, stop, errors))
    expected = {
        tag: (np.asarray(ref["fc2"].activations[...]), ref["fc1"].scores) for tag, ref in references.items()
    }
    held = ee.open_run(out)
    tag = held.name[-1]
    outcomes = {"consistent": 0, "replaced": 0, "opened": 0, "not there": 0}
    mixed: list[str] = []
    writer.start()
    i = 0
    while not stop.is_set() or i < 50:
        i += 1
        sample = i % 48
        try:  # a held run: its own data, or RunReplacedError
            text = held.rendering(sample)
            rows = np.asarray(held["fc2"].activations[sample : sample + 1])
            if text != f"{tag}-{sample}".encode() or not np.array_equal(
                rows, expected[tag][0][sample : sample + 1]
            ):
                mixed.append(f"held {tag}: sample {sample} read {text!r}")
            outcomes["consistent"] += 1
        except ee.RunReplacedError:
            outcomes["replaced"] += 1
        try:  # a fresh open: one whole run
            run = ee.open_run(out)
            now = run.name[-1]
            text = run.rendering(sample)
            scores = run["fc1"].scores
            if text != f"{now}-{sample}".encode() or not np.array_equal(scores, expected[now][1]):
                mixed.append(f"opened {now}: sample {sample} read {text!r}")
            outcomes["opened"] += 1
        except ee.RunReplacedError:
            outcomes["replaced"] += 1
        except (FileNotFoundError, ee.IncompleteRunError):
            outcomes["not there"] += 1
    writer.join()
    assert not errors
    assert mixed == []
    assert outcomes["replaced"] > 0 and outcomes["opened"] > 0, outcomes
    with pytest.raises(ee.RunReplacedError):
        held.rendering(0)


def test_reads_while_another_process_replaces_the_run_never_mix(
    tmp_path: Path, references: dict[str, ee.Run]
) -> None:
    """The same with a real second process running explore to the folder (as a user re-running a
    script while a notebook holds the run)."""
    out = tmp_path / "r"
    tagged_run(out, "A")
    held = ee.open_run(out)
    script = (
        "import sys; from pathlib import Path; from support import tagged_run\n"
        "for i in range(4): tagged_run(Path(sys.argv[1]), 'BA'[i % 2])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    writer = subprocess.Popen([sys.executable, "-c", script, str(out)], env=env)
    try:
        mixed, replaced, opened = read_during_replacements(writer, held, out, references)
    finally:
        writer.kill()
        writer.wait()
    assert writer.returncode == 0
    assert mixed == []
    assert replaced > 0 and opened > 0


def read_during_replacements(
    writer: subprocess.Popen[bytes], held: ee.Run, out: Path, references: dict[str, ee.Run]
) -> tuple[list[str], int, int]:
    """Read ``held`` and freshly opened runs while ``writer`` replaces the run at ``out``: the
    reads that mixed two runs, the reads refused as replaced, and the opens that succeeded."""
    mixed: list[str] = []
    replaced = opened = i = 0
    while writer.poll() is None or i < 30:
        i += 1
        sample = i % 48
        try:
            if held.rendering(sample) != f"A-{sample}".encode():
                mixed.append(f"held A read sample {sample} of another run")
        except ee.RunReplacedError:
            replaced += 1
        try:
            run = ee.open_run(out)
            tag = run.name[-1]
            texts = [run.rendering(sample), run.rendering((sample + 7) % 48)]
            if texts != [
                f"{tag}-{sample}".encode(),
                f"{tag}-{(sample + 7) % 48}".encode(),
            ] or not np.array_equal(run["fc1"].scores, references[tag]["fc1"].scores):
                mixed.append(f"opened {tag}: {texts}")
            opened += 1
        except (ee.RunReplacedError, FileNotFoundError, ee.IncompleteRunError):
            pass
    return mixed, replaced, opened


def test_run_at_an_object_store_url_replaced_in_place_is_refused(tmp_path: Path) -> None:
    """Object stores have no rename: the run is rewritten under its prefix and the generation is
    checked with one ``info`` call on its manifest."""
    url = f"memory://generation-{tmp_path.name}/r"
    held = tagged_run(url, "A")
    assert held.rendering(1) == b"A-1"
    tagged_run(url, "B")
    with pytest.raises(ee.RunReplacedError, match=f"run at {url} was replaced"):
        held.rendering(1)
    assert ee.open_run(url).rendering(1) == b"B-1"


def test_file_inventory_of_a_run_swapped_while_opening_is_replaced_not_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inventory check compares the opened manifest with the files listed a moment later: a
    swap between the two is a replacement (opened again), not damage (it failed once under load)."""
    from embedding_explorer.store import reader as reader_module
    from embedding_explorer.store.reader import RunReader

    out = tmp_path / "r"
    tagged_run(out, "A")
    checks = {"n": 0}
    real_check = reader_module.check_files

    def swap_then_find_a_file_missing(location: object, manifest: dict[str, object]) -> None:
        checks["n"] += 1
        if checks["n"] == 1:
            tagged_run(out, "B")
            raise ee.DamagedRunError(f"the run at {out} is damaged: a file is missing")
        real_check(location, manifest)

    monkeypatch.setattr(reader_module, "check_files", swap_then_find_a_file_missing)
    with pytest.raises(ee.RunReplacedError, match="was replaced"):
        RunReader(out)
    checks["n"] = 0
    assert ee.open_run(out).name == "run-B"
    assert checks["n"] >= 2  # refused once as replaced, then opened again
