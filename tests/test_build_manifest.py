"""The manifest schema (build.manifest): one Manifest and one layer entry for every builder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from embedding_explorer.build.manifest import Manifest, layer_entry, versions
from embedding_explorer.pca import StreamingPCA
from embedding_explorer.store.format import FORMAT, FORMAT_VERSION, MANIFEST, read_manifest, write_json_atomic


def test_manifest_as_dict_is_what_readers_expect(tmp_path: Path) -> None:
    manifest = Manifest(
        name="n", key="k", model={"class": None}, n_samples=5, data_type="ndarray",
        options={"n_components": 2}, layers=[{"name": "a"}], labels_present=False,
        extra={"joint": [1, 2]}, timings={"total_s": 1.0},
    )  # fmt: skip
    value = manifest.as_dict()
    assert list(value) == [
        "format", "format_version", "name", "key", "generation", "created", "model", "data", "options",
        "joint", "layers", "labels", "metadata_columns", "recorded", "rendering", "versions", "timings",
    ]  # fmt: skip
    assert (value["format"], value["format_version"]) == (FORMAT, FORMAT_VERSION)
    assert value["data"] == {"n_samples": 5, "type": "ndarray", "fingerprint": None, "content_hash": None}
    assert value["labels"] == {"present": False, "names": None} and value["rendering"] == {"kind": None}
    assert value["recorded"] == {"input_statistics": [], "outputs": []}
    assert value["versions"] == versions()
    (tmp_path / "r").mkdir()
    write_json_atomic(tmp_path / "r" / MANIFEST, value)
    assert read_manifest(tmp_path / "r") == json.loads(json.dumps(value))
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.name = "m"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Manifest("n", "k")  # type: ignore[misc]  # keywords only


def test_layer_entry_summarises_the_pca() -> None:
    x = np.random.default_rng(0).normal(size=(20, 4))
    pca = StreamingPCA(2).fit(x).finalize()
    entry = layer_entry("fc", "00_fc", pca, module="fc", call=None, reduce="auto")
    assert entry["dim"] == 4 and entry["n_components"] == 2 and entry["pca_method"] == "covariance_eigh"
    assert entry["explained_variance_ratio"] == pca.explained_variance_ratio.tolist()
    assert entry["zero_variance"] is False and json.dumps(entry)
