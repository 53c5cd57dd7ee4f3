"""Where a run lives: a local folder (a path or a ``file://`` URL), or any fsspec URL (``s3://``,
``gs://``, ``az://``, ``memory://``...).

A :class:`Location` names one folder or file and does the few file operations a run needs on
either kind. Local folders keep what only a local file system gives (atomic renames, fsync);
other file systems get the same operations through fsspec, and Zarr opens them by URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

import fsspec
import zarr
from fsspec.spec import AbstractFileSystem

from .direct_writes import local_store
from .exceptions import EmbeddingExplorerError

StorageOptions = dict[str, Any]


def is_local(location: str | Path) -> bool:
    """Whether ``location`` is a local path or a ``file://`` URL (a local folder)."""
    if isinstance(location, Path) or "://" not in location:
        return True
    url = urlparse(location)
    return url.scheme == "file" and url.netloc in ("", "localhost") and "::" not in location


def local_path(location: str | Path) -> Path:
    """The local folder of a run location (``"runs/x"``, ``Path(...)``, ``"file:///data/runs/x"``)."""
    if isinstance(location, Path) or "://" not in location:
        return Path(location)
    if not is_local(location):
        raise EmbeddingExplorerError(f"{location!r} is not a local path or a file:// URL")
    return Path(url2pathname(unquote(urlparse(location).path)))


class Location:
    """One folder or file of a run, local or on an fsspec file system.

    Build it with :func:`as_location`; ``location / "name"`` names a child. ``url`` is how it
    reads (the local path, or the URL); ``local`` is the local path, or None elsewhere.
    """

    def __init__(
        self,
        url: str,
        *,
        local: Path | None = None,
        fs: AbstractFileSystem | None = None,
        path: str = "",
        storage_options: StorageOptions | None = None,
    ) -> None:
        self.url, self.local = url, local
        self.storage_options: StorageOptions = dict(storage_options or {})
        self._fs, self._path = fs, path

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    def __str__(self) -> str:
        return self.url

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Location) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    # naming --------------------------------------------------------------------------------
    @property
    def is_local(self) -> bool:
        return self.local is not None

    @property
    def fs(self) -> AbstractFileSystem:
        """The fsspec file system (the local one for a local folder)."""
        if self._fs is None:
            self._fs = fsspec.filesystem("file")
        return self._fs

    @property
    def fs_path(self) -> str:
        """The path within :attr:`fs`."""
        return str(self.local) if self.local is not None else self._path

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def __truediv__(self, name: str) -> Location:
        if self.local is not None:
            child = self.local / name
            return Location(str(child), local=child)
        return Location(
            f"{self.url.rstrip('/')}/{name}",
            fs=self._fs,
            path=f"{self._path.rstrip('/')}/{name}",
            storage_options=self.storage_options,
        )

    # queries -------------------------------------------------------------------------------
    def exists(self) -> bool:
        if self.local is not None:
            return self.local.exists()
        return bool(self.fs.exists(self._path))

    def is_dir(self) -> bool:
        if self.local is not None:
            return self.local.is_dir()
        return bool(self.fs.isdir(self._path))

    def is_file(self) -> bool:
        if self.local is not None:
            return self.local.is_file()
        return bool(self.fs.isfile(self._path))

    def size(self) -> int:
        if self.local is not None:
            return self.local.stat().st_size
        return int(self.fs.size(self._path))

    def names(self) -> list[str]:
        """The names of the folder's entries (empty when it does not exist)."""
        if self.local is not None:
            return sorted(p.name for p in self.local.iterdir()) if self.local.is_dir() else []
        if not self.fs.isdir(self._path):
            return []
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self._path, detail=False))

    # reading and writing -------------------------------------------------------------------
    def open(self, mode: str = "rb") -> IO[Any]:
        if self.local is not None:
            return open(self.local, mode)
        return self.fs.open(self._path, mode)

    def read_bytes(self, start: int | None = None, end: int | None = None) -> bytes:
        """The file's bytes, or those of ``[start, end)`` (one ranged read on an object store)."""
        if self.local is not None:
            with open(self.local, "rb") as f:
                if start is None:
                    return f.read()
                f.seek(start)
                return f.read(-1 if end is None else end - start)
        return bytes(self.fs.cat_file(self._path, start=start, end=end))

    def read_text(self) -> str:
        return self.read_bytes().decode()

    @contextlib.contextmanager
    def open_whole(self) -> Iterator[IO[bytes]]:
        """A file written whole or not at all: locally a temporary file, fsynced and renamed over
        the target; on an object store one upload, which is atomic too (readers see the old
        object or the new one)."""
        if self.local is None:
            f = self.fs.open(self._path, "wb")
            try:
                yield f
            except BaseException:
                f.discard()  # an unfinished upload leaves no object (where the store allows)
                raise
            f.close()
            return
        tmp = self.local.with_name(self.local.name + ".tmp")
        try:
            with open(tmp, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, self.local)

    def write_json(self, value: Any, default: Any = None) -> None:
        """Write JSON whole (see :meth:`open_whole`)."""
        text = json.dumps(value, indent=2, default=default)  # before opening: a bad value leaves nothing
        with self.open_whole() as f:
            f.write(text.encode())

    def mkdir(self) -> None:
        if self.local is not None:
            self.local.mkdir(parents=True, exist_ok=True)
        else:
            self.fs.makedirs(self._path, exist_ok=True)

    def remove(self) -> None:
        """Remove a file; nothing when it is missing."""
        if self.local is not None:
            self.local.unlink(missing_ok=True)
        elif self.fs.exists(self._path):
            self.fs.rm_file(self._path)

    def remove_tree(self) -> None:
        """Remove a folder and everything under it; nothing when it is missing."""
        if self.local is not None:
            shutil.rmtree(self.local, ignore_errors=True)
        elif self.fs.exists(self._path):
            self.fs.rm(self._path, recursive=True)

    # zarr ----------------------------------------------------------------------------------
    def zarr_group(self, mode: str) -> Any:
        """Open the Zarr group at this location (a local folder, or by URL through fsspec)."""
        if self.local is not None:
            return zarr.open_group(local_store(self.local, mode), mode=mode)  # type: ignore[arg-type]
        return zarr.open_group(self.url, mode=mode, storage_options=self.storage_options)  # type: ignore[arg-type]

    def zarr_array(self, mode: str) -> Any:
        return open_zarr_array(self.url, self.storage_options, mode)


