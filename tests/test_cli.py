"""The embedding-explorer command: info, demo (without serving), errors."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import cli


def small_run_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    model = small_run_model()
    x = torch.randn(120, 1, 4, 4)
    y = torch.arange(120) % 3
    out = tmp_path_factory.mktemp("runs") / "small"
    return ee.explore(model, torch.utils.data.TensorDataset(x, y), ["1", "3"], out=out, progress=False)


def test_info_prints_layers_and_variance(small_run: ee.Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", str(small_run.path)]) == 0
    text = capsys.readouterr().out
    assert "120 samples" in text
    first = f"{100 * small_run['1'].explained_variance_ratio[0]:5.1f}%"
    assert first in text and "D=8" in text and "D=3" in text


def test_info_json_matches_run(small_run: ee.Run, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["info", str(small_run.path), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_samples"] == 120
    assert [layer["name"] for layer in info["layers"]] == ["1", "3"]
    for entry in info["layers"]:
        expected = small_run[entry["name"]].explained_variance_ratio
        assert np.allclose(entry["explained_variance_ratio"], expected, atol=1e-6)
        assert entry["dim"] == small_run[entry["name"]].dim


def test_info_on_missing_or_unfinished_run_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["info", str(tmp_path / "nothing")]) == 2
    assert "no run at" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    assert cli.main(["info", str(tmp_path / "half")]) == 2
    assert "did not finish" in capsys.readouterr().err


def test_console_script_is_installed(small_run: ee.Run) -> None:
    exe = Path(sys.executable).with_name("embedding-explorer")
    out = subprocess.run([str(exe), "info", str(small_run.path), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == small_run.name


def test_demo_without_serving_builds_and_summarises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from embedding_explorer.demos import cnn, fashion_mnist, runner

    try:
        fashion_mnist.find_fashion_mnist(download=False)
    except FileNotFoundError:  # pragma: no cover
        pytest.skip("Fashion-MNIST is not installed")
    monkeypatch.setattr(runner, "load_or_train_cnn", lambda **kw: (cnn.untrained_cnn(seed=1), 0.1))
    argv = ["demo", "--no-serve", "--quiet", "--limit", "300", "--token-glosses", "40"]
    argv += ["--out", str(tmp_path)]
    code = cli.main(argv)
    assert code == 0
    text = capsys.readouterr().out
    assert runner.TRAINED in text and runner.UNTRAINED in text and "PC1" in text
    assert "wordnet-minilm-tokens" in text and "tokens of 40 glosses" in text  # the per-token run
    assert ee.open_run(tmp_path / runner.TRAINED).n_samples == 300


# ---- export and report -------------------------------------------------------------------------
def test_export_writes_the_tables(
    small_run: ee.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow.parquet as pq

    out = tmp_path / "tables"
    assert cli.main(["export", str(small_run.path), "--to", str(out), "--format", "parquet", "--n", "3"]) == 0
    assert "wrote 8 files for 2 layers" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{layer}.{table}.parquet"
        for layer in ("1", "3")
        for table in ("scores", "extremes", "associations", "variance")
    )
    scores = pq.read_table(out / "3.scores.parquet")
    np.testing.assert_array_equal(
        np.column_stack([scores[f"PC{c + 1}"].to_numpy() for c in range(3)]), small_run["3"].scores
    )
    assert len(pq.read_table(out / "1.extremes.parquet")) == small_run["1"].n_components * 2 * 3
    assert cli.main(["export", str(small_run.path), "--to", str(out)]) == 0  # both formats, replaced in place
    assert len(list(out.glob("*.csv"))) == 8 and len(list(out.glob("*.parquet"))) == 8


def test_report_writes_one_html_file(
    small_run: ee.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "shared" / "report.html"
    assert cli.main(["report", str(small_run.path), "-o", str(out), "--n", "4"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    text = out.read_text()
    components = sum(layer.n_components for layer in small_run)
    assert text.startswith("<!DOCTYPE html>") and text.count('class="component"') == components
    # the findings come first, each sentence as run.insights() words it
    assert text.index('id="insights"') < text.index('class="layer"')
    for sentence in small_run.insights()["sentence"]:
        assert html.escape(sentence) in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "{missing}", "--to", "{tmp}/x"], "no run at"),
        (["export", "{run}", "--to", "{tmp}/x", "--n", "0"], "n=0 must be a positive integer"),
        (["export", "{run}", "--to", "{file}"], "exists and is not a folder"),
        (["report", "{missing}", "-o", "{tmp}/r.html"], "no run at"),
        (["report", "{run}", "-o", "{tmp}"], "is a folder; give a file name such as report.html"),
    ],
)
def test_export_and_report_errors_exit_2_with_one_line(
    small_run: ee.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "file").write_text("x")
    fields = {"missing": tmp_path / "none", "tmp": tmp_path, "run": small_run.path, "file": tmp_path / "file"}
    assert cli.main([a.format(**fields) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("embedding-explorer: error: ") and err.count("\n") == 1


def test_insights_prints_the_findings(
    small_run: ee.Run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = ee.explore(
        small_run_model(),
        torch.randn(60, 1, 4, 4) + 2,  # shifted data: a data-set shift to find
        ["1", "3"],
        out=tmp_path / "other",
        name="other",
        progress=False,
    )
    assert cli.main(["insights", str(small_run.path)]) == 0
    text = capsys.readouterr().out
    assert small_run.insights().empty  # its labels do not follow the data: nothing significant
    assert text.startswith("no findings above the documented thresholds")
    assert cli.main(["insights", str(small_run.path), "--compare", str(other.path)]) == 0
    text = capsys.readouterr().out
    table = small_run.insights(compare=other)
    assert text.startswith("strength  kind") and not table.empty
    for sentence in table["sentence"]:
        assert sentence in text
    assert cli.main(["insights", str(small_run.path), "--compare", str(other.path), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["sentence"] for r in records] == small_run.insights(compare=other)["sentence"].tolist()
    assert any(r["kind"] == "dataset_shift" and r["other"] == "other" for r in records)


@pytest.mark.parametrize("command", ["explore", "vectors"])
@pytest.mark.parametrize("value", ["0", "-5"])
def test_a_batch_size_below_one_is_refused_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, value: str
) -> None:
    argv = ["explore", "--model", "net.py:build", "--data", "images", "--layers", "1"]
    if command == "vectors":
        argv = ["vectors", str(tmp_path / "v.npz")]
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--batch-size", value, "--out", str(tmp_path / "run")])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith(f"error: argument --batch-size: {value} must be a positive integer (1 or more)\n"), (
        err
    )
    assert not (tmp_path / "run").exists()


def test_options_for_a_model_over_data_are_refused_with_vectors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.savez(tmp_path / "v.npz", a=np.random.default_rng(0).normal(size=(6, 3)))
    base = ["explore", "--vectors", str(tmp_path / "v.npz"), "--out", str(tmp_path / "run"), "--quiet"]
    extra = ["--limit", "3", "--labels", "y", "--reduce", "mean", "--dtype", "float32", "--no-pretrained"]
    assert cli.main([*base, *extra, "--weights", "w.pt"]) == 2
    assert capsys.readouterr().err == (
        "embedding-explorer: error: --vectors builds a run from stored vectors: drop --labels, --limit, "
        "--dtype, --reduce, --no-pretrained, --weights (for a model over data, not for vectors)\n"
    )
    assert not (tmp_path / "run").exists()
    argv = ["explore", "--model", "m.py:build", "--data", "d", "--layers", "1", "--vector-column", "a"]
    assert cli.main(argv) == 2
    assert "--vector-column is for --vectors PATH: drop it" in capsys.readouterr().err
    assert cli.main(base) == 0  # the same without them: a run
    assert ee.open_run(tmp_path / "run").n_samples == 6


def test_a_reader_that_stops_reading_ends_the_command_quietly(
    small_run: ee.Run, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class ClosedPipe:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["info", str(small_run.path)]) == 1  # as `... | head -1` ends it
    assert capsys.readouterr().err == ""
