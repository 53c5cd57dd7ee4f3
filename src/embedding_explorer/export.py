"""Sharing a run's results as plain tables: per-layer scores, extremes, associations, variance.

Each table is a pandas DataFrame (:func:`scores_table`, :func:`extremes_table`,
:func:`association_table`, :func:`variance_table`); :func:`export_run` writes them for every
layer as Parquet (pyarrow) and/or CSV, named ``<layer>.<table>.<format>`` with file-safe layer
names. Files are written under a temporary name and renamed into place, and nothing else in the
target folder is touched, so exporting into a folder that holds other files is safe.
"""

from __future__ import annotations

import itertools
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .checks import positive_int
from .exceptions import EmbeddingExplorerError
from .probe import ScoreProbe
from .store.format import dictionary_columns

if TYPE_CHECKING:
    from .filters import FilterLike
    from .run import Layer, Run

FORMATS = ("parquet", "csv")
TABLES = ("scores", "extremes", "associations", "variance")
MAX_CATEGORIES = 1000
"""Categorical columns with more distinct values (ids, file paths) are left out of associations."""
ASSOCIATION_COLUMNS = ["component", "column", "kind", "statistic", "value", "summary"]


def label_column(run: Run) -> pd.Series | None:
    """How labels read in exported tables: label names where the run has them, else the raw
    labels as stored; None for a run without labels."""
    labels = run.labels
    if labels is None:
        return None
    if run.label_names is None:
        return pd.Series(labels, name="label")
    codes, uniques = pd.factorize(pd.Series(labels))  # one label_name call per distinct label
    names = np.array([run.label_name(v) for v in uniques] + [None], dtype=object)
    return pd.Series(names[codes], name="label", dtype=object)  # code -1 (missing) -> None


def scores_table(probe: ScoreProbe, *, filter: FilterLike | str = None) -> pd.DataFrame:
    """``sample_id``, ``label`` (when the run has labels), then one float32 column per component
    (``PC1`` .. ``PCk`` for a layer; ``IC1`` .. for ICA; the direction's name for a direction).
    With ``filter`` (:class:`~embedding_explorer.Filter`), the rows of the samples it keeps."""
    run = probe.run
    table = pd.DataFrame({"sample_id": np.arange(run.n_samples, dtype=np.int64)})
    labels = label_column(run)
    if labels is not None:
        table["label"] = labels.to_numpy()
    scores = np.asarray(probe.scores, dtype=np.float32)
    for c, name in enumerate(probe.component_names):
        table[name] = scores[:, c]
    if filter is None:
        return table
    return table[run.mask(filter)].reset_index(drop=True)


def extremes_table(probe: ScoreProbe, n: int = 8, *, filter: FilterLike | str = None) -> pd.DataFrame:
    """Both ends of every component: ``component``, ``end`` (``low``/``high``), ``rank`` (1 is the
    most extreme), ``sample_id``, ``score`` (float32), ``label`` (when the run has labels); with
    ``filter``, the ends among the samples it keeps."""
    n = positive_int(n, "n")
    labels = label_column(probe.run)
    parts = []
    for c, name in enumerate(probe.component_names):
        for end, ids in zip(("low", "high"), probe.extremes(c, n, filter=filter), strict=True):
            part = pd.DataFrame(
                {
                    "component": name,
                    "end": end,
                    "rank": np.arange(1, len(ids) + 1, dtype=np.int64),
                    "sample_id": ids.astype(np.int64),
                    "score": np.asarray(probe.scores[ids, c], dtype=np.float32),
                }
            )
            if labels is not None:
                part["label"] = labels.to_numpy()[ids]
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def association_table(probe: ScoreProbe) -> pd.DataFrame:
    """One row per component and label/metadata column: ``component``, ``column``, ``kind``
    (categorical/numeric), ``statistic`` (``eta2`` or ``r``), ``value``, ``summary``.

    Columns that cannot be associated are left out: a single value, or categories that are
    ids (every sample its own category, or more than 1,000 of them, such as file paths).
    """
    from .analysis.associations import association, column_values, resolve_kind

    run = probe.run
    columns = (["label"] if run.labels is not None else []) + [str(c) for c in run.metadata.columns]
    rows: list[dict[str, Any]] = []
    for column in columns:
        values = column_values(run, column)
        kind = resolve_kind(values, column)
        many = values.nunique(dropna=True) > MAX_CATEGORIES
        if kind == "categorical" and many and column != "token":
            continue  # file paths and the like: each rare category explains its own few samples
        try:
            table = association(probe, column, kind=kind)  # type: ignore[arg-type]
        except EmbeddingExplorerError:  # a single value, or an id (each sample its own): nothing to say
            continue
        statistic = "eta2" if kind == "categorical" else "r"
        for name, value, summary in zip(
            probe.component_names, table[statistic], table["summary"], strict=True
        ):
            rows.append(
                {
                    "component": name,
                    "column": column,
                    "kind": kind,
                    "statistic": statistic,
                    "value": float(value),
                    "summary": str(summary),
                }
            )
    return pd.DataFrame(rows, columns=ASSOCIATION_COLUMNS)