def open_zarr_array(url: str, storage_options: StorageOptions | None, mode: str) -> Any:
    """A Zarr array by path or URL: what a Dask worker opens from the strings it was sent."""
    if is_local(url):
        return zarr.open_array(local_store(local_path(url), mode), mode=mode)
    return zarr.open_array(url, mode=mode, storage_options=storage_options or {})


def as_location(location: str | Path | Location, storage_options: StorageOptions | None = None) -> Location:
    """A :class:`Location` from a local path, a ``file://`` URL or any fsspec URL.

    ``storage_options`` go to fsspec (credentials, endpoint...); fsspec also reads the usual
    environment variables and config files, so they are often not needed.
    """
    if isinstance(location, Location):
        return location
    if is_local(location):
        if storage_options:
            raise EmbeddingExplorerError(
                f"storage_options are for fsspec URLs; {str(location)!r} is a local path"
            )
        path = local_path(location)
        return Location(str(path), local=path)
    url = str(location).rstrip("/")
    if urlparse(url).scheme == "file":
        raise EmbeddingExplorerError(f"{url!r}: a file:// URL names a local folder (file:///path)")
    try:
        fs, path = fsspec.core.url_to_fs(url, **(storage_options or {}))
    except (ImportError, ValueError) as error:  # an unknown protocol, or its package missing
        raise EmbeddingExplorerError(f"cannot open {url!r} with fsspec: {error}") from error
    return Location(url, fs=fs, path=str(path), storage_options=storage_options)
