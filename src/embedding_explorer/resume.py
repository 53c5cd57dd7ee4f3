"""Checkpoints of a run being extracted, so a run that stopped part way resumes where it stopped.

A checkpoint lives beside the rows written so far: in the staging folder of a local run
(``.NAME.partial/resume/``), under the prefix of a run written in place elsewhere
(``URL/.resume/``)::

    checkpoint.json     written last, atomically: the commit marker of a checkpoint
    state-<n>.npz       every layer's merged accumulator after segment n (float64)
    labels-<n>.npy      the labels of the samples of segment n
    columns-<n>.npy     the recorded per-sample columns (input statistics, outputs) of segment n
    tokens-<n>.npy      per-token runs: text_id, position, token_id of the samples of segment n
    sizes-<n>.npy       the sizes (bytes) of the renderings appended in segment n
    counts-<n>.npy      renderings shared by samples (per-token runs: one per text): the samples
                        each rendering of segment n stands for

Segments are the samples between two checkpoints: each is saved once (:func:`save_segment`),
so checkpoints cost O(D^2) per layer plus the new samples, never O(N) again. The segments are
also where extraction keeps its per-sample bookkeeping (:class:`~.extract.Ledger` spills them
here, checkpoint or not), so its memory stays flat; ``finish`` reads them back one at a time.
A checkpoint is used only by a call with the same key (model, data, options, batch size,
storage dtype).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .locations import Location
from .pca import StreamingPCA
from .store.format import staging_of, write_json_atomic

log = logging.getLogger(__name__)

VERSION = 3  # the checkpoint layout, part of the resume key: another layout is never read
FOLDER = "resume"
HIDDEN_FOLDER = ".resume"  # in the run's own prefix, written in place
CHECKPOINT = "checkpoint.json"


def folder_of(out: Location) -> Location:
    """Where the checkpoints of the run at ``out`` live (removed when it is committed)."""
    return staging_of(out) / (FOLDER if out.is_local else HIDDEN_FOLDER)


def committed_folder(out: Location) -> Location:
    """Where the checkpoints are once the run at ``out`` is committed (a local staging folder,
    checkpoints included, is renamed to ``out``)."""
    return out / (FOLDER if out.is_local else HIDDEN_FOLDER)


def has_checkpoint(out: Location) -> bool:
    return (folder_of(out) / CHECKPOINT).exists()


@dataclass
class Checkpoint:
    """Where an extraction stands: enough to continue it as if it had never stopped."""

    key: str
    n_done: int  # samples whose rows, renderings and statistics are all saved
    segment: int  # checkpoints taken so far
    rows_per_chunk: int
    dims: dict[str, int]
    render_bytes: int
    renderer: dict[str, Any]
    content_hash: str | None  # the hash chain so far (hex), None once an input had no hash
    batches_with_labels: int = 0
    batches_without_labels: int = 0
    accumulators: dict[str, StreamingPCA] = field(default_factory=dict)
    render_sizes: np.ndarray | None = None
    render_counts: np.ndarray | None = None  # samples per rendering, where renderings are shared
    column_names: list[str] = field(default_factory=list)  # per-sample columns recorded (extract.Ledger)
    rows: dict[str, int] = field(default_factory=dict)  # samples saved per kind (labels, columns, tokens)


SAMPLE_KINDS = ("labels", "columns", "tokens")  # the per-sample segments, one row per sample


def save_segment(folder: Location, segment: int, parts: Mapping[str, np.ndarray | None]) -> None:
    """Save segment ``segment``'s per-sample parts (``labels``, ``columns``, ``tokens``) and
    its renderings' ``sizes`` and ``counts`` (``None``: that kind has no part)."""
    folder.mkdir()
    for kind, values in parts.items():
        if values is not None:
            with (folder / f"{kind}-{segment}.npy").open_whole() as f:
                np.save(f, values, allow_pickle=values.dtype == object)


