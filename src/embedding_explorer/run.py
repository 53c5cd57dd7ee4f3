"""A finished run and its layers: PCA results, scores and probing along components."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from .exceptions import (
    DamagedRunError,
    EmbeddingExplorerError,
    IncompleteRunError,
    LayerNotFoundError,
    RunReplacedError,
)
from .filters import Filter, FilterLike, as_filter
from .locations import Location, StorageOptions, as_location
from .probe import Histogram, ScoreProbe
from .records import IMAGE, as_png
from .store.format import ARRAYS, MANIFEST, SAMPLES
from .store.reader import RunReader
from .store.schema import check_counts, check_shape, validate_manifest
from .views import view

if TYPE_CHECKING:
    from .analysis.directions import Direction
    from .analysis.ica import ICAResult

SAMPLE_COLUMNS = ("sample_id", "label")
MASKS_KEPT = 32  # filters whose masks a run keeps (the UI asks for the same few again and again)
__all__ = ["Histogram", "Layer", "Run", "open_run"]


class Layer(ScoreProbe):
    """One layer of a run: its PCA, the scores of every sample, and probing along components
    (:class:`.probe.ScoreProbe`)."""

    def __init__(self, run: Run, info: dict[str, Any]) -> None:
        self.run = run
        self.name: str = info["name"]
        self.dim: int = int(info["dim"])
        self.key: str = info["key"]
        self.info = info
        self._ica_cache: dict[tuple[int, int, int], ICAResult] = {}
        self._ica_locks: dict[tuple[int, int, int], threading.Lock] = {}  # one fit per key at a time
        self._ica_locks_guard = threading.Lock()
        self._pca_arrays: dict[str, np.ndarray] | None = None
        self._scores: np.ndarray | None = None

    def __repr__(self) -> str:
        return f"Layer({self.name!r}, dim={self.dim}, n_components={self.n_components})"

    @property
    def _pca(self) -> dict[str, np.ndarray]:
        if self._pca_arrays is None:
            self._pca_arrays = self.run._reader.pca_arrays(self.key)
        else:
            self.run._reader.check()  # read at the generation the run opened, which must still be there
        return self._pca_arrays

    @property
    def mean(self) -> np.ndarray:
        """ndarray of shape (D,): the mean activation."""
        return self._pca["mean"]

    @property
    def components(self) -> np.ndarray:
        """ndarray of shape (k, D): principal axes, unit-norm rows, scikit-learn signs."""
        return self._pca["components"]

    @property
    def explained_variance(self) -> np.ndarray:
        """ndarray of shape (k,): variance along each component (N-1 denominator)."""
        return self._pca["explained_variance"]

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """ndarray of shape (k,): each component's share of the layer's total variance."""
        return self._pca["explained_variance_ratio"]

    @property
    def n_components(self) -> int:
        return int(self.info["n_components"])

    @property
    def total_variance(self) -> float:
        return float(self.info["total_variance"])

    @property
    def pca_method(self) -> str:
        return str(self.info["pca_method"])

    @property
    def scores(self) -> np.ndarray:
        """ndarray of shape (N, k): ``(activations - mean) @ components.T``, float32."""
        if self._scores is None:
            self._scores = np.asarray(self.run._reader.array("scores", self.key)[...])
        else:
            self.run._reader.check()
        return self._scores

    @property
    def activations(self) -> Any:
        """The (N, D) activations as a lazily read Zarr array (index it to get numpy; each read
        raises :class:`.RunReplacedError` if the run was replaced since it was opened)."""
        return self.run._reader.array("activations", self.key)

    def project(self, activations: Any) -> np.ndarray:
        """Scores of any (M, D) activations on this layer's components (no refit)."""
        x = np.asarray(activations, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise EmbeddingExplorerError(
                f"layer {self.name!r} has {self.dim} features; got activations of shape {x.shape}"
            )
        return (x - self.mean) @ self.components.T

    # what components mean (embedding_explorer.analysis) ------------------------------------
    def association(self, column: str = "label", *, kind: str = "auto") -> pd.DataFrame:
        """One row per component: ``eta2`` and mean score per category for a categorical column
        (labels by default), or Pearson ``r`` for a numeric one, with a readable ``summary``."""
        from .analysis.associations import association

        return association(self, column, kind=kind)  # type: ignore[arg-type]

    def extreme_makeup(
        self, component: int, n: int = 10, column: str = "label"
    ) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
        """The categories among the ``n`` lowest and ``n`` highest samples, most common first."""
        from .analysis.associations import extreme_makeup

        return extreme_makeup(self, component, n, column)

    def pc_correlation(self, other: Layer) -> np.ndarray:
        """(k_self, k_other) Pearson correlations of the two layers' component scores."""
        from .analysis.correlation import pc_correlation

        return pc_correlation(self, other)

    def neighbors(
        self,
        sample_id: int,
        k: int = 10,
        metric: Literal["cosine", "euclidean"] = "cosine",
        *,
        space: Literal["activations", "scores"] = "activations",
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, distances)`` of the ``k`` samples nearest ``sample_id`` in this layer, nearest
        first, the sample itself excluded: exact, streamed over the stored activations in chunks
        (``space="scores"``: over the PCA scores, fast). Ties by lower id."""
        from .analysis.neighbors import neighbors

        return neighbors(self, sample_id, k, metric, space=space)

    # other axes than the principal components (embedding_explorer.analysis) ----------------
    def direction(
        self,
        group_a: Sequence[int] | np.ndarray,
        group_b: Sequence[int] | np.ndarray,
        *,
        name: str | None = None,
    ) -> Direction:
        """The unit direction from the mean activation of ``group_a`` to that of ``group_b``
        (sample ids), with every sample's score along it, probed like a component."""
        from .analysis.directions import direction

        return direction(self, group_a, group_b, name=name)

    def label_direction(self, label_a: Any, label_b: Any, *, name: str | None = None) -> Direction:
        """:meth:`direction` between the samples of two labels (raw values or label names)."""
        from .analysis.directions import label_direction

        return label_direction(self, label_a, label_b, name=name)

    def ica(
        self, n_components: int | None = None, *, seed: int = 0, max_samples: int = 50_000, warn: bool = True
    ) -> ICAResult:
        """FastICA on the top ``n_components`` PCA scores (default: all with variance); cached on
        the layer. Concurrent calls with the same arguments fit once (the others wait for it).
        A fit that stops at its iteration limit warns (``ICAConvergenceWarning``), or with
        ``warn=False`` (a server) is logged."""
        from .analysis.ica import ica, usable_components

        key = (usable_components(self) if n_components is None else n_components, seed, max_samples)
        with self._ica_locks_guard:
            lock = self._ica_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._ica_cache:
                self._ica_cache[key] = ica(self, n_components, seed=seed, max_samples=max_samples, warn=warn)
            return self._ica_cache[key]

    def ica_ready(self, n_components: int | None = None, *, seed: int = 0, max_samples: int = 50_000) -> bool:
        """Whether :meth:`ica` with these arguments is fitted already (it then answers at once)."""
        from .analysis.ica import usable_components

        key = (usable_components(self) if n_components is None else n_components, seed, max_samples)
        return key in self._ica_cache

    def _subject(self) -> str:
        return f"layer {self.name!r}"


class Run:
    """A finished run, opened from its directory (a local path or any fsspec URL); needs neither
    the model nor the data."""

    def __init__(self, path: str | Path | Location, *, storage_options: StorageOptions | None = None) -> None:
        if isinstance(path, os.PathLike) and not isinstance(path, Path):
            path = Path(os.fspath(path))
        if not isinstance(path, (str, Path, Location)):
            raise TypeError(
                "path must be a run directory (str or Path) or an fsspec URL, "
                f"not {type(path).__name__} {path!r}"
            )
        location = as_location(path, storage_options)
        if location.local is not None:  # lazy reads keep working after a chdir
            location = as_location(location.local.resolve())
        self.location = location
        self._reader = open_reader(location)
        self.manifest = self._reader.manifest
        self.name: str = self.manifest["name"]
        self.n_samples: int = int(self.manifest["data"]["n_samples"])
        self._samples: pd.DataFrame | None = None
        self._masks: OrderedDict[str, np.ndarray] = OrderedDict()
        self._masks_lock = threading.Lock()
        self._layers = {info["name"]: Layer(self, info) for info in self.manifest["layers"]}

    @property
    def generation(self) -> str:
        """The identity of the committed run this object opened: each commit of a run directory
        gets a new one (``manifest.json``'s ``generation``)."""
        return self._reader.generation

    def current_generation(self) -> str | None:
        """The generation the run's directory holds now: :attr:`generation` while it is unchanged,
        another one once it was replaced, None when no finished run is there."""
        return self._reader.current_generation()

    def __repr__(self) -> str:
        return f"Run({self.name!r}, n_samples={self.n_samples}, layers={self.layers})"

    @property
    def path(self) -> Path:
        """The run's local folder (for a run at another fsspec URL, see :attr:`url`)."""
        if self.location.local is None:
            raise EmbeddingExplorerError(
                f"run {self.name!r} is at {self.location.url!r}, not in a local folder; use run.url"
            )
        return self.location.local

    @property
    def url(self) -> str:
        """Where the run is: its local path, or its fsspec URL."""
        return self.location.url

    @property
    def layers(self) -> list[str]:
        return list(self._layers)

    def layer(self, name: str) -> Layer:
        try:
            return self._layers[name]
        except KeyError:
            raise LayerNotFoundError(
                f"run {self.name!r} has no layer {name!r}; its layers: {', '.join(self.layers)}"
            ) from None

    __getitem__ = layer

    def __iter__(self) -> Any:
        return iter(self._layers.values())

    @property
    def samples(self) -> pd.DataFrame:
        """The sample table: ``sample_id``, ``label`` (when present), metadata columns."""
        if self._samples is None:
            table = self._reader.samples()
            check_counts((self.location / MANIFEST).url, self.n_samples, SAMPLES, len(table))
            self._samples = table
        else:
            self._reader.check()
        return self._samples

    @property
    def labels(self) -> np.ndarray | None:
        """ndarray of shape (N,), or None when the run has no labels."""
        return self.samples["label"].to_numpy() if "label" in self.samples else None

    @property
    def label_names(self) -> list[str] | None:
        """Display names of integer labels (e.g. a Dataset's ``classes``), when known."""
        names = self.manifest["labels"].get("names")
        return list(names) if names else None

    @property
    def metadata(self) -> pd.DataFrame:
        """The metadata columns given to ``explore``, one row per sample."""
        return self.samples.drop(columns=[c for c in SAMPLE_COLUMNS if c in self.samples])

    def mask(self, filter: FilterLike | str = None) -> np.ndarray:
        """Boolean array (N,): which samples pass ``filter`` (a :class:`~embedding_explorer.Filter`,
        its dict or JSON; None keeps all). Masks of recent filters are kept."""
        f = as_filter(filter)
        if f is None:
            return np.ones(self.n_samples, dtype=bool)
        key = f.to_json()
        with self._masks_lock:
            cached = self._masks.get(key)
            if cached is not None:
                self._masks.move_to_end(key)
                return cached
        mask = f.mask(self)
        mask.setflags(write=False)
        with self._masks_lock:
            self._masks[key] = mask
            while len(self._masks) > MASKS_KEPT:
                self._masks.popitem(last=False)
        return mask

    def select(self, filter: FilterLike | str = None, **parts: Any) -> np.ndarray:
        """Sample ids (ascending) that pass a filter: ``run.select(labels=["Shirt"],
        ranges={"brightness": (0.5, None)}, flags={"correct": False}, query="sleeve")``, or
        ``run.select(ee.Filter(...))`` / its dict. See :class:`~embedding_explorer.Filter`."""
        if parts:
            if filter is not None:
                raise TypeError("pass a filter or its parts as keywords, not both")
            filter = Filter(**parts)
        return np.flatnonzero(self.mask(filter))

    @property
    def input_statistics(self) -> list[str]:
        """The metadata columns that are input statistics recorded by ``explore`` (see
        :mod:`embedding_explorer.inputstats`); empty for runs made without them."""
        recorded = self.manifest.get("recorded") or {}
        return [str(c) for c in recorded.get("input_statistics", []) if c in self.samples]

    @property
    def output_columns(self) -> list[str]:
        """The metadata columns that record the model's outputs (``predicted``, ``confidence``,
        ``entropy``, ``loss``, ``correct``; see :mod:`embedding_explorer.outputs`)."""
        recorded = self.manifest.get("recorded") or {}
        return [str(c) for c in recorded.get("outputs", []) if c in self.samples]

    @property
    def rendering_kind(self) -> str | None:
        """``"image/png"``, ``"text/plain"``, ``"audio/wav"``, or None when samples have no rendering."""
        kind = self.manifest["rendering"]["kind"]
        return str(kind) if kind else None

    def rendering(self, sample_id: int) -> bytes | None:
        """The stored thumbnail (PNG bytes), text (UTF-8) or audio clip (WAV bytes) of one sample."""
        if not 0 <= sample_id < self.n_samples:
            raise IndexError(f"sample_id={sample_id} is out of range (0..{self.n_samples - 1})")
        record = self._reader.rendering(sample_id)
        return as_png(record) if record is not None and self.rendering_kind == IMAGE else record

    def verify(self) -> None:
        """Read every file of the run whose checksum was recorded at commit and compare; raises
        :class:`~embedding_explorer.DamagedRunError` naming the first file that differs (opening
        the run already checks that every file is there, whole)."""
        from .store.integrity import verify

        verify(self._reader.location, self._reader.manifest)

    def pc_correlation(self, layer_a: str, layer_b: str) -> np.ndarray:
        """(k_a, k_b) Pearson correlations between the component scores of two layers."""
        return self.layer(layer_a).pc_correlation(self.layer(layer_b))

    def cka(self, *, debiased: bool = False) -> pd.DataFrame:
        """Linear CKA between every pair of this run's layers (layers x layers)."""
        from .analysis.cka import cka_matrix

        values = cka_matrix(list(self), debiased=debiased)
        return pd.DataFrame(values, index=self.layers, columns=self.layers)

    def insights(self, *, compare: Sequence[Run] | Run = ()) -> pd.DataFrame:
        """Findings, strongest first: input statistics dominating a layer's component, where the
        classes separate, errors at one end of a component, and against ``compare`` (runs of
        the same model over other data, or of other models over the same samples) data-set
        shifts and CKA. See :mod:`embedding_explorer.analysis.insights`.

        Reached by name, not imported: the insights use the data-set comparison, whose
        ``joint()`` builds a run (``build.joint``), which would put the builders in the
        documented run <-> analysis circle (tests/test_imports.py)."""
        module = importlib.import_module("embedding_explorer.analysis.insights")
        table: pd.DataFrame = module.insights(self, compare=compare)
        return table

    def show(self, *, height: int = 800, mode: str | None = None) -> Any:
        """Display the explorer UI for this run in the notebook (returns the server handle).

        Wherever the kernel runs: Colab's output proxy, a Jupyter server's or JupyterHub's
        jupyter-server-proxy, an IFrame of the local server, or the URL and the ``ssh -L`` to
        forward it; ``mode="colab"|"proxy"|"local"|"url"`` overrides the detection. The web server
        sits above the run: this calls :func:`.server.show` through :mod:`.views`."""
        return view("show")([self], height=height, mode=mode)

    def report(self, path: str | Path, *, n: int = 8) -> Path:
        """Write a self-contained HTML report of this run (opens from disk, no server).

        The report sits above the run: this calls :func:`.report.write_report` through :mod:`.views`."""
        result: Path = view("report")(self, path, n=n)
        return result

    def label_name(self, label: Any) -> str:
        """How a label reads: its class name where known."""
        names = self.label_names
        if names is not None and isinstance(label, (int, np.integer)) and 0 <= label < len(names):
            return str(names[int(label)])
        return str(label)


def open_run(path: str | Path | Location, *, storage_options: StorageOptions | None = None) -> Run:
    """Open a finished run directory: a local path or any fsspec URL (``s3://bucket/runs/x``),
    with fsspec ``storage_options`` where credentials need passing. Fails clearly on an
    unfinished run, a damaged one (:class:`.DamagedRunError`, :class:`.ManifestError` naming the
    file and the field); a run being replaced opens as the old or the new run, never a mix."""
    return Run(path, storage_options=storage_options)


OPEN_TRIES = 6


def open_reader(location: Location) -> RunReader:
    """A reader of the run at ``location`` whose manifest, arrays and sample table are of one
    generation: checked (schema, counts, shapes), then the generation read again; a run
    replaced meanwhile is opened again (a few times)."""
    for attempt in range(OPEN_TRIES):
        last = attempt == OPEN_TRIES - 1
        time.sleep(0.0 if attempt == 0 else 0.005 * 2**attempt)
        try:
            reader = RunReader(location)
        except (FileNotFoundError, IncompleteRunError):
            if last or not _swapping(location):
                raise
            continue
        except RunReplacedError:  # replaced while its files were being opened
            if last:
                raise
            continue
        try:
            check_run(reader)
        except (FileNotFoundError, DamagedRunError, RunReplacedError):
            if last or reader.current_generation() == reader.generation:
                raise  # damaged, not replaced
            continue
        if reader.current_generation() == reader.generation:
            return reader
    reader.check()
    raise AssertionError("unreachable")


def _swapping(location: Location) -> bool:
    """Whether a local run is between the two renames of a commit's swap (``.NAME.old`` beside
    it): then opening it again a moment later finds the new run."""
    if location.local is None:
        return False
    return (location.local.parent / f".{location.local.name}.old").exists()


def check_run(reader: RunReader) -> None:
    """The manifest's schema, and its counts against the sample table's rows and the arrays'
    shapes (metadata only: nothing large is read)."""
    manifest, url = reader.manifest, (reader.location / MANIFEST).url
    validate_manifest(manifest, url)
    n = int(manifest["data"]["n_samples"])
    check_counts(url, n, (reader.location / SAMPLES).url, reader.n_sample_rows())
    for info in manifest["layers"]:
        scores = reader.array("scores", info["key"])
        check_shape(url, f"scores of layer {info['name']!r}", scores.shape, (n, info["n_components"]))
        if (reader.location / ARRAYS / "activations" / info["key"]).exists():
            activations = reader.array("activations", info["key"])
            check_shape(url, f"activations of layer {info['name']!r}", activations.shape, (n, info["dim"]))
