"""The run format (store.format): layer keys, chunk sizes, manifests, what may be replaced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from embedding_explorer import EmbeddingExplorerError, IncompleteRunError
from embedding_explorer.store.format import (
    MANIFEST,
    READABLE_VERSION,
    chunk_rows,
    layer_keys,
    read_manifest,
    score_rows,
    staging_path,
    write_json_atomic,
)
from embedding_explorer.store.writer import RunWriter
from support import minimal_manifest


def test_layer_keys_are_file_safe_unique_and_ordered() -> None:
    keys = layer_keys(["block1.0:1", "block1.0/1", "fc"])
    assert keys == {"block1.0:1": "00_block1.0_1", "block1.0/1": "01_block1.0_1", "fc": "02_fc"}
    assert len(set(keys.values())) == 3


def test_chunk_rows_bounds() -> None:
    assert chunk_rows(1) == 65536
    assert chunk_rows(512) == (8 << 20) // (4 * 512)
    assert chunk_rows(10**6) == 256


def test_score_chunks_and_their_write_buffer_stay_within_64_mib() -> None:
    assert score_rows(10**6, 10) == 1 << 18  # 10 MiB of float32
    assert score_rows(10**6, 1000) == (64 << 20) // 4000 and score_rows(10**6, 1000) * 1000 * 4 <= 64 << 20
    assert score_rows(100, 5) == 100 and score_rows(10**6, 10**9) == 1


def test_read_manifest_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no run at"):
        read_manifest(tmp_path / "nothing")
    (tmp_path / "half").mkdir()
    with pytest.raises(IncompleteRunError, match="did not finish"):
        read_manifest(tmp_path / "half")
    other = tmp_path / "other"
    other.mkdir()
    (other / MANIFEST).write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(EmbeddingExplorerError, match="is not an embedding-explorer manifest"):
        read_manifest(other)
    newer = tmp_path / "newer"
    newer.mkdir()
    (newer / MANIFEST).write_text(json.dumps(minimal_manifest(format_version=READABLE_VERSION + 1)))
    with pytest.raises(EmbeddingExplorerError, match=f"format version {READABLE_VERSION + 1}.*upgrade"):
        read_manifest(newer)


def test_write_json_atomic_handles_numpy_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    write_json_atomic(path, {"a": np.float32(1.5), "b": np.arange(3), "c": np.int64(7)})
    assert json.loads(path.read_text()) == {"a": 1.5, "b": [0, 1, 2], "c": 7}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    with pytest.raises(TypeError, match="object is not JSON serialisable"):
        write_json_atomic(tmp_path / "bad.json", {"a": object()})


def test_refuses_to_overwrite_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(
        EmbeddingExplorerError, match="exists and is not a run directory; choose another path"
    ):
        RunWriter(out, ["a"])
    assert (out / "thesis.tex").read_text() == "precious"
    assert not staging_path(out).exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    RunWriter(empty, ["a"]).abort()  # an empty folder may be used
