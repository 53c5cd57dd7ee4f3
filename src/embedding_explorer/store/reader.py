"""Reading a finished run's files, local or at any fsspec URL.

A :class:`RunReader` serves the generation it opened (:mod:`.generation`): each read is checked
afterwards against the run's ``manifest.json``, so a run replaced while it is open raises
:class:`.exceptions.RunReplacedError` instead of mixing two runs' data. Every file it reads is
inside the run (:mod:`.schema`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from ..exceptions import DamagedRunError
from ..locations import Location, as_location
from .format import (
    ARRAYS,
    MANIFEST,
    RENDERING_OFFSETS,
    RENDERING_SAMPLES,
    RENDERINGS,
    SAMPLES,
    load_manifest,
)
from .generation import GenerationWatch, generation_of, stamp
from .integrity import check_files, listing
from .schema import inside, plain_name, rendering_parts

ZARR_JSON = "zarr.json"  # the metadata of each Zarr (v3) array and group
UNREADABLE = (ValueError, TypeError)  # what Zarr raises for metadata that is not JSON, or not its own


class CheckedIndexer:
    """Something Zarr reads through with ``[...]`` (an array, or its ``oindex``, ``vindex`` or
    ``blocks``) whose every read is checked against the run's generation; anything else is its
    own."""

    def __init__(self, target: Any, watch: GenerationWatch) -> None:
        self._target = target
        self._watch = watch

    def __getitem__(self, selection: Any) -> Any:
        return _checked_call(self._target.__getitem__, self._watch)(selection)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class CheckedArray(CheckedIndexer):
    """A stored Zarr array whose every read is checked against the run's generation, through
    ``[...]``, its indexers and its ``get_*_selection`` methods; anything else (``shape``,
    ``chunks``, ``dtype``...) is the array's own."""

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        values = np.asarray(self[...], dtype=dtype)
        return values

    def __len__(self) -> int:
        return int(self._target.shape[0])

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name in INDEXERS:  # array.oindex[...], .vindex[...], .blocks[...]
            return CheckedIndexer(value, self._watch)
        if name in SELECTIONS:  # array.get_orthogonal_selection(...)...
            return _checked_call(value, self._watch)
        if name == "with_config":  # the same array, another configuration: checked as well
            return lambda *args, **kwargs: CheckedArray(value(*args, **kwargs), self._watch)
        return value

    def __repr__(self) -> str:
        return f"CheckedArray({self._target!r})"


INDEXERS = frozenset({"oindex", "vindex", "blocks"})
SELECTIONS = frozenset(
    {
        "get_basic_selection",
        "get_orthogonal_selection",
        "get_coordinate_selection",
        "get_mask_selection",
        "get_block_selection",
    }
)


def _checked_call(read: Callable[..., Any], watch: GenerationWatch) -> Callable[..., Any]:
    """``read``, its values returned only if the run was not replaced meanwhile."""

    def checked(*args: Any, **kwargs: Any) -> Any:
        values = read(*args, **kwargs)
        watch.check()
        return values

    return checked


