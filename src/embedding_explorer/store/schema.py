"""The manifest's schema, checked when a run is opened: types, counts, names, and every path
the manifest names kept inside the run.

A manifest is data from disk, not from this package: a damaged or hand-edited one must fail
with one line naming ``manifest.json`` and the field (:class:`.exceptions.ManifestError`),
never with a ``KeyError`` deep in a reader, and never lead a reader outside the run
(``rendering.parts`` of ``../../etc/passwd``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..exceptions import DamagedRunError, ManifestError
from ..locations import Location

# a file name inside the run: no separator, not "." or "..", nothing absolute
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
RENDERING_KINDS = ("image/png", "text/plain", "audio/wav")


def _where(url: str, field: str) -> str:
    return f"{url}: field {field!r}"


def _fail(url: str, field: str, problem: str) -> ManifestError:
    return ManifestError(f"{_where(url, field)} {problem}; the run is damaged: build it again")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def field_of(manifest: dict[str, Any], url: str, *path: str) -> Any:
    """``manifest[path[0]][path[1]]...``, or a :class:`ManifestError` naming the missing field."""
    value: Any = manifest
    for i, name in enumerate(path):
        if not isinstance(value, dict) or name not in value:
            raise _fail(url, ".".join(path[: i + 1]), "is missing")
        value = value[name]
    return value


def _entry(info: dict[str, Any], url: str, where: str, name: str) -> Any:
    if name not in info:
        raise _fail(url, f"{where}.{name}", "is missing")
    return info[name]


def _typed(value: Any, url: str, field: str, kind: str) -> Any:
    types: dict[str, type] = {"str": str, "bool": bool, "dict": dict, "list": list}
    if kind == "int":
        ok = _is_int(value)
    elif kind == "number":
        ok = _is_number(value)
    else:
        ok = isinstance(value, types[kind])
    if not ok:
        raise _fail(url, field, f"must be a {kind}, not {type(value).__name__} {str(value)[:40]!r}")
    return value


def plain_name(value: Any, url: str, field: str) -> str:
    """A file name inside the run (no separator, no ``..``, not absolute), or a ManifestError."""
    _typed(value, url, field, "str")
    if not PLAIN_NAME.fullmatch(value):
        raise _fail(url, field, f"names {value!r}, not a file inside the run")
    return str(value)


def validate_manifest(manifest: dict[str, Any], url: str) -> None:
    """Check what :class:`~embedding_explorer.run.Run` reads from a manifest: ``url`` is the
    manifest's path or URL, named in every error with the field."""
    _typed(field_of(manifest, url, "name"), url, "name", "str")
    generation = manifest.get("generation")
    if generation is not None:
        _typed(generation, url, "generation", "str")
    n = _typed(field_of(manifest, url, "data", "n_samples"), url, "data.n_samples", "int")
    if n < 1:
        raise _fail(url, "data.n_samples", f"is {n}; a run has at least one sample")
    layers = _typed(field_of(manifest, url, "layers"), url, "layers", "list")
    names: set[str] = set()
    keys: set[str] = set()
    for i, info in enumerate(layers):
        where = f"layers[{i}]"
        _typed(info, url, where, "dict")
        name = _typed(_entry(info, url, where, "name"), url, f"{where}.name", "str")
        key = plain_name(_entry(info, url, where, "key"), url, f"{where}.key")
        if name in names:
            raise _fail(url, f"{where}.name", f"repeats the layer name {name!r}")
        if key in keys:
            raise _fail(url, f"{where}.key", f"repeats the storage key {key!r}")
        names.add(name)
        keys.add(key)
        dim = _typed(_entry(info, url, where, "dim"), url, f"{where}.dim", "int")
        k = _typed(_entry(info, url, where, "n_components"), url, f"{where}.n_components", "int")
        if dim < 1 or not 0 <= k <= dim:
            raise _fail(url, f"{where}.n_components", f"is {k} for dim {dim}; need 0 <= n_components <= dim")
        _typed(_entry(info, url, where, "total_variance"), url, f"{where}.total_variance", "number")
        _typed(_entry(info, url, where, "pca_method"), url, f"{where}.pca_method", "str")
        ratios = info.get("explained_variance_ratio")
        if ratios is not None:
            _typed(ratios, url, f"{where}.explained_variance_ratio", "list")
            if len(ratios) != k or not all(_is_number(r) for r in ratios):
                raise _fail(url, f"{where}.explained_variance_ratio", f"must be {k} numbers (n_components)")
    labels = _typed(field_of(manifest, url, "labels"), url, "labels", "dict")
    label_names = labels.get("names")
    if label_names is not None:
        _typed(label_names, url, "labels.names", "list")
    columns = _typed(manifest.get("metadata_columns", []), url, "metadata_columns", "list")
    if not all(isinstance(c, str) for c in columns):
        raise _fail(url, "metadata_columns", "must be a list of strings")
    rendering = _typed(field_of(manifest, url, "rendering"), url, "rendering", "dict")
    kind = rendering.get("kind")
    if kind is not None and kind not in RENDERING_KINDS:
        raise _fail(url, "rendering.kind", f"is {kind!r}; known kinds: {', '.join(RENDERING_KINDS)}")
    rendering_parts(manifest, url)


def rendering_parts(manifest: dict[str, Any], url: str) -> list[tuple[str, int | None]]:
    """The objects the renderings run through, in order (``rendering.parts``), each a file name
    inside the run with its size; ``None`` when the manifest names none (one ``renderings.bin``)."""
    rendering = manifest.get("rendering")
    parts = rendering.get("parts") if isinstance(rendering, dict) else None
    if parts is None:
        return []
    _typed(parts, url, "rendering.parts", "list")
    out: list[tuple[str, int | None]] = []
    for i, part in enumerate(parts):
        where = f"rendering.parts[{i}]"
        if not isinstance(part, (list, tuple)) or len(part) != 2:
            raise _fail(url, where, "must be a [name, size] pair")
        name = plain_name(part[0], url, f"{where}[0]")
        size = part[1]
        if size is not None and (not _is_int(size) or size < 0):
            raise _fail(url, f"{where}[1]", f"is {size!r}, not a size in bytes")
        out.append((name, size))
    return out


def inside(run: Location, name: str) -> Location:
    """``run / name``, refused (:class:`DamagedRunError`) where a local link leads outside the run."""
    child = run / name
    if run.local is not None and child.local is not None and child.local.is_symlink():
        root = Path(run.local).resolve()
        if not child.local.resolve().is_relative_to(root):
            raise DamagedRunError(
                f"{child.url}: a link to {str(child.local.resolve())!r}, outside the run {run.url!r}; "
                "the run is damaged: build it again"
            )
    return child


def check_counts(url: str, n_samples: int, what: str, rows: int, fix: str = "build the run again") -> None:
    """``rows`` of ``what`` must be the manifest's ``data.n_samples``."""
    if rows != n_samples:
        raise DamagedRunError(
            f"{what} has {rows} rows but {url} (field 'data.n_samples') says {n_samples} samples; "
            f"the run is damaged: {fix}"
        )


def check_shape(url: str, what: str, shape: Sequence[int], expected: Sequence[int]) -> None:
    if tuple(shape) != tuple(expected):
        raise DamagedRunError(
            f"{what} has shape {tuple(shape)} but {url} says {tuple(expected)} "
            "(fields 'data.n_samples', 'layers[].dim', 'layers[].n_components'); the run is damaged: "
            "build it again"
        )
