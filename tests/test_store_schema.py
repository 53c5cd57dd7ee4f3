"""store.schema: a manifest is checked on open (types, counts, names), every path it names stays
inside the run, and each violation is one error naming manifest.json and the field."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

import embedding_explorer as ee
from embedding_explorer.store.format import MANIFEST, SAMPLES
from support import MLP

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished run of 40 samples with texts, layers fc1 (16) and fc2 (5)."""
    out = tmp_path_factory.mktemp("schema") / "run"
    torch.manual_seed(0)
    x, y = torch.randn(40, 8), torch.randint(0, 3, (40,))
    ee.explore(
        MLP(), TensorDataset(x, y), ["fc1", "fc2"], out=out, n_components=3, progress=False,
        render=[f"text {i}" for i in range(40)],
    )  # fmt: skip
    return out


@pytest.fixture
def copy(text_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(text_run, out)
    return out


def edit_manifest(run: Path, edit: Edit) -> None:
    manifest = json.loads((run / MANIFEST).read_text())
    edit(manifest)
    (run / MANIFEST).write_text(json.dumps(manifest))


def setter(*path: Any, value: Any) -> Edit:
    def edit(manifest: dict[str, Any]) -> None:
        target = manifest
        for name in path[:-1]:
            target = target[name]
        target[path[-1]] = value

    return edit


def deleter(*path: Any) -> Edit:
    def edit(manifest: dict[str, Any]) -> None:
        target = manifest
        for name in path[:-1]:
            target = target[name]
        del target[path[-1]]

    return edit


VIOLATIONS: list[tuple[str, Edit, str]] = [
    ("name missing", deleter("name"), "name"),
    ("name not a string", setter("name", value=7), "name"),
    ("n_samples missing", deleter("data", "n_samples"), "data.n_samples"),
    ("n_samples a string", setter("data", "n_samples", value="40"), "data.n_samples"),
    ("n_samples zero", setter("data", "n_samples", value=0), "data.n_samples"),
    ("layers not a list", setter("layers", value={"fc1": {}}), "layers"),
    ("layer without name", deleter("layers", 0, "name"), "layers[0].name"),
    ("layer without key", deleter("layers", 1, "key"), "layers[1].key"),
    ("layer key leaving the arrays", setter("layers", 0, "key", value="../../x"), "layers[0].key"),
    ("layer dim a float", setter("layers", 0, "dim", value=16.5), "layers[0].dim"),
    ("more components than dim", setter("layers", 1, "n_components", value=9), "layers[1].n_components"),
    ("ratios of another count", setter("layers", 0, "explained_variance_ratio", value=[0.5]),
     "layers[0].explained_variance_ratio"),
    ("labels missing", deleter("labels"), "labels"),
    ("label names not a list", setter("labels", "names", value="abc"), "labels.names"),
    ("metadata columns of numbers", setter("metadata_columns", value=[1, 2]), "metadata_columns"),
    ("unknown rendering kind", setter("rendering", "kind", value="text/html"), "rendering.kind"),
    ("format version a string", setter("format_version", value="1"), "format_version"),
]  # fmt: skip


@pytest.mark.parametrize(("edit", "field"), [v[1:] for v in VIOLATIONS], ids=[v[0] for v in VIOLATIONS])
def test_each_schema_violation_is_refused_naming_manifest_and_field(
    copy: Path, edit: Edit, field: str
) -> None:
    edit_manifest(copy, edit)
    with pytest.raises(ee.ManifestError) as caught:
        ee.open_run(copy)
    message = str(caught.value)
    assert MANIFEST in message and repr(field) in message
    assert isinstance(caught.value, ee.DamagedRunError) and "\n" not in message


def test_repeated_layer_name_is_refused(copy: Path) -> None:
    edit_manifest(copy, lambda m: m["layers"][1].update(name=m["layers"][0]["name"]))
    with pytest.raises(ee.ManifestError, match=r"'layers\[1\]\.name' repeats the layer name 'fc1'"):
        ee.open_run(copy)


def test_manifest_claiming_more_samples_than_rows_is_refused(copy: Path) -> None:
    """Issue 12, item 9: a manifest claiming 300 samples over the run's rows must not open."""
    edit_manifest(copy, setter("data", "n_samples", value=300))
    with pytest.raises(ee.DamagedRunError, match=r"samples.parquet has 40 rows but .*'data.n_samples'.* 300"):
        ee.open_run(copy)


def test_manifest_claiming_fewer_components_than_the_arrays_is_refused(copy: Path) -> None:
    def fewer(manifest: dict[str, Any]) -> None:
        layer = manifest["layers"][0]
        layer.update(n_components=2, explained_variance_ratio=layer["explained_variance_ratio"][:2])

    edit_manifest(copy, fewer)
    with pytest.raises(
        ee.DamagedRunError, match=r"scores of layer 'fc1' has shape \(40, 3\) but .* \(40, 2\)"
    ):
        ee.open_run(copy)


def test_invalid_json_names_the_file_and_the_line(copy: Path) -> None:
    (copy / MANIFEST).write_text('{"format": "embedding-explorer/run",\n "name": ')
    with pytest.raises(ee.ManifestError, match=r"manifest\.json: not valid JSON \(line 2, column"):
        ee.open_run(copy)


def test_manifest_of_another_shape_is_refused(copy: Path) -> None:
    (copy / MANIFEST).write_text("[1, 2, 3]")
    with pytest.raises(ee.ManifestError, match=r"manifest\.json.*not an embedding-explorer manifest"):
        ee.open_run(copy)


def test_missing_sample_table_is_named(copy: Path) -> None:
    (copy / SAMPLES).unlink()
    with pytest.raises(ee.DamagedRunError, match=r"samples\.parquet is missing"):
        ee.open_run(copy)


def test_sample_table_deleted_after_open_is_named(copy: Path) -> None:
    run = ee.open_run(copy)
    (copy / SAMPLES).unlink()
    with pytest.raises(ee.DamagedRunError, match=r"samples\.parquet is missing"):
        _ = run.samples


@pytest.mark.parametrize("bad", [123, 1.5, None, ["a"]])
def test_open_run_names_the_argument(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"^path must be a run directory .* not "):
        ee.open_run(bad)


# ---- every path a manifest names is inside the run --------------------------------------------
def with_parts(run: Path, parts: list[list[Any]]) -> None:
    edit_manifest(run, lambda m: m["rendering"].update(parts=parts))


@pytest.mark.parametrize(
    "name", ["../../../../etc/passwd", "/etc/passwd", "..", "sub/renderings.bin", "a\\b"]
)
def test_rendering_parts_outside_the_run_are_refused_at_open(copy: Path, name: str) -> None:
    size = (copy / "renderings.bin").stat().st_size
    with_parts(copy, [[name, size]])
    with pytest.raises(ee.ManifestError, match=r"rendering\.parts\[0\]\[0\]'.*not a file inside the run"):
        ee.open_run(copy)


def test_rendering_part_linking_outside_the_run_is_refused(copy: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"x" * 10_000)
    os.symlink(secret, copy / "renderings.0.bin")
    with_parts(copy, [["renderings.0.bin", 10_000]])
    with pytest.raises(ee.DamagedRunError, match=r"renderings\.0\.bin: a link to .*outside the run"):
        ee.open_run(copy)


def test_rendering_part_linking_inside_the_run_opens(copy: Path) -> None:
    os.symlink(copy / "renderings.bin", copy / "renderings.0.bin")
    with_parts(copy, [["renderings.0.bin", (copy / "renderings.bin").stat().st_size]])
    assert ee.open_run(copy).rendering(3) == b"text 3"


def test_render_route_and_report_never_read_outside_the_run(copy: Path, tmp_path: Path) -> None:
    """Issue 12, item 4: ``rendering.parts`` of ``../`` served ``/etc/passwd`` through /render and
    into a report. The run is refused before any of them reads a byte."""
    from fastapi.testclient import TestClient

    from embedding_explorer.server import create_app
    from embedding_explorer.server.registry import slug

    run = ee.open_run(copy)
    client = TestClient(create_app([run]))
    url = f"/api/runs/{slug(run.name)}/samples/0/render"
    assert client.get(url).text == "text 0"
    outside = tmp_path / "outside.txt"
    outside.write_text("SECRET " * 100)
    # the served run replaced by one whose manifest points outside it
    with_parts(copy, [[os.path.relpath(outside, copy), outside.stat().st_size]])
    edit_manifest(copy, setter("generation", value="f" * 32))
    answer = client.get(url)
    assert answer.status_code == 404 and "SECRET" not in answer.text
    assert "rendering.parts[0][0]" in answer.json()["detail"]
    with pytest.raises(ee.ManifestError):
        ee.open_run(copy).report(tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_a_valid_run_still_opens_and_reads(copy: Path) -> None:
    run = ee.open_run(copy)
    assert run.n_samples == 40 and run.layers == ["fc1", "fc2"]
    assert run.rendering(7) == b"text 7"
    assert np.isfinite(run["fc2"].scores).all()
    assert len(run.generation) == 32  # uuid4 hex, written at commit


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda run: (run / MANIFEST).write_text("{not json"), r"manifest\.json: not valid JSON \(line 1"),
        (
            lambda run: edit_manifest(run, deleter("layers", 0, "name")),
            r"field 'layers\[0\]\.name' is missing",
        ),
        (lambda run: (run / SAMPLES).unlink(), r"samples\.parquet is missing"),
    ],
    ids=["invalid json", "layer without name", "no sample table"],
)
def test_cli_says_one_line_naming_the_file(
    copy: Path, capsys: pytest.CaptureFixture[str], damage: Callable[[Path], object], named: str
) -> None:
    from embedding_explorer import cli

    damage(copy)
    assert cli.main(["info", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert re.search(named, err), err