class RunReader:
    """Read access to a finished run's files (local, or at any fsspec URL), at the generation it
    opened (:attr:`generation`)."""

    def __init__(self, path: str | Path | Location) -> None:
        self.location = as_location(path)
        opened = stamp(self.location / MANIFEST)  # before reading: a change after it is seen
        self.manifest, raw = load_manifest(self.location)
        self.generation = generation_of(self.manifest, raw)
        self.watch = GenerationWatch(self.location, self.generation, opened)
        try:
            check_files(self.location, self.manifest)  # a missing or short file is an error, not zeros
        except DamagedRunError:
            self.watch.check()  # files of another generation (swapped meanwhile): replaced, not damaged
            raise
        manifest_url = (self.location / MANIFEST).url
        try:
            self.root = (self.location / ARRAYS).zarr_group("r")
        except (FileNotFoundError, KeyError, ValueError, OSError) as error:
            self.watch.check()
            raise DamagedRunError(
                f"{(self.location / ARRAYS).url} cannot be opened ({type(error).__name__}: {error}); "
                "the run is damaged: build it again"
            ) from None
        self._offsets: np.ndarray | None = None
        self._shared = bool((self.manifest.get("rendering") or {}).get("shared"))
        self._starts: np.ndarray | None = None  # shared renderings: each one's first sample
        parts = rendering_parts(self.manifest, manifest_url) or [(RENDERINGS, None)]
        self._parts = [inside(self.location, name) for name, _ in parts]
        sizes = [int(size or 0) for _, size in parts]
        self._part_starts = np.cumsum([0, *sizes[:-1]]).astype(np.int64)

    def check(self) -> None:
        """Raise :class:`RunReplacedError` when the run's directory no longer holds the opened run."""
        self.watch.check()

    def current_generation(self) -> str | None:
        """The generation at the run's location now; None when no finished run is there."""
        return self.watch.current()

    def array(self, kind: str, key: str) -> CheckedArray:
        path = f"{kind}/{plain_name(key, (self.location / MANIFEST).url, 'layers[].key')}"
        try:
            array = self.root[path]
        except KeyError:
            self.check()
            raise DamagedRunError(
                f"{(self.location / ARRAYS).url} has no array {path!r}; the run is damaged: build it again"
            ) from None
        except UNREADABLE as error:
            self.check()
            raise self._damaged_metadata(path, error) from None
        self.check()
        return CheckedArray(array, self.watch)

    def pca_arrays(self, key: str) -> dict[str, np.ndarray]:
        path = f"pca/{plain_name(key, (self.location / MANIFEST).url, 'layers[].key')}"
        try:
            group: Any = self.root[path]
            arrays = {name: group[name] for name in group.array_keys()}
        except KeyError:
            self.check()
            raise DamagedRunError(
                f"{(self.location / ARRAYS).url} has no group {path!r}; the run is damaged: build it again"
            ) from None
        except UNREADABLE as error:
            self.check()
            raise self._damaged_metadata(path, error) from None
        values = {name: np.asarray(array[...]) for name, array in arrays.items()}
        self.check()
        return values

    def _damaged_metadata(self, path: str, error: Exception) -> DamagedRunError:
        """The error for the array or group at ``path`` (in ``arrays.zarr``) that Zarr cannot
        open: it names the first ``zarr.json`` on the way to it or under it that is not JSON
        (else the node's own)."""
        parts = path.split("/")
        names = ["/".join([ARRAYS, *parts[:i], ZARR_JSON]) for i in range(len(parts) + 1)]
        below = f"{ARRAYS}/{path}/"
        names += sorted(
            rel for rel in listing(self.location) if rel.startswith(below) and rel.endswith(f"/{ZARR_JSON}")
        )
        named = self.location / names[len(parts)]
        for name in names:
            try:
                json.loads(inside(self.location, name).read_bytes())
            except (OSError, ValueError, DamagedRunError):
                named = self.location / name
                break
        return DamagedRunError(
            f"{named.url} cannot be read ({type(error).__name__}: {error}); "
            "the run is damaged: build it again"
        )

    def n_sample_rows(self) -> int:
        """The rows of the sample table, from its footer (nothing else is read)."""
        return int(self._read_samples(lambda source: pq.read_metadata(source).num_rows))

    def samples(self) -> pd.DataFrame:
        return cast(pd.DataFrame, self._read_samples(lambda source: pq.read_table(source).to_pandas()))

    def _read_samples(self, read: Callable[[Any], Any]) -> Any:
        """``read`` applied to the sample table (a local path or an open file), at this reader's
        generation; a missing or unreadable table is a :class:`DamagedRunError` naming it."""
        location = inside(self.location, SAMPLES)
        try:
            if location.local is not None:
                value = read(location.local)
            else:
                with location.open("rb") as f:
                    value = read(f)
        except FileNotFoundError:
            self.check()
            raise DamagedRunError(
                f"{location.url} is missing: the run's sample table is gone; build the run again"
            ) from None
        except (OSError, ValueError) as error:
            self.check()
            raise DamagedRunError(f"{location.url} cannot be read ({error}); build the run again") from None
        self.check()
        return value

    def rendering(self, sample_id: int) -> bytes | None:
        """The packed rendering of one sample: one seek, or one ranged read of one object.

        Where samples share renderings (a per-token run's tokens, their text's), the sample's
        is the last one starting at or before it."""
        offsets = self.rendering_offsets()
        if offsets is None:
            return None
        index = sample_id
        if self._shared:
            index = int(np.searchsorted(self.rendering_starts(), sample_id, side="right")) - 1
        start, end = int(offsets[index]), int(offsets[index + 1])
        part = int(np.searchsorted(self._part_starts, start, side="right")) - 1
        if start == end:
            return b""
        base = int(self._part_starts[part])
        try:
            record = self._parts[part].read_bytes(start - base, end - base)
        except FileNotFoundError:
            self.check()
            raise DamagedRunError(
                f"{self._parts[part].url} is missing: the run's renderings are gone; build the run again"
            ) from None
        self.check()
        return record

    def rendering_offsets(self) -> np.ndarray | None:
        if self._offsets is None:
            self._offsets = self._array(RENDERING_OFFSETS)
        return self._offsets

    def rendering_starts(self) -> np.ndarray:
        """Where samples share renderings: the first sample of each (and N at the end)."""
        if self._starts is None:
            starts = self._array(RENDERING_SAMPLES)
            if starts is None:
                raise DamagedRunError(
                    f"{inside(self.location, RENDERING_SAMPLES).url} is missing: the run's renderings "
                    "cannot be found; build the run again"
                )
            self._starts = starts
        return self._starts

    def _array(self, name: str) -> np.ndarray | None:
        """The run's ``.npy`` file ``name`` (None where it has none), checked against a swap."""
        try:
            with inside(self.location, name).open("rb") as f:
                array: np.ndarray = np.load(f)
        except FileNotFoundError:
            self.check()
            return None
        self.check()
        return array
