"""The bad-input catalogue: every way a user can get an argument wrong, across the Python API,
the command and the server, gets its own error type, one message naming the argument (or the
file) and the fix, and leaves nothing on disk: no ``out`` folder, no ``.NAME.partial`` staging
folder, no checkpoint."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedding_explorer as ee
from embedding_explorer import cli
from embedding_explorer.exceptions import (
    DamagedRunError,
    DataOrderError,
    EmbeddingExplorerError,
    IncompleteRunError,
    LayerNotFoundError,
    LayerOutputError,
    ManifestError,
    NonFiniteActivationError,
)
from embedding_explorer.pca import StreamingPCA
from embedding_explorer.server import create_app
from support import MLP

with warnings.catch_warnings():  # starlette asks for httpx2; httpx is what the project pins
    from starlette.exceptions import StarletteDeprecationWarning

    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

N = 40
X = torch.randn(N, 8, generator=torch.Generator().manual_seed(0))
Y = torch.arange(N) % 3


@dataclass(frozen=True)
class Env:
    """What a case may use: an empty folder (``tmp``, also the working directory), where its run
    would go (``out``, never created on an input error), a folder of inputs it may write, and a
    finished run of an MLP over ``X`` (layers fc1 and act)."""

    tmp: Path
    inputs: Path
    run: ee.Run
    other: ee.Run

    @property
    def out(self) -> Path:
        return self.tmp / "runs" / "r"


class ComplexOut(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.complex(x, x)


def explore(e: Env, data: Any = X, layers: Any = ("fc1",), model: Any = "mlp", **kwargs: Any) -> ee.Run:
    kwargs.setdefault("out", e.out)
    kwargs.setdefault("progress", False)
    return ee.explore(
        MLP() if model == "mlp" else model,
        data,
        list(layers) if isinstance(layers, tuple) else layers,
        **kwargs,
    )


def with_nan(row: int) -> torch.Tensor:
    x = X.clone()
    x[row, 3] = float("nan")
    return x


def nan_batch(row: int, col: int, value: float = float("nan")) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(10, 4))
    x[row, col] = value
    return x


def state_dict_file(e: Env) -> Path:
    path = e.inputs / "weights.pt"
    torch.save(nn.Linear(3, 2).state_dict(), path)
    return path


def no_manifest(e: Env) -> Path:
    (e.inputs / "half").mkdir()
    return e.inputs / "half"


def bad_json_manifest(e: Env) -> Path:
    folder = e.inputs / "damaged"
    folder.mkdir()
    (folder / "manifest.json").write_text("{not json")
    return folder


def damaged_copy(e: Env, damage: Callable[[Path], object]) -> Path:
    """A copy of the finished run with one thing broken by ``damage``."""
    folder = e.inputs / "copy"
    shutil.copytree(e.run.path, folder)
    damage(folder)
    return folder


def without_name(folder: Path) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["name"]
    (folder / "manifest.json").write_text(json.dumps(manifest))


# ---- the Python API ----------------------------------------------------------------------------
# (id, call, exception type, a pattern the message must contain: the argument, file or layer)
API: list[tuple[str, Callable[[Env], Any], type[BaseException], str]] = [
    (
        "device-cuda",
        lambda e: explore(e, device="cuda:7" if torch.cuda.is_available() else "cuda"),
        EmbeddingExplorerError,
        r"device='cuda",
    ),
    ("device-unknown", lambda e: explore(e, device="gpu"), EmbeddingExplorerError, r"device='gpu'"),
    ("device-type", lambda e: explore(e, device=3.5), EmbeddingExplorerError, r"device=3\.5"),
    ("xy-lengths", lambda e: explore(e, data=(X, Y[:30])), EmbeddingExplorerError, r"40 rows.*30 labels"),
    (
        "xy-lengths-ndarray",
        lambda e: explore(e, data=(X.numpy(), list(range(41)))),
        EmbeddingExplorerError,
        r"40 rows.*41 labels",
    ),
    (
        "dataframe",
        lambda e: explore(e, data=pd.DataFrame(X.numpy())),
        TypeError,
        r"DataFrame.*to_numpy.*metadata=",
    ),
    ("series", lambda e: explore(e, data=pd.Series(np.arange(N))), TypeError, r"pandas Series"),
    (
        "complex-tensor",
        lambda e: explore(e, data=torch.complex(X, X)),
        EmbeddingExplorerError,
        r"data is complex",
    ),
    (
        "complex-ndarray",
        lambda e: explore(e, data=X.numpy() + 1j),
        EmbeddingExplorerError,
        r"data is complex",
    ),
    (
        "complex-input-layer",
        lambda e: explore(e, model=None, layers=["input"], data=torch.complex(X, X)),
        EmbeddingExplorerError,
        r"data is complex",
    ),
    (
        "complex-batches",
        lambda e: explore(e, data=[torch.complex(X[:20], X[:20]), torch.complex(X[20:], X[20:])]),
        EmbeddingExplorerError,
        r"batch of data is complex",
    ),
    (
        "complex-dict-batches",
        lambda e: explore(e, data=[{"x": torch.complex(X, X)}]),
        EmbeddingExplorerError,
        r"batch key 'x' is complex",
    ),
    (
        "complex-layer-output",
        lambda e: explore(e, model=nn.Sequential(ComplexOut()), layers=["0"]),
        LayerOutputError,
        r"layer '0' outputs complex",
    ),
    (
        "complex-reducer-output",
        lambda e: explore(e, reduce={"fc1": ee.Reducer(lambda x: torch.complex(x, x))}),
        LayerOutputError,
        r"layer 'fc1' gives complex values",
    ),
    (
        "compare-models-path",
        lambda e: ee.compare_models(e.run, str(e.run.path)),
        TypeError,
        r"run_b must be a Run",
    ),
    ("name-traversal", lambda e: explore(e, out=None, name="../../x"), ValueError, r"name='\.\./\.\./x'"),
    ("name-separator", lambda e: explore(e, out=None, name="a/b"), ValueError, r"name='a/b'"),
    ("name-backslash", lambda e: explore(e, out=None, name="a\\b"), ValueError, r"name="),
    ("name-dotdot", lambda e: explore(e, out=None, name=".."), ValueError, r"name='\.\.'"),
    ("name-empty", lambda e: explore(e, out=None, name=""), ValueError, r"name=''"),
    ("name-type", lambda e: explore(e, name=5), ValueError, r"name=5"),
    ("max-dense-dim-negative", lambda e: explore(e, max_dense_dim=-5), ValueError, r"max_dense_dim=-5"),
    ("max-dense-dim-zero", lambda e: explore(e, max_dense_dim=0), ValueError, r"max_dense_dim=0"),
    ("max-dense-dim-float", lambda e: explore(e, max_dense_dim=2.5), ValueError, r"max_dense_dim=2\.5"),
    ("batch-size-zero", lambda e: explore(e, batch_size=0), ValueError, r"batch_size=0"),
    ("batch-size-bool", lambda e: explore(e, batch_size=True), ValueError, r"batch_size=True"),
    ("n-components-zero", lambda e: explore(e, n_components=0), ValueError, r"n_components=0"),
    ("n-components-text", lambda e: explore(e, n_components="3"), ValueError, r"n_components='3'"),
    ("storage-dtype", lambda e: explore(e, storage_dtype="int8"), ValueError, r"storage_dtype='int8'"),
    ("labels-length", lambda e: explore(e, labels=np.arange(30)), EmbeddingExplorerError, r"labels has 30"),
    (
        "labels-2d",
        lambda e: explore(e, labels=np.zeros((N, 2))),
        EmbeddingExplorerError,
        r"labels must be one",
    ),
    (
        "labels-objects",
        lambda e: explore(e, labels=[object()] * N),
        EmbeddingExplorerError,
        r"labels .*row 0",
    ),
    (
        "labels-complex",
        lambda e: explore(e, labels=np.arange(N) * 1j),
        EmbeddingExplorerError,
        r"labels .*row",
    ),
    (
        "labels-complex-in-batches",
        lambda e: explore(e, data=[(X[:20], Y[:20] * 1j), (X[20:], Y[20:] * 1j)]),
        EmbeddingExplorerError,
        r"labels of a batch are complex",
    ),
    (
        "metadata-rows",
        lambda e: explore(e, metadata={"a": range(30)}),
        EmbeddingExplorerError,
        r"metadata has 30",
    ),
    (
        "metadata-reserved",
        lambda e: explore(e, metadata={"label": range(N)}),
        EmbeddingExplorerError,
        r"'label'.*reserved",
    ),
    (
        "metadata-ragged",
        lambda e: explore(e, metadata={"a": range(N), "b": range(3)}),
        EmbeddingExplorerError,
        r"metadata must be a table",
    ),
    (
        "metadata-objects",
        lambda e: explore(e, metadata={"a": [object()] * N}),
        EmbeddingExplorerError,
        r"metadata column 'a'.*row 0",
    ),
    (
        "metadata-mixed",
        lambda e: explore(e, metadata={"ok": range(N), "a": [1, "x"] * (N // 2)}),
        EmbeddingExplorerError,
        r"metadata column 'a'.*row 1 holds 'x'",
    ),
    (
        "metadata-nested",
        lambda e: explore(e, metadata={"a": [{"k": 1}, [1]] * (N // 2)}),
        EmbeddingExplorerError,
        r"metadata column 'a'.*row 1",
    ),
    (
        "metadata-checkpointed",
        lambda e: explore(
            e, data=TensorDataset(X, Y), batch_size=8, metadata=pd.DataFrame({"a": [1, "x"] * (N // 2)})
        ),
        EmbeddingExplorerError,
        r"metadata column 'a'",
    ),
    ("layers-empty", lambda e: explore(e, layers=[]), ValueError, r"layers is empty"),
    ("layers-unknown", lambda e: explore(e, layers=["fc9"]), LayerNotFoundError, r"'fc9'.*fc1"),
    ("layers-twice", lambda e: explore(e, layers=["fc1", "fc1"]), ValueError, r"\['fc1'\] more than once"),
    ("layers-call-index", lambda e: explore(e, layers=["fc1:x"]), ValueError, r"'fc1:x'.*call index"),
    (
        "layers-without-model",
        lambda e: explore(e, model=None, layers=["fc1"]),
        ValueError,
        r"'fc1' needs a model",
    ),
    ("layers-type", lambda e: explore(e, layers=[3]), TypeError, r"layer names are strings"),
    (
        "model-path",
        lambda e: explore(e, model="weights.pt"),
        EmbeddingExplorerError,
        r"model spec 'weights\.pt' is a path to weights, not a model: .*from_state_dict",
    ),
    ("model-type", lambda e: explore(e, model=42), TypeError, r"model must be"),
    ("model-factory", lambda e: explore(e, model=lambda: 3), TypeError, r"factory returned int"),
    (
        "from-state-dict-missing",
        lambda e: explore(e, model=ee.from_state_dict(lambda: nn.Linear(3, 2), e.inputs / "none.pt")),
        FileNotFoundError,
        r"none\.pt",
    ),
    (
        "from-state-dict-shapes",
        lambda e: explore(
            e, model=ee.from_state_dict(lambda: nn.Linear(4, 2), state_dict_file(e)), layers=["input"]
        ),
        EmbeddingExplorerError,
        r"weights\.pt does not fit Linear: .*size mismatch for weight",
    ),
    ("data-one-sample", lambda e: explore(e, data=X[:1]), EmbeddingExplorerError, r"1 samples"),
    (
        "data-string",
        lambda e: explore(e, data="no/images/"),
        EmbeddingExplorerError,
        r"data 'no/images/': no such file or folder",
    ),
    ("data-scalar", lambda e: explore(e, data=torch.tensor(3.0)), EmbeddingExplorerError, r"0-d"),
    (
        "data-shuffled",
        lambda e: explore(e, data=DataLoader(TensorDataset(X), batch_size=8, shuffle=True)),
        DataOrderError,
        r"RandomSampler",
    ),
    (
        "data-nan",
        lambda e: explore(e, data=with_nan(13), batch_size=8),
        NonFiniteActivationError,
        r"layer 'fc1'.*sample 13",
    ),
    (
        "data-nan-checkpointed",
        lambda e: explore(e, data=TensorDataset(with_nan(33)), batch_size=8),
        NonFiniteActivationError,
        r"sample 33",
    ),
    ("data-batch-triple", lambda e: explore(e, data=[(X, Y, Y)]), EmbeddingExplorerError, r"3 elements"),
    (
        "client-iterable",
        lambda e: explore(e, data=iter([X]), client=object()),
        EmbeddingExplorerError,
        r"client=.*indexable",
    ),
    (
        "pca-nan",
        lambda e: StreamingPCA(2).partial_fit(nan_batch(3, 2)),
        NonFiniteActivationError,
        r"nan at row 3, feature 2",
    ),
    (
        "pca-inf-tensor",
        lambda e: StreamingPCA(2).partial_fit(torch.from_numpy(nan_batch(5, 0, np.inf))),
        NonFiniteActivationError,
        r"inf at row 5, feature 0",
    ),
    (
        "pca-nan-later-batch",
        lambda e: StreamingPCA(2).partial_fit(nan_batch(0, 0, 1.0)).partial_fit(nan_batch(2, 1)),
        NonFiniteActivationError,
        r"sample 12",
    ),
    (
        "pca-nan-fit",
        lambda e: StreamingPCA(2).fit(nan_batch(4, 3)),
        NonFiniteActivationError,
        r"row 4, feature 3",
    ),
    (
        "pca-complex",
        lambda e: StreamingPCA(2).partial_fit(nan_batch(0, 0, 1.0) + 1j),
        EmbeddingExplorerError,
        r"x is complex",
    ),
    (
        "pca-strings",
        lambda e: StreamingPCA(2).partial_fit(np.array([["a", "b"], ["c", "d"]])),
        EmbeddingExplorerError,
        r"x holds <U1",
    ),
    ("pca-1d", lambda e: StreamingPCA(2).partial_fit(np.zeros(5)), ValueError, r"shape \(5,\)"),
    (
        "pca-features",
        lambda e: StreamingPCA(2).partial_fit(np.ones((4, 3))).partial_fit(np.ones((4, 5))),
        ValueError,
        r"5 features.*3",
    ),
    ("serve-port", lambda e: ee.serve(e.run, port=99999, block=False), ValueError, r"port=99999.*65535"),
    ("serve-port-negative", lambda e: ee.serve(e.run, port=-1, block=False), ValueError, r"port=-1"),
    ("open-run-missing", lambda e: ee.open_run(e.inputs / "nowhere"), FileNotFoundError, r"nowhere"),
    ("open-run-no-manifest", lambda e: ee.open_run(no_manifest(e)), IncompleteRunError, r"half"),
    ("open-run-int", lambda e: ee.open_run(123), TypeError, r"path must be .*not int 123"),
    (
        "open-run-bad-json",
        lambda e: ee.open_run(bad_json_manifest(e)),
        ManifestError,
        r"manifest\.json: not valid JSON",
    ),
    (
        "open-run-no-name",
        lambda e: ee.open_run(damaged_copy(e, without_name)),
        ManifestError,
        r"manifest\.json.*'name'",
    ),
    (
        "open-run-no-samples",
        lambda e: ee.open_run(damaged_copy(e, lambda f: (f / "samples.parquet").unlink())),
        DamagedRunError,
        r"samples\.parquet is missing",
    ),
    ("layer-unknown", lambda e: e.run["fc9"], LayerNotFoundError, r"'fc9'"),
    (
        "layer-association-column",
        lambda e: e.run["fc1"].association("nope"),
        EmbeddingExplorerError,
        r"'nope'",
    ),
    ("layer-pc-correlation", lambda e: e.run.pc_correlation("fc1", "fc9"), LayerNotFoundError, r"'fc9'"),
    ("layer-project", lambda e: e.run["fc1"].project(np.zeros((2, 3))), ValueError, r"3"),
    ("export-format", lambda e: ee.export_run(e.run, e.tmp / "x", formats="xml"), ValueError, r"'xml'"),
    ("export-n", lambda e: ee.export_run(e.run, e.tmp / "x", n=0), ValueError, r"n=0"),
    (
        "compare-datasets-models",
        lambda e: ee.compare_datasets(e.run, e.other),
        EmbeddingExplorerError,
        r"different models",
    ),
    (
        "compare-datasets-layers",
        lambda e: ee.compare_datasets(e.run, e.run, layers=["fc9"]),
        LayerNotFoundError,
        r"'fc9'",
    ),
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[ee.Run, ee.Run]:
    folder = tmp_path_factory.mktemp("finished")
    torch.manual_seed(0)
    run = ee.explore(MLP(), X, ["fc1", "act"], out=folder / "mlp", labels=Y, progress=False)
    other = ee.explore(MLP(d_in=8, hidden=6), X, ["fc1"], out=folder / "other", progress=False)
    return run, other


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, runs: tuple[ee.Run, ee.Run]) -> Iterator[Env]:
    work = tmp_path / "work"
    inputs = tmp_path / "inputs"
    work.mkdir()
    inputs.mkdir()
    monkeypatch.chdir(work)  # a default out (runs/<name>) lands here too
    before = {p.name: p.stat().st_mtime_ns for p in runs[0].path.rglob("*")}
    yield Env(work, inputs, *runs)
    left = sorted(str(p.relative_to(work)) for p in work.rglob("*"))
    assert left in ([], ["runs"]), f"left on disk: {left}"  # at most the empty parent of out
    assert not any((work / "runs").glob("*")) if left else True
    assert {p.name: p.stat().st_mtime_ns for p in runs[0].path.rglob("*")} == before


@pytest.mark.parametrize(("call", "error", "pattern"), [c[1:] for c in API], ids=[c[0] for c in API])
def test_api_refuses(env: Env, call: Callable[[Env], Any], error: type[BaseException], pattern: str) -> None:
    with pytest.raises(error, match=pattern) as info:
        call(env)
    assert "\n" not in str(info.value), "one line"


# ---- the command -------------------------------------------------------------------------------
CLI: list[tuple[str, Callable[[Env], list[str]], str]] = [
    ("serve-port-high", lambda e: ["serve", str(e.run.path), "--port", "99999"], r"--port=99999"),
    ("serve-port-negative", lambda e: ["serve", str(e.run.path), "--port", "-1"], r"--port=-1"),
    ("serve-port-text", lambda e: ["serve", str(e.run.path), "--port", "http"], r"--port.*'http'"),
    ("demo-port-high", lambda e: ["demo", "--port", "70000"], r"--port=70000"),
    ("serve-missing-run", lambda e: ["serve", str(e.inputs / "nowhere"), "--no-browser"], r"nowhere"),
    ("info-missing-run", lambda e: ["info", str(e.inputs / "nowhere")], r"nowhere"),
    ("info-no-manifest", lambda e: ["info", str(no_manifest(e))], r"half"),
    ("export-missing-run", lambda e: ["export", str(e.inputs / "nowhere"), "--to", "x"], r"nowhere"),
    ("export-no-target", lambda e: ["export", str(e.run.path)], r"--to"),
    (
        "export-format",
        lambda e: ["export", str(e.run.path), "--to", "x", "--format", "xml"],
        r"--format.*'xml'",
    ),
    ("export-n", lambda e: ["export", str(e.run.path), "--to", "x", "--n", "0"], r"n=0"),
    ("report-missing-run", lambda e: ["report", str(e.inputs / "nowhere")], r"nowhere"),
    ("unknown-command", lambda e: ["serv", str(e.run.path)], r"invalid choice: 'serv'"),
]


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """A case that got past its checks fails here instead of serving (or building the demo) forever."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bad argument was accepted")

    monkeypatch.setattr("embedding_explorer.server.serve", refused)
    monkeypatch.setattr("embedding_explorer.demos.runner.build_demo_runs", refused)


