"""One filter over a run's samples, shared by the Python API, the server and every view of the UI.

A :class:`Filter` keeps the samples that pass all of its parts (an empty part passes all):

- ``labels``: only these labels (names as shown, e.g. ``"Shirt"``, or raw values as text, ``"6"``);
- ``hide``: not these labels;
- ``ranges``: ``{column: (low, high)}`` on numeric metadata columns, inclusive, either bound
  ``None`` for open (a missing value never passes);
- ``flags``: ``{column: bool}`` on boolean columns (``bool`` dtype, or numbers that are only 0
  and 1), e.g. ``{"correct": False}`` keeps the misclassified samples;
- ``query``: text search, case-insensitive; every whitespace-separated term must occur in the
  sample's text (text runs), its label's name or one of its metadata values.

Its dictionary form (:meth:`Filter.to_dict`, :meth:`Filter.from_dict`) is the JSON the server takes
as ``?filter=`` and the UI keeps in its URL. Every check names the field at fault.
"""

from __future__ import annotations

import json
import math
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .exceptions import EmbeddingExplorerError

if TYPE_CHECKING:
    from .run import Run

FIELDS = ("labels", "hide", "ranges", "flags", "query")
MAX_QUERY = 200  # characters of a search
Bound = float | None


class FilterError(EmbeddingExplorerError):
    """A filter that is malformed, or names what the run does not have (message names the field)."""


@dataclass(frozen=True)
class Filter:
    """Which samples to keep; see the module docstring. Immutable and hashable by its JSON."""

    labels: tuple[str, ...] | None = None
    hide: tuple[str, ...] = ()
    ranges: Mapping[str, tuple[Bound, Bound]] = field(default_factory=dict)
    flags: Mapping[str, bool] = field(default_factory=dict)
    query: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", None if self.labels is None else text_list(self.labels, "labels"))
        object.__setattr__(self, "hide", text_list(self.hide, "hide"))
        object.__setattr__(self, "ranges", check_ranges(self.ranges))
        object.__setattr__(self, "flags", check_flags(self.flags))
        if not isinstance(self.query, str):
            raise FilterError(f"filter.query={self.query!r} must be a string")
        if len(self.query) > MAX_QUERY:
            raise FilterError(f"filter.query is {len(self.query)} characters long; at most {MAX_QUERY}")
        object.__setattr__(self, "query", self.query.strip())

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> Filter:
        """The filter of a dictionary with the keys of :data:`FIELDS` (all optional)."""
        if not isinstance(value, Mapping):
            raise FilterError(f"filter must be an object with the keys {', '.join(FIELDS)}; got {value!r}")
        unknown = [k for k in value if k not in FIELDS]
        if unknown:
            raise FilterError(f"filter.{unknown[0]} is not a filter field; the fields: {', '.join(FIELDS)}")
        ranges = value.get("ranges") or {}
        if not isinstance(ranges, Mapping):
            raise FilterError(f"filter.ranges={ranges!r} must map columns to [low, high]")
        pairs = {}
        for name, bounds in ranges.items():
            if not isinstance(bounds, Sequence) or isinstance(bounds, str) or len(bounds) != 2:
                raise FilterError(f"filter.ranges[{name!r}]={bounds!r} must be [low, high] (null: open)")
            pairs[name] = (bounds[0], bounds[1])
        return cls(
            labels=value.get("labels"),
            hide=value.get("hide") or (),
            ranges=pairs,
            flags=value.get("flags") or {},
            query=value.get("query") or "",
        )

    @classmethod
    def from_json(cls, text: str) -> Filter:
        """The filter of its JSON text (the server's ``?filter=``)."""
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FilterError(f"filter is not valid JSON ({exc.msg} at character {exc.pos})") from None
        return cls.from_dict(value)

    def to_dict(self) -> dict[str, Any]:
        """The parts that filter, in the JSON form (empty parts left out)."""
        out: dict[str, Any] = {}
        if self.labels is not None:
            out["labels"] = list(self.labels)
        if self.hide:
            out["hide"] = list(self.hide)
        if self.ranges:
            out["ranges"] = {k: list(v) for k, v in sorted(self.ranges.items())}
        if self.flags:
            out["flags"] = dict(sorted(self.flags.items()))
        if self.query:
            out["query"] = self.query
        return out

    def to_json(self) -> str:
        """Canonical JSON: equal filters give equal text (a cache key)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def __hash__(self) -> int:
        return hash(self.to_json())

    @property
    def empty(self) -> bool:
        """Whether the filter keeps every sample."""
        return not self.to_dict()

    def mask(self, run: Run) -> np.ndarray:
        """Boolean array (N,): which samples of ``run`` pass. Checks every part against the run."""
        keep = np.ones(run.n_samples, dtype=bool)
        if self.labels is not None or self.hide:
            names = label_names(run)
            if self.labels is not None:
                keep &= names.isin(label_keys(run, self.labels, "labels")).to_numpy()
            if self.hide:
                keep &= ~names.isin(label_keys(run, self.hide, "hide")).to_numpy()
        for name, (low, high) in self.ranges.items():
            values = numeric_column(run, name)
            ok = ~np.isnan(values)
            if low is not None:
                ok &= values >= low
            if high is not None:
                ok &= values <= high
            keep &= ok
        for name, wanted in self.flags.items():
            keep &= boolean_column(run, name) == (1 if wanted else 0)
        if self.query:
            haystack = search_text(run)
            for term in self.query.lower().split():
                keep &= haystack.str.contains(term, regex=False).to_numpy()
        return keep


FilterLike = Filter | Mapping[str, Any] | None


def as_filter(value: FilterLike | str) -> Filter | None:
    """A :class:`Filter` from a Filter, its dict, its JSON text, or None (no filter; an empty
    filter is also None)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = Filter.from_json(value)
    elif not isinstance(value, Filter):
        value = Filter.from_dict(value)
    return None if value.empty else value


