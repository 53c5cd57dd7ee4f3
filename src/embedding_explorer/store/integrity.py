"""Every file a run should have: the inventory recorded at commit, checked at open and on demand.

Zarr reads a missing chunk as its fill value and a short read of a packed file as fewer bytes,
so a deleted or truncated file would read as zeros or as an empty rendering. At commit the
manifest records, under ``"files"``, every file of the run (relative path -> ``[bytes, crc32]``;
the crc32 is null for the bulk: activation chunks and packed renderings). Opening a run lists its
files once and compares names and sizes (cheap: one directory walk, or one listing of an object
store prefix); :func:`verify` also reads every checksummed file. Anything missing, short or
altered raises :class:`~embedding_explorer.DamagedRunError` naming the file and how to rebuild.

Arrays are written with ``write_empty_chunks`` so every chunk exists, even one of zeros: a
stopped run's staged chunks can then be counted before it resumes (:func:`missing_chunk`).
"""

from __future__ import annotations

import os
import re
import zlib
from typing import Any

from ..exceptions import DamagedRunError
from ..locations import Location, as_location

FILES = "files"  # the manifest's key
WRITE_ALL_CHUNKS: dict[str, Any] = {"write_empty_chunks": True}
SKIPPED = ("manifest.json", ".partial.json")  # the commit markers themselves
SKIPPED_FOLDERS = ("resume/", ".resume/")  # checkpoints, removed once the run is in place
# sizes only: checksumming them costs a re-read. The activation chunks (not their zarr.json) and
# the packed renderings (renderings.bin, or its parts renderings.<i>.bin written in place); their
# small index files (renderings.idx.npy, renderings.samples.npy) are checksummed.
BULK = re.compile(r"arrays\.zarr/activations/.+/c/.+|renderings(\.\d+)?\.bin")
BLOCK = 1 << 20


def listing(root: Location) -> dict[str, int]:
    """Every file under ``root`` (relative ``/`` paths) and its size, commit markers and
    checkpoints left out."""
    found: dict[str, int] = {}
    if root.local is not None:
        base = str(root.local)
        for folder, _, names in os.walk(base):
            for name in names:
                path = os.path.join(folder, name)
                found[os.path.relpath(path, base).replace(os.sep, "/")] = os.path.getsize(path)
    else:
        prefix = root.fs_path.rstrip("/") + "/"
        details = root.fs.find(root.fs_path, detail=True)
        for path, info in details.items():
            if info.get("type", "file") == "file" and path.startswith(prefix):
                found[path[len(prefix) :]] = int(info.get("size") or 0)
    return {
        rel: size
        for rel, size in found.items()
        if rel not in SKIPPED and not rel.startswith(SKIPPED_FOLDERS) and not rel.endswith(".tmp")
    }


def inventory(root: Location) -> dict[str, list[int | None]]:
    """What the manifest records at commit: ``{path: [bytes, crc32 or None]}``."""
    return {
        rel: [size, None if is_bulk(rel) else crc32(root / rel)]
        for rel, size in sorted(listing(root).items())
    }


def is_bulk(rel: str) -> bool:
    """Whether the run's file ``rel`` is recorded by its size only (no checksum)."""
    return BULK.fullmatch(rel) is not None


def crc32(location: Location) -> int:
    value = 0
    with location.open("rb") as f:
        while block := f.read(BLOCK):
            value = zlib.crc32(block, value)
    return value


def check_files(path: Any, manifest: dict[str, Any]) -> None:
    """Refuse a run whose files are missing or of another size than at commit (runs written
    before the inventory existed are not checked)."""
    location = as_location(path)
    expected = manifest.get(FILES)
    if not isinstance(expected, dict):
        return
    present = listing(location)
    for rel, entry in expected.items():
        size = _size(entry)
        if rel not in present:
            raise damaged(location, rel, "is missing")
        if size is not None and present[rel] != size:
            raise damaged(location, rel, f"has {present[rel]:,} bytes where {size:,} were written")


def verify(path: Any, manifest: dict[str, Any]) -> None:
    """:func:`check_files`, then every checksummed file read and compared with its crc32."""
    location = as_location(path)
    check_files(location, manifest)
    for rel, entry in (manifest.get(FILES) or {}).items():
        expected = entry[1] if isinstance(entry, list) and len(entry) > 1 else None
        if expected is not None and crc32(location / rel) != expected:
            raise damaged(location, rel, "was altered since it was written (its checksum differs)")


def damaged(location: Location, rel: str, what: str) -> DamagedRunError:
    return DamagedRunError(
        f"the run at {location.url!r} is damaged: {rel} {what}; rebuild it by calling "
        "explore(..., recompute=True) with the same arguments (or remove the folder and run again)"
    )


def _size(entry: Any) -> int | None:
    if isinstance(entry, list) and entry and isinstance(entry[0], int):
        return int(entry[0])
    return None


def missing_chunk(folder: Location, array: Any, n_rows: int) -> str | None:
    """The first chunk file of rows ``0..n_rows`` that the staged array in ``folder`` lacks or
    holds short, or None.

    Every chunk exists (arrays are written with ``write_empty_chunks``), uncompressed and whole,
    so a chunk's presence and size are exact."""
    rows, width = int(array.chunks[0]), int(array.chunks[1])
    n_cols = -(-int(array.shape[1]) // width)
    expected = int(array.dtype.itemsize) * rows * width
    for i in range(-(-n_rows // rows)):
        for j in range(n_cols):
            chunk = folder / "c" / str(i) / str(j)
            if not chunk.exists() or chunk.size() != expected:
                return chunk.url
    return None
