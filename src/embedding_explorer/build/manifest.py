"""The manifest of a run: one schema, filled in by every builder.

``manifest.json`` is the commit marker of a run and what :class:`~embedding_explorer.run.Run`
reads first: the format, the reuse key, where the data came from, the options, one entry per
layer (:func:`layer_entry`), the labels, the sample table's columns, the renderings, package
versions and timings.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._version import __version__
from ..pca import PCAResult
from ..store.format import FORMAT, FORMAT_VERSION, SHARED_RENDERINGS_VERSION


def versions() -> dict[str, str]:
    """The versions of the packages that computed a run."""
    import torch
    import zarr

    return {
        "embedding_explorer": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "zarr": zarr.__version__,
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """What a finished run records about itself; :meth:`as_dict` is written as ``manifest.json``.

    Attributes
    ----------
    name : str
    key : str
        The reuse key: a builder reuses the finished run at its ``out`` when the keys match.
    model : dict
        The model's class and fingerprint (``fingerprint.model_fingerprint``).
    n_samples : int
    data_type : str
        The type of the data the samples came from (``"joint"`` for a joint run).
    data_fingerprint : str or None
    content_hash : str or None
        A hash of every input and label, when the data could be hashed.
    options : dict
        The builder's options (those that went into the key and a few more).
    layers : list of dict
        One :func:`layer_entry` per layer, in order.
    labels_present : bool
    label_names : list of str or None
    metadata_columns : list of str
    recorded : dict
        The sample-table columns ``explore`` recorded itself, by source: ``"input_statistics"``
        (:mod:`~embedding_explorer.inputstats`) and ``"outputs"`` (:mod:`~embedding_explorer.outputs`).
    rendering_kind : str or None
        ``records.IMAGE``, ``records.TEXT``, or None when samples have no rendering.
    timings : dict
    extra : dict
        More top-level entries of one builder (the joint run's ``"joint"`` sources).
    versions : dict
    created : str
    generation : str
        A random id of this commit of the run (uuid4 hex): readers check that the directory they
        opened still holds it (:mod:`.store.generation`), so a run replaced on disk is never
        read as a mix of two runs.
    """

    name: str
    key: str
    model: Mapping[str, Any]
    n_samples: int
    data_type: str
    data_fingerprint: str | None = None
    content_hash: str | None = None
    options: Mapping[str, Any]
    layers: Sequence[Mapping[str, Any]]
    labels_present: bool
    label_names: Sequence[str] | None = None
    metadata_columns: Sequence[str] = ()
    recorded: Mapping[str, Sequence[str]] = field(
        default_factory=lambda: {"input_statistics": [], "outputs": []}
    )
    rendering_kind: str | None = None
    renderings_shared: bool = False  # samples share renderings (per-token runs: their text's)
    timings: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=versions)
    created: str = field(default_factory=_now)
    generation: str = field(default_factory=lambda: uuid.uuid4().hex)

    def as_dict(self) -> dict[str, Any]:
        """The JSON object of ``manifest.json``."""
        return {
            "format": FORMAT,
            # a reader of version 1 would show each token another text: such runs are version 2
            "format_version": SHARED_RENDERINGS_VERSION if self.renderings_shared else FORMAT_VERSION,
            "name": self.name,
            "key": self.key,
            "generation": self.generation,
            "created": self.created,
            "model": dict(self.model),
            "data": {
                "n_samples": self.n_samples,
                "type": self.data_type,
                "fingerprint": self.data_fingerprint,
                "content_hash": self.content_hash,
            },
            "options": dict(self.options),
            **self.extra,
            "layers": [dict(layer) for layer in self.layers],
            "labels": {
                "present": self.labels_present,
                "names": None if self.label_names is None else list(self.label_names),
            },
            "metadata_columns": [str(c) for c in self.metadata_columns],
            "recorded": {k: [str(c) for c in v] for k, v in self.recorded.items()},
            "rendering": {"kind": self.rendering_kind} | ({"shared": True} if self.renderings_shared else {}),
            "versions": dict(self.versions),
            "timings": dict(self.timings),
        }


def layer_entry(
    name: str,
    key: str,
    pca: PCAResult,
    *,
    module: str | None,
    call: int | None,
    reduce: str | None,
) -> dict[str, Any]:
    """A layer's entry in the manifest: what it hooks, how it was reduced, its PCA in brief.

    ``key`` is the layer's storage key (``RunWriter.keys``); ``module`` and ``call`` what was
    hooked (None for a layer that did not come from a model); ``reduce`` the reducer's
    description."""
    return {
        "name": name,
        "key": key,
        "module": module,
        "call": call,
        "dim": int(pca.mean.shape[0]),
        "reduce": reduce,
        "n_components": len(pca.components),
        "pca_method": pca.method,
        "total_variance": pca.total_variance,
        "explained_variance_ratio": pca.explained_variance_ratio.tolist(),
        "zero_variance": pca.total_variance <= 0,
    }