def variance_table(layer: Layer) -> pd.DataFrame:
    """``component``, ``explained_variance``, ``explained_variance_ratio``, ``cumulative_ratio``."""
    ratio = np.asarray(layer.explained_variance_ratio, dtype=np.float64)
    return pd.DataFrame(
        {
            "component": layer.component_names,
            "explained_variance": np.asarray(layer.explained_variance, dtype=np.float64),
            "explained_variance_ratio": ratio,
            "cumulative_ratio": np.cumsum(ratio),
        }
    )


def file_stems(names: Sequence[str]) -> dict[str, str]:
    """A file-safe name per layer (``block1.0:1`` -> ``block1.0_1``), unique ignoring case (for
    case-insensitive file systems). Names that would collide (or would be hidden files) get their
    position appended, as ``store.format.layer_keys`` numbers them, and a further ``_1``, ``_2``...
    in the rare case that this too is some other layer's stem."""
    safe = {name: re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "layer" for name in names}
    counts = Counter(stem.lower() for stem in safe.values())
    taken = {stem for stem in counts if counts[stem] == 1}  # unique stems stay as they are
    stems = {}
    for i, (name, stem) in enumerate(safe.items()):
        if counts[stem.lower()] == 1:
            stems[name] = stem
            continue
        candidates = (f"{stem}_{i:02d}" + (f"_{j}" if j else "") for j in itertools.count())
        stems[name] = next(c for c in candidates if c.lower() not in taken)
        taken.add(stems[name].lower())
    return stems


def export_run(run: Run, to: str | Path, *, formats: str | Sequence[str] = FORMATS, n: int = 8) -> list[Path]:
    """Write every layer's tables into the folder ``to`` (created if missing).

    Parameters
    ----------
    run : Run
    to : str or Path
        The target folder. Existing files of the same names are replaced; other files stay.
    formats : "parquet", "csv" or a sequence of them
    n : int, default=8
        Samples per end of each component in the extremes table.

    Returns
    -------
    list of Path
        The files written, layer by layer: ``<layer>.scores``, ``.extremes``, ``.associations``
        and ``.variance``, each in every format asked for.
    """
    chosen = check_formats(formats)
    n = positive_int(n, "n")
    folder = Path(to)
    if folder.exists() and not folder.is_dir():
        raise EmbeddingExplorerError(f"to={str(folder)!r} exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    stems = file_stems(run.layers)
    written = []
    for layer in run:
        tables = {
            "scores": scores_table(layer),
            "extremes": extremes_table(layer, n),
            "associations": association_table(layer),
            "variance": variance_table(layer),
        }
        for table, frame in tables.items():
            for fmt in chosen:
                written.append(write_table(frame, folder / f"{stems[layer.name]}.{table}.{fmt}", fmt))
    return written


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """``formats`` as a tuple of known formats without repeats (``"both"`` is both)."""
    chosen: tuple[str, ...]
    if isinstance(formats, str):
        chosen = FORMATS if formats == "both" else (formats,)
    else:
        chosen = tuple(dict.fromkeys(formats))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown or not chosen:
        raise ValueError(f"formats={formats!r}: choose from 'parquet', 'csv' (or 'both')")
    return chosen


def write_parquet(frame: pd.DataFrame, where: Path | IO[bytes]) -> None:
    """``frame`` as Parquet (no index; dictionaries only where values repeat,
    :func:`.store.format.dictionary_columns`)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, where, use_dictionary=dictionary_columns(table.schema))


def write_table(frame: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write ``frame`` as Parquet or CSV to a temporary file, then rename it to ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            write_parquet(frame, tmp)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