# ---- checks of the parts ---------------------------------------------------------------------


def text_list(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise FilterError(f"filter.{name}={value!r} must be a list of labels")
    out = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (str, int, np.integer)):
            raise FilterError(f"filter.{name} holds {item!r}; labels are given as text or integers")
        out.append(str(item))
    return tuple(out)


def check_ranges(value: Any) -> dict[str, tuple[Bound, Bound]]:
    if not isinstance(value, Mapping):
        raise FilterError(f"filter.ranges={value!r} must map columns to (low, high)")
    out = {}
    for name, bounds in value.items():
        where = f"filter.ranges[{name!r}]"
        if not isinstance(name, str):
            raise FilterError(f"{where}: column names are strings")
        if not isinstance(bounds, tuple | list) or len(bounds) != 2:
            raise FilterError(f"{where}={bounds!r} must be (low, high), None for an open end")
        low, high = (bound(b, where) for b in bounds)
        if low is not None and high is not None and low > high:
            raise FilterError(f"{where}: low={low} is above high={high}")
        out[name] = (low, high)
    return out


def bound(value: Any, where: str) -> Bound:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise FilterError(f"{where}: {value!r} is not a number (null for an open end)")
    if not math.isfinite(float(value)):
        raise FilterError(f"{where}: {value!r} is not finite (null for an open end)")
    return float(value)


def check_flags(value: Any) -> dict[str, bool]:
    if not isinstance(value, Mapping):
        raise FilterError(f"filter.flags={value!r} must map boolean columns to true or false")
    for name, wanted in value.items():
        if not isinstance(wanted, bool):
            raise FilterError(f"filter.flags[{name!r}]={wanted!r} must be true or false")
    return dict(value)


# ---- what the parts read from the run (derived once per run) ---------------------------------

