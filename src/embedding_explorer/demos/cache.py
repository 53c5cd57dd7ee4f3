"""The demos' per-user cache (downloaded data, trained models), and atomic writes into it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO


def cache_root() -> Path:
    """The per-user cache of this package (data and trained models)."""
    return Path.home() / ".cache" / "embedding-explorer"


def atomic_write(
    dest: Path,
    write: Callable[[IO[bytes]], None],
    validate: Callable[[Path], object] | None = None,
) -> None:
    """Write `dest` through a temporary file in the same folder, so readers never see half a file."""
    # A unique name opened with "x" (unlike mkstemp, which makes the file private, this keeps
    # the permissions the umask gives).
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
    try:
        with tmp.open("xb") as out:
            write(out)
        if validate is not None:
            validate(tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
