"""Where a run lives: a local path, or a ``file://`` URL naming one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from .exceptions import EmbeddingExplorerError


def local_path(location: str | Path) -> Path:
    """The local folder of a run location (``"runs/x"``, ``Path(...)``, ``"file:///data/runs/x"``)."""
    if isinstance(location, Path) or "://" not in location:
        return Path(location)
    url = urlparse(location)
    if url.scheme == "file" and url.netloc in ("", "localhost"):
        return Path(url2pathname(unquote(url.path)))
    raise EmbeddingExplorerError(
        f"out={location!r}: runs are written to local paths or file:// URLs (a folder every Dask "
        "worker can reach, e.g. a network file system mount)"
    )