_derived: weakref.WeakKeyDictionary[Run, dict[str, Any]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def derived(run: Run, key: str, compute: Any) -> Any:
    """``compute()`` once per run (the run's data never changes under one object)."""
    with _lock:
        cache = _derived.setdefault(run, {})
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def label_names(run: Run) -> pd.Series:
    """Each sample's label as shown (its class name where known); missing labels as None."""

    def compute() -> pd.Series:
        labels = run.labels
        if labels is None:
            raise FilterError(f"filter.labels: run {run.name!r} has no labels")
        return pd.Series([None if pd.isna(v) else run.label_name(v) for v in labels], dtype=object)

    return derived(run, "label_names", compute)


def label_keys(run: Run, wanted: Sequence[str], name: str) -> set[str]:
    """The shown names of ``wanted`` labels, each given by its name or its value as text."""
    labels = run.labels
    if labels is None:
        raise FilterError(f"filter.{name}: run {run.name!r} has no labels")
    by_text: dict[str, str] = {}
    for value in pd.unique(pd.Series(labels).dropna()):
        shown = run.label_name(value)
        by_text[shown] = shown
        by_text.setdefault(str(value), shown)
    unknown = [w for w in wanted if w not in by_text]
    if unknown:
        names = ", ".join(sorted({repr(v) for v in by_text.values()}))
        raise FilterError(f"filter.{name}: run {run.name!r} has no label {unknown[0]!r}; its labels: {names}")
    return {by_text[w] for w in wanted}


def metadata(run: Run, name: str, where: str) -> pd.Series:
    table = run.metadata
    if name not in table.columns:
        valid = ", ".join(repr(str(c)) for c in table.columns) or "none"
        raise FilterError(f"{where}: run {run.name!r} has no column {name!r}; its metadata columns: {valid}")
    return table[name]


def numeric_column(run: Run, name: str) -> np.ndarray:
    where = f"filter.ranges[{name!r}]"
    series = metadata(run, name, where)
    if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
        raise FilterError(f"{where}: column {name!r} is not numeric ({series.dtype}); filter it by search")
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def boolean_column(run: Run, name: str) -> np.ndarray:
    """0/1 per sample, -1 where missing."""
    where = f"filter.flags[{name!r}]"
    series = metadata(run, name, where)
    if pd.api.types.is_bool_dtype(series) or series.dtype == object:
        values = series.map(
            lambda v: -1 if v is None or v is pd.NA else (1 if v is True else 0 if v is False else 2)
        )
        codes = values.to_numpy(dtype=np.int64)
    elif pd.api.types.is_numeric_dtype(series):
        numbers = series.to_numpy(dtype=np.float64, na_value=np.nan)
        codes = np.where(np.isnan(numbers), -1, np.where(numbers == 1, 1, np.where(numbers == 0, 0, 2)))
    else:
        codes = np.full(len(series), 2)
    if (codes == 2).any():
        raise FilterError(
            f"{where}: column {name!r} is not boolean (it holds values other than true/false, 1/0)"
        )
    return codes


def search_text(run: Run) -> pd.Series:
    """Per sample, the lower-case text a search looks in: the sample's own text (text runs), its
    label's name and its metadata values, separated by newlines."""

    def compute() -> pd.Series:
        parts: list[pd.Series] = []
        if run.rendering_kind == "text/plain":
            texts = []
            for i in range(run.n_samples):
                record = run.rendering(i)
                texts.append(record.decode("utf-8", errors="replace") if record else "")
            parts.append(pd.Series(texts, dtype=object))
        if run.labels is not None:
            parts.append(label_names(run).fillna(""))
        table = run.metadata
        for name in table.columns:
            parts.append(
                table[name].map(lambda v: "" if v is None or v is pd.NA else str(v)).reset_index(drop=True)
            )
        if not parts:
            return pd.Series([""] * run.n_samples, dtype=object)
        joined = parts[0].astype(str)
        for part in parts[1:]:
            joined = joined + "\n" + part.astype(str)
        return joined.str.lower()

    return derived(run, "search_text", compute)
