"""Reading a finished run's files, local or at any fsspec URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..locations import Location, as_location
from .format import ARRAYS, RENDERING_OFFSETS, RENDERINGS, SAMPLES, read_manifest
from .integrity import check_files


class RunReader:
    """Read access to a finished run's files (local, or at any fsspec URL)."""

    def __init__(self, path: str | Path | Location) -> None:
        self.location = as_location(path)
        self.manifest = read_manifest(self.location)
        check_files(self.location, self.manifest)  # a missing or short file is an error, not zeros
        self.root = (self.location / ARRAYS).zarr_group("r")
        self._offsets: np.ndarray | None = None
        parts = self.manifest.get("rendering", {}).get("parts") or [[RENDERINGS, None]]
        self._parts = [self.location / str(name) for name, _ in parts]
        sizes = [int(size or 0) for _, size in parts]
        self._part_starts = np.cumsum([0, *sizes[:-1]]).astype(np.int64)

    def array(self, kind: str, key: str) -> Any:
        return self.root[f"{kind}/{key}"]

    def pca_arrays(self, key: str) -> dict[str, np.ndarray]:
        group: Any = self.root[f"pca/{key}"]
        return {name: np.asarray(group[name][...]) for name in group.array_keys()}

    def samples(self) -> pd.DataFrame:
        location = self.location / SAMPLES
        if location.local is not None:
            return pq.read_table(location.local).to_pandas()
        with location.open("rb") as f:
            return pq.read_table(f).to_pandas()

    def rendering(self, sample_id: int) -> bytes | None:
        """The packed rendering of one sample: one seek, or one ranged read of one object."""
        offsets = self.rendering_offsets()
        if offsets is None:
            return None
        start, end = int(offsets[sample_id]), int(offsets[sample_id + 1])
        part = int(np.searchsorted(self._part_starts, start, side="right")) - 1
        if start == end:
            return b""
        base = int(self._part_starts[part])
        return self._parts[part].read_bytes(start - base, end - base)

    def rendering_offsets(self) -> np.ndarray | None:
        if self._offsets is None and (self.location / RENDERING_OFFSETS).exists():
            with (self.location / RENDERING_OFFSETS).open("rb") as f:
                self._offsets = np.load(f)
        return self._offsets
