"""What a layer's samples are probed along: its PCA, its ICA, or a direction made in the UI.

Every probing route takes ``basis=pca|ica|dir:<id>``; :func:`resolve_basis` turns that into a
:class:`Basis` whose ``probe`` answers ``extremes``, ``quantile_samples``, ``histogram`` and
``percentiles`` alike (the library's ``ScoreProbe``), so one code path serves all three.

A direction's id says how to make it again (:mod:`.directions`), so ``dir:<id>`` keeps working
after the server dropped the made direction from its cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from fastapi import HTTPException, Request

from ..exceptions import EmbeddingExplorerError
from ..probe import ScoreProbe
from ..run import Layer
from .answers import finite_or_none, heavy
from .directions import Directions
from .errors import NotFoundError
from .registry import ServedRun

BasisKind = Literal["pca", "ica", "direction"]


@dataclass(frozen=True)
class Basis:
    """One basis of one layer: the probe, and how its components read."""

    key: str  # "pca", "ica" or "dir:<id>": part of cache keys
    kind: BasisKind
    layer: Layer
    probe: ScoreProbe
    names: list[str]  # "PC 1", "IC 1", or the direction's name
    explained_variance_ratio: list[float] | None  # PCA only
    kurtosis: list[float] | None  # ICA only: excess kurtosis per component
    separation: float | None  # a direction only: how far apart its two groups are

    @property
    def n_components(self) -> int:
        return int(self.probe.scores.shape[1])


def resolve_basis(served: ServedRun, layer: Layer, basis: str, directions: Directions) -> Basis:
    """``pca``, ``ica`` or ``dir:<id>`` of ``layer`` (404/422 naming what is valid)."""
    if basis == "pca":
        ratios = [
            float(r) for r in layer.info.get("explained_variance_ratio", layer.explained_variance_ratio)
        ]
        names = [f"PC {i + 1}" for i in range(layer.n_components)]
        return Basis("pca", "pca", layer, layer, names, ratios, None, None)
    if basis == "ica":
        ica = layer.ica(warn=False)
        m = int(ica.scores.shape[1])
        kurt = [float(k) for k in np.asarray(ica.kurtosis, dtype=float)]
        return Basis("ica", "ica", layer, ica, [f"IC {i + 1}" for i in range(m)], None, kurt, None)
    if basis.startswith("dir:"):
        item = directions.get(served, layer, basis[4:])
        d = item.direction
        return Basis(basis, "direction", layer, d, [str(d.name)], None, None, finite_or_none(d.separation))
    raise HTTPException(422, f"basis={basis!r} must be 'pca', 'ica' or 'dir:<id>' (a direction's id)")


def variance_ratios(layer: Layer) -> list[float]:
    """From the manifest: reading the PCA arrays would load the (k, D) components."""
    ratios = layer.info.get("explained_variance_ratio")
    return [float(r) for r in (ratios if ratios is not None else layer.explained_variance_ratio)]


def check_component(basis: Basis, component: int) -> None:
    """404 naming the valid components when ``component`` is not one of ``basis``."""
    k = basis.n_components
    if component >= k:
        raise NotFoundError(
            f"component={component} is out of range for {basis.key} of layer {basis.layer.name!r}, "
            f"which has {k} component{'s' if k != 1 else ''} (0..{k - 1})"
        )


async def ica_fitted_first(request: Request) -> None:
    """A router dependency: a ``basis=ica`` request for a layer whose ICA is not fitted yet fits
    it in the analysis threads (:func:`.answers.heavy`) before the handler runs in the common
    pool, so a slow first fit holds none of the threads that galleries and thumbnails need.
    A run or layer that does not exist is left to the handler to answer (404)."""
    run, layer = request.path_params.get("run"), request.path_params.get("layer")
    if request.query_params.get("basis") != "ica" or run is None or layer is None:
        return
    try:
        target = request.app.state.registry.get(run).layer(layer)
    except (NotFoundError, EmbeddingExplorerError):
        return
    if not target.ica_ready():
        await heavy(request, lambda: target.ica(warn=False))