@pytest.mark.parametrize(("argv", "pattern"), [c[1:] for c in CLI], ids=[c[0] for c in CLI])
@pytest.mark.usefixtures("no_serving")
def test_cli_refuses(
    env: Env, capsys: pytest.CaptureFixture[str], argv: Callable[[Env], list[str]], pattern: str
) -> None:
    try:
        code = cli.main(argv(env))
    except SystemExit as stop:  # argparse's usage errors
        code = stop.code
    err = capsys.readouterr().err
    assert code not in (0, None)
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("embedding-explorer"), err
    assert re.search(pattern, last), last


# ---- the server --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(runs: tuple[ee.Run, ee.Run], tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    app = create_app(list(runs), static_dir=tmp_path_factory.mktemp("no-ui"))
    with TestClient(app) as c:
        yield c


RUN = "/api/runs/mlp"
SERVER: list[tuple[str, str, int, str]] = [
    ("unknown-run", "/api/runs/nope/layers/fc1/gallery", 404, "nope"),
    ("unknown-layer", f"{RUN}/layers/fc9/gallery", 404, "fc9"),
    ("gallery-n", f"{RUN}/layers/fc1/gallery?n=-1", 422, "n"),
    ("gallery-basis", f"{RUN}/layers/fc1/gallery?basis=bogus", 4, "basis"),
    ("component-range", f"{RUN}/layers/fc1/components/99/quantile?q=0.5", 404, "99"),
    ("quantile-q", f"{RUN}/layers/fc1/components/0/quantile?q=2", 422, "q"),
    ("quantile-q-text", f"{RUN}/layers/fc1/components/0/quantile?q=half", 422, "q"),
    ("histogram-bins", f"{RUN}/layers/fc1/components/0/histogram?bins=0", 422, "bins"),
    ("scores-components", f"{RUN}/layers/fc1/scores?components=x", 4, "components"),
    ("sample-id", f"{RUN}/samples/9999", 404, "9999"),
    ("sample-id-text", f"{RUN}/samples/first", 422, "sample_id"),
    ("sample-layer", f"{RUN}/samples/0?layer=fc9", 404, "fc9"),
    ("renderings-none", f"{RUN}/renderings?ids=0", 404, "render="),
    ("column", f"{RUN}/columns/nope/values", 404, "nope"),
    ("pc-correlation-layer", "/api/pc-correlation?run_a=mlp&layer_a=fc1&layer_b=fc9", 404, "fc9"),
    ("pc-correlation-missing", "/api/pc-correlation?run_a=mlp&layer_a=fc1", 422, "layer_b"),
    ("cka-run", "/api/compare/cka?run_a=mlp&run_b=nope", 404, "nope"),
    ("datasets-layer", "/api/compare/datasets?run_a=mlp&run_b=mlp&layer=fc9", 404, "fc9"),
    (
        "datasets-bins",
        "/api/compare/datasets/histogram?run_a=mlp&run_b=mlp&layer=fc1&component=0&bins=0",
        422,
        "bins",
    ),
    ("export-table", f"{RUN}/layers/fc1/export/nope.csv", 4, "nope"),
    ("export-format", f"{RUN}/layers/fc1/export/scores.xml", 4, "xml"),
]


@pytest.mark.parametrize(("url", "status", "name"), [c[1:] for c in SERVER], ids=[c[0] for c in SERVER])
def test_server_refuses(client: TestClient, url: str, status: int, name: str) -> None:
    answer = client.get(url)
    if status == 4:  # any client error
        assert 400 <= answer.status_code < 500, answer.text
    else:
        assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert name in json.dumps(detail), detail


def test_the_catalogue_is_large() -> None:
    assert len(API) + len(CLI) + len(SERVER) >= 60