def save(folder: Location, checkpoint: Checkpoint) -> None:
    """Save the accumulators, then the checkpoint itself (in ``folder``, see :func:`folder_of`);
    the segments up to ``checkpoint.segment`` are saved already (:func:`save_segment`)."""
    folder.mkdir()
    n = checkpoint.segment
    layers, arrays = {}, {}
    for i, (name, acc) in enumerate(checkpoint.accumulators.items()):
        state = acc.state()
        keys = ("n_components", "covariance", "products", "n_samples_seen", "n_features")
        layers[name] = {k: state[k] for k in keys}
        arrays[f"{i}_mean"], arrays[f"{i}_m2"] = state["mean"], state["m2"]
    with (folder / f"state-{n}.npz").open_whole() as f:
        np.savez(f, **arrays)
    meta = {
        "key": checkpoint.key,
        "n_done": checkpoint.n_done,
        "segment": n,
        "rows_per_chunk": checkpoint.rows_per_chunk,
        "dims": checkpoint.dims,
        "render_bytes": checkpoint.render_bytes,
        "renderer": checkpoint.renderer,
        "content_hash": checkpoint.content_hash,
        "batches_with_labels": checkpoint.batches_with_labels,
        "batches_without_labels": checkpoint.batches_without_labels,
        "layers": layers,
        "column_names": list(checkpoint.column_names),
    }
    write_json_atomic(folder / CHECKPOINT, meta)
    for old in folder.names():
        if old.startswith("state-") and old.endswith(".npz") and old != f"state-{n}.npz":
            (folder / old).remove()


def load(folder: Location, key: str) -> Checkpoint | None:
    """The last checkpoint in ``folder`` of a run with this ``key``, or None (none, another key,
    unreadable or of another layout: the run then starts over, with a warning naming the file)."""
    reading = [folder / CHECKPOINT]  # the file being read, for the warning
    try:
        meta = json.loads(reading[0].read_text())
        if not isinstance(meta, dict):
            raise TypeError(f"a checkpoint is a JSON object, not {type(meta).__name__}")
        if meta.get("key") != key:
            return None
        n = int(meta["segment"])
        reading[0] = folder / f"state-{n}.npz"
        with reading[0].open("rb") as f, np.load(f) as arrays:
            accumulators = {
                name: _accumulator(info, arrays[f"{i}_mean"], arrays[f"{i}_m2"])
                for i, (name, info) in enumerate(meta["layers"].items())
            }
        checkpoint = Checkpoint(
            key=key,
            n_done=int(meta["n_done"]),
            segment=n,
            rows_per_chunk=int(meta["rows_per_chunk"]),
            dims={k: int(v) for k, v in meta["dims"].items()},
            render_bytes=int(meta["render_bytes"]),
            renderer=_renderer_state(meta["renderer"]),
            content_hash=meta["content_hash"],
            batches_with_labels=int(meta["batches_with_labels"]),
            batches_without_labels=int(meta["batches_without_labels"]),
            accumulators=accumulators,
            render_sizes=_segments(folder, "sizes", n, reading),
            render_counts=_segments(folder, "counts", n, reading),
            column_names=[str(c) for c in meta.get("column_names", [])],
            rows={kind: rows for kind in SAMPLE_KINDS if (rows := _segment_rows(folder, kind, n, reading))},
        )
        reading[0] = folder / CHECKPOINT
        _check_counts(checkpoint)
        return checkpoint
    except (KeyboardInterrupt, SystemExit, MemoryError):
        raise
    except FileNotFoundError as error:
        if reading[0].name == CHECKPOINT:
            return None  # no checkpoint: nothing to say
        _starting_over(reading[0], error)
        return None
    except Exception as error:  # truncated zip or npy, bad JSON, wrong types: all start over
        _starting_over(reading[0], error)
        return None


def _starting_over(path: Location, error: BaseException) -> None:
    log.warning(
        "the checkpoint file %s is unreadable (%s: %s); starting over", path.url, type(error).__name__, error
    )


