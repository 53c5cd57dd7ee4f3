"""The run format: file names, chunk sizes, layer keys, manifests read and written atomically."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..exceptions import EmbeddingExplorerError, IncompleteRunError, ManifestError
from ..locations import Location, as_location

MANIFEST = "manifest.json"
ARRAYS = "arrays.zarr"
SAMPLES = "samples.parquet"
RENDERINGS = "renderings.bin"
RENDERING_OFFSETS = "renderings.idx.npy"
RENDERING_SAMPLES = "renderings.samples.npy"  # renderings shared by samples: each one's first sample
PARTIAL = ".partial.json"  # marks an unfinished run written in place (object stores)
FORMAT = "embedding-explorer/run"
FORMAT_VERSION = 1  # runs whose every sample has its own rendering (and the version run keys name)
SHARED_RENDERINGS_VERSION = 2  # runs whose samples share renderings (RENDERING_SAMPLES)
READABLE_VERSION = SHARED_RENDERINGS_VERSION  # the newest layout this package reads
CHUNK_BYTES = 8 << 20  # target size of one activation chunk
SCORE_CHUNK_BYTES = 64 << 20  # the most one score chunk (and the buffer that fills it) takes
STORAGE_DTYPES = ("float32", "float16")


def layer_keys(names: Sequence[str]) -> dict[str, str]:
    """A file-safe, unique storage key per layer name (``block1.0:1`` -> ``03_block1.0_1``)."""
    return {name: f"{i:02d}_{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}" for i, name in enumerate(names)}


def chunk_rows(dim: int) -> int:
    """Rows per activation chunk: about ``CHUNK_BYTES`` of float32."""
    return max(256, min(65536, CHUNK_BYTES // (4 * max(dim, 1))))


def score_rows(n_samples: int, k: int) -> int:
    """Rows per score chunk: up to 2^18, and at most ``SCORE_CHUNK_BYTES`` of float32."""
    return max(1, min(n_samples, 1 << 18, SCORE_CHUNK_BYTES // (4 * max(k, 1))))


def staging_path(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def staging_of(out: Location) -> Location:
    """Where a run is built: a hidden folder beside a local run, the run's own prefix elsewhere."""
    return as_location(staging_path(out.local)) if out.local is not None else out


RENDER_PART = re.compile(r"renderings\.\d+\.bin")


def render_part(i: int) -> str:
    """The object holding the renderings of segment ``i`` of a run written in place."""
    return f"renderings.{i}.bin"


def dictionary_columns(schema: pa.Schema) -> list[str] | bool:
    """The columns of a Parquet table worth a dictionary encoding: all but floating point ones.
    Floats (statistics, scores, losses) rarely repeat, so Parquet tries a dictionary, finds it
    full and falls back, at 4x the write time and a larger file (measured on 100,000 rows of 14
    columns: 33 ms and 10.8 MB with dictionaries throughout, 8.5 ms and 8.7 MB without them
    for the floats); labels, ids and names do repeat. A table with a nested column (a list or
    struct in the user's metadata) gets dictionaries throughout (True), as Parquet names such a
    column's values by their leaf path (``tags.list.element``), not by the field's name."""
    if any(pa.types.is_nested(field.type) for field in schema):
        return True
    return [field.name for field in schema if not pa.types.is_floating(field.type)]


def check_replaceable(out: str | Path | Location) -> None:
    """Refuse to overwrite anything but an empty folder or a run of ours: a finished one, a
    damaged one (:func:`_is_damaged_run`), or (written in place) an unfinished one, marked
    ``.partial.json``."""
    out = as_location(out)
    if not out.exists():
        return
    names = out.names()
    if out.is_dir() and not names:
        if out.local is not None:
            out.local.rmdir()
        return
    if not (
        _is_ours(out / MANIFEST) or (not out.is_local and _is_ours(out / PARTIAL)) or _is_damaged_run(out)
    ):
        raise EmbeddingExplorerError(
            f"out={out.url!r} exists and is not a run directory; choose another path"
        )


def _is_ours(marker: Location) -> bool:
    try:
        return bool(json.loads(marker.read_text()).get("format") == FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


def _is_damaged_run(out: Location) -> bool:
    """A run of ours whose manifest cannot be read (torn, garbled): this package's layout
    (``arrays.zarr/zarr.json`` and ``samples.parquet``) beside a ``manifest.json`` that is not
    JSON. A manifest that is JSON but not ours is someone else's: never replaced."""
    if not ((out / ARRAYS / "zarr.json").is_file() and (out / SAMPLES).is_file()):
        return False
    try:
        json.loads((out / MANIFEST).read_bytes())
    except ValueError:  # not JSON, or not UTF-8
        return True
    except OSError:
        return False
    return False


def has_manifest(out: Location) -> bool:
    return (out / MANIFEST).exists()


def remove_run(out: Location) -> None:
    """Remove a run of ours written in place, leaving its prefix marked unfinished: first the
    ``.partial.json`` marker is written, then the manifest is removed (so that a stop midway never
    leaves the old manifest beside other arrays), then everything else under the prefix but the
    marker. A stop at any point leaves a marker, so the next call replaces the prefix again."""
    (out / PARTIAL).write_json({"format": FORMAT})
    (out / MANIFEST).remove()
    paths = [path for path in out.fs.find(out.fs_path) if path.rstrip("/").rsplit("/", 1)[-1] != PARTIAL]
    if paths:
        out.fs.rm(paths)


def write_json_atomic(path: Path | Location, value: dict[str, Any]) -> None:
    as_location(path).write_json(value, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def read_manifest(path: str | Path | Location) -> dict[str, Any]:
    """The manifest of a finished run, or a clear error for anything else."""
    return load_manifest(as_location(path))[0]


def load_manifest(location: Location) -> tuple[dict[str, Any], bytes]:
    """The manifest of the finished run at ``location`` and its bytes as read; an unreadable one
    raises :class:`.ManifestError` naming the file (and the line of a JSON error)."""
    manifest_path = location / MANIFEST
    try:
        raw = manifest_path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        if staging_of(location).exists() or location.is_dir():
            raise IncompleteRunError(
                f"{location.url!r} has no {MANIFEST}: its extraction did not finish; run explore again"
            ) from None
        raise FileNotFoundError(f"no run at {location.url!r}") from None
    except IsADirectoryError:
        raise ManifestError(f"{manifest_path.url}: a folder, not a manifest file") from None
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        where = (
            f" (line {error.lineno}, column {error.colno})" if isinstance(error, json.JSONDecodeError) else ""
        )
        raise ManifestError(
            f"{manifest_path.url}: not valid JSON{where}: the run is damaged: rebuild it by calling "
            "explore(..., recompute=True) with the same arguments"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(
            f"{manifest_path.url!r} is not an embedding-explorer manifest (field 'format' is not {FORMAT!r})"
        )
    version = manifest.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise ManifestError(f"{manifest_path.url}: field 'format_version' must be an int, not {version!r}")
    if version > READABLE_VERSION:
        raise EmbeddingExplorerError(
            f"run {location.url!r} has format version {version}; this version "
            f"reads up to {READABLE_VERSION}: upgrade embedding-explorer"
        )
    return manifest, raw
