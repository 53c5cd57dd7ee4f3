"""Per-sample columns a view can colour or filter by: the label and the metadata.

Each column is encoded once, the way it travels to the browser: a categorical column as int32
codes into its sorted categories (-1 where missing), a numeric column as float32 (NaN where
missing).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..run import Run

MAX_CATEGORICAL_NUMERIC = 20  # a numeric column with more distinct values is shown as numeric
MAX_CATEGORIES = 1000  # a non-numeric column with more (ids, paths) is not offered as a column

ColumnKind = Literal["categorical", "numeric"]


@dataclass(frozen=True)
class Column:
    """One column, encoded for the browser: ``values`` is int32 codes or float32 numbers."""

    name: str
    kind: ColumnKind
    categories: list[str] | None
    values: np.ndarray


@dataclass(frozen=True)
class LabelCoding:
    """The run's labels: distinct ``values`` (sorted), their display ``names``, per-sample ``codes``."""

    values: list[Any]
    names: list[str]
    codes: np.ndarray

    def display(self, sample_ids: np.ndarray) -> list[str | None]:
        """The display name of each sample's label (None where the label is missing)."""
        return [self.names[c] if c >= 0 else None for c in self.codes[sample_ids].tolist()]


def label_coding(run: Run) -> LabelCoding | None:
    """How the run's labels read, or None for a run without labels."""
    labels = run.labels
    if labels is None:
        return None
    codes, uniques = factorize(pd.Series(labels))
    values = [json_value(v) for v in uniques]
    return LabelCoding(values=values, names=[run.label_name(v) for v in uniques], codes=codes)


def run_columns(run: Run, labels: LabelCoding | None) -> list[Column]:
    """The label column (first, when present) and every metadata column worth offering."""
    columns = []
    if labels is not None:
        columns.append(Column("label", "categorical", list(labels.names), labels.codes))
    for name in run.metadata.columns:
        column = metadata_column(str(name), run.metadata[name])
        if column is not None:
            columns.append(column)
    return columns


def column_source(run: Run, name: str) -> Literal["label", "metadata", "input_statistic", "output"]:
    """Where a column comes from, so the UI can tag recorded ones ("input statistic")."""
    if name == "label":
        return "label"
    if name in run.input_statistics:
        return "input_statistic"
    if name in run.output_columns:
        return "output"
    return "metadata"


def metadata_column(name: str, series: pd.Series) -> Column | None:
    """A numeric column with more than 20 distinct values is numeric; any other is categorical.

    Non-numeric columns with more than ``MAX_CATEGORIES`` distinct values (ids, file paths) are
    left out (None): they cannot colour a view, and still show in each sample's metadata.
    """
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric and series.nunique(dropna=True) > MAX_CATEGORICAL_NUMERIC:
        values = series.to_numpy(dtype=np.float64, na_value=np.nan).astype("<f4")
        return Column(name, "numeric", None, values)
    try:
        codes, uniques = factorize(series)
    except TypeError:  # unhashable cells (lists, arrays): shown per sample, not as a column
        return None
    if not numeric and len(uniques) > MAX_CATEGORIES:
        return None
    return Column(name, "categorical", [str(json_value(v)) for v in uniques], codes)


def factorize(series: pd.Series) -> tuple[np.ndarray, list[Any]]:
    """Codes (int32, -1 where missing) into the sorted distinct values of ``series``.

    Values that do not sort together (mixed types) are ordered by their text.
    """
    try:
        codes, uniques = pd.factorize(series, sort=True)
    except TypeError:
        codes, uniques = pd.factorize(series)
        order = sorted(range(len(uniques)), key=lambda i: str(uniques[i]))
        remap = np.empty(len(order) + 1, dtype=np.int64)
        remap[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
        remap[-1] = -1
        codes = remap[codes]
        uniques = [uniques[i] for i in order]
    return np.asarray(codes, dtype="<i4"), list(uniques)


def json_value(value: Any) -> Any:
    """A plain JSON value for one cell: numpy scalars unwrapped, missing and NaN as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (pd.Timestamp, pd.Timedelta)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)