def _check_counts(checkpoint: Checkpoint) -> None:
    """Refuse a checkpoint whose saved labels or rendering sizes do not cover its samples."""
    n = checkpoint.n_done
    for name, acc in checkpoint.accumulators.items():
        if acc.n_samples_seen_ != n:
            raise ValueError(f"layer {name!r} has seen {acc.n_samples_seen_} samples, not {n}")
    rows = checkpoint.rows
    if checkpoint.batches_with_labels and rows.get("labels", 0) != n:
        raise ValueError(f"the labels saved cover {rows.get('labels', 0)} samples, not {n}")
    if checkpoint.column_names and rows.get("columns", 0) != n:
        raise ValueError(f"the recorded columns saved do not cover {n} samples")
    if "tokens" in rows and rows["tokens"] != n:
        raise ValueError(f"the token columns saved cover {rows['tokens']} samples, not {n}")
    sizes, counts = checkpoint.render_sizes, checkpoint.render_counts
    if checkpoint.render_bytes and (sizes is None or int(sizes.sum()) != checkpoint.render_bytes):
        raise ValueError(f"the rendering sizes saved do not add up to {checkpoint.render_bytes} bytes")
    if counts is not None and (sizes is None or len(counts) != len(sizes) or int(counts.sum()) != n):
        raise ValueError(f"the renderings saved do not stand for {n} samples")


def _renderer_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """The renderer's saved state, checked here so a malformed one starts the run over."""
    if not isinstance(state, Mapping) or not {"range", "kind", "seen"} <= state.keys():
        raise TypeError(f"renderer state {state!r} lacks range, kind or seen")
    return dict(state)


def _accumulator(info: Mapping[str, Any], mean: np.ndarray, m2: np.ndarray) -> StreamingPCA:
    return StreamingPCA.from_state(
        {
            "n_components": info["n_components"],
            "covariance": info["covariance"],
            "products": info.get("products", "float64"),
            "n_samples_seen": info["n_samples_seen"],
            "n_features": info["n_features"],
            "mean": mean,
            "m2": m2,
        }
    )


def read_segment(folder: Location, kind: str, segment: int) -> np.ndarray | None:
    """One saved segment of one kind, or None when that segment has none."""
    path = folder / f"{kind}-{segment}.npy"
    try:
        with path.open("rb") as f:
            return np.asarray(np.load(f, allow_pickle=True))
    except FileNotFoundError:
        return None


def _present(folder: Location, kind: str, last: int, reading: list[Location]) -> list[Location]:
    """The files of segments 1..last of one kind; later ones (after the checkpoint) removed.

    A segment of the kind missing among present ones is an error (its samples would be lost)."""
    names = folder.names()
    for stale in names:
        if stale.startswith(f"{kind}-") and stale.endswith(".npy") and int(stale[len(kind) + 1 : -4]) > last:
            (folder / stale).remove()
    present = [f"{kind}-{i}.npy" in names for i in range(1, last + 1)]
    files = []
    for i in range(1, last + 1):
        reading[0] = folder / f"{kind}-{i}.npy"
        if present[i - 1]:
            files.append(reading[0])
        elif any(present):  # every segment saves one or none does
            raise FileNotFoundError(reading[0].url)
    return files


def _segments(folder: Location, kind: str, last: int, reading: list[Location]) -> np.ndarray | None:
    """Segments 1..last of one kind, concatenated (small kinds only: rendering sizes)."""
    parts = []
    for path in _present(folder, kind, last, reading):
        reading[0] = path
        with path.open("rb") as f:
            parts.append(np.load(f, allow_pickle=True))
    return np.concatenate(parts) if parts else None


def _segment_rows(folder: Location, kind: str, last: int, reading: list[Location]) -> int:
    """The rows that segments 1..last of one kind hold, from their headers and sizes (a file
    shorter than its header says is refused; only one of objects, e.g. labels, is read whole)."""
    total = 0
    for path in _present(folder, kind, last, reading):
        reading[0] = path
        with path.open("rb") as f:
            fmt = np.lib.format
            version = fmt.read_magic(f)
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = header(f)
            if dtype.hasobject:
                _load_whole(path)
            elif f.tell() + int(np.prod(shape)) * dtype.itemsize != path.size():
                raise ValueError(f"{path.url} holds {path.size()} bytes, not the {shape} its header says")
        total += int(shape[0])
    return total


def _load_whole(path: Location) -> None:
    """Read a saved array whole (an unreadable one raises)."""
    with path.open("rb") as f:
        np.load(f, allow_pickle=True)
