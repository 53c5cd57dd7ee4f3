"""The ``/api`` routes of bases: directions made from two groups, and what a basis holds.

``POST /api/runs/{run}/layers/{layer}/directions`` makes a direction from two label values or
two lists of sample ids (a lasso selection); its id then works as ``basis=dir:<id>`` on every
probing route (:mod:`.routes`). ``GET .../basis?basis=`` says how many components a basis has
and how they read, so a view can offer them before it loads a gallery.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException

from ..analysis.directions import Direction, matching_labels
from ..run import Layer
from .bases import Basis, DirectionStore, StoredDirection, check_group, finite_or_none, resolve_basis
from .registry import Registry, ServedRun
from .routes import BasisParam, LayerName, RunId
from .schemas import BasisInfo, DirectionIn, DirectionOut


def basis_router(registry: Registry, directions: DirectionStore) -> APIRouter:
    router = APIRouter(prefix="/api")

    @router.get("/runs/{run}/layers/{layer}/basis")
    def basis_info(run: RunId, layer: LayerName, basis: BasisParam = "pca") -> BasisInfo:
        """The components of a basis (PCA, ICA or a direction): names and statistics."""
        served = registry.get(run)
        return info(resolve_basis(served, served.layer(layer), basis, directions))

    @router.get("/runs/{run}/layers/{layer}/directions")
    def list_directions(run: RunId, layer: LayerName) -> list[DirectionOut]:
        """The directions of this layer made on this server, oldest first."""
        served = registry.get(run)
        served.layer(layer)
        return [direction_out(d) for d in directions.of_layer(served.id, layer)]

    @router.post("/runs/{run}/layers/{layer}/directions")
    def make_direction(run: RunId, layer: LayerName, body: DirectionIn) -> DirectionOut:
        """A direction from the mean of group A to the mean of group B, kept in memory.

        Give two label values (``label_a``, ``label_b``; display names or stored values) or two
        lists of sample ids (``ids_a``, ``ids_b``). The same groups (and ``name``) always get the
        same id; the same groups under a new name make a new direction of that name.
        """
        served = registry.get(run)
        lay = served.layer(layer)
        by_labels = body.label_a is not None or body.label_b is not None
        by_ids = body.ids_a is not None or body.ids_b is not None
        if by_labels == by_ids:
            raise HTTPException(422, "give either label_a and label_b, or ids_a and ids_b (not both)")
        labels: tuple[str, str] | None = None
        if by_labels:
            if body.label_a is None or body.label_b is None:
                raise HTTPException(422, "give both label_a and label_b")
            ids_a, name_a = label_group(served, body.label_a, "label_a")
            ids_b, name_b = label_group(served, body.label_b, "label_b")
            labels = (name_a, name_b)
            name = body.name or f"{name_a} → {name_b}"
        else:
            if body.ids_a is None or body.ids_b is None:
                raise HTTPException(422, "give both ids_a and ids_b")
            ids_a = check_group(body.ids_a, served, "ids_a")
            ids_b = check_group(body.ids_b, served, "ids_b")
            name = body.name or f"selection A ({len(ids_a)}) → B ({len(ids_b)})"
        if len(ids_a) == len(ids_b) and np.array_equal(ids_a, ids_b):
            raise HTTPException(422, "group A and group B are the same samples: a direction needs two groups")
        key = DirectionStore.key(served.id, lay.name, ids_a, ids_b, body.name)
        stored = directions.get(key)
        if stored is None:
            made = make(lay, ids_a, ids_b, name)
            stored = directions.put(StoredDirection(key, served.id, lay.name, made, labels))
        return direction_out(stored)

    return router


def make(layer: Layer, ids_a: np.ndarray, ids_b: np.ndarray, name: str) -> Direction:
    """``layer.direction`` (analysis/directions.py): library errors become 422 in app.py."""
    return layer.direction(ids_a, ids_b, name=name)


def label_group(served: ServedRun, label: str | int | float | bool, which: str) -> tuple[np.ndarray, str]:
    """The sample ids whose label reads ``label``: a display name or a stored value, resolved
    as the library resolves it (:func:`~..analysis.directions.matching_labels`)."""
    coding = served.labels
    if coding is None:
        raise HTTPException(422, f"run {served.id!r} has no labels: make the direction from two selections")
    codes = matching_labels(coding.values, coding.names, label)
    if not codes:
        valid = ", ".join(repr(n) for n in coding.names[:30])
        raise HTTPException(422, f"{which}={label!r} is no label of run {served.id!r}; its labels: {valid}")
    ids = np.flatnonzero(np.isin(coding.codes, codes)).astype(np.int64)
    return ids, coding.names[codes[0]]


def direction_out(item: StoredDirection) -> DirectionOut:
    d = item.direction
    return DirectionOut(
        id=item.id,
        basis=f"dir:{item.id}",
        run=item.run,
        layer=item.layer,
        name=str(d.name),
        separation=finite_or_none(d.separation),
        n_a=len(d.group_a),
        n_b=len(d.group_b),
        label_a=item.labels[0] if item.labels else None,
        label_b=item.labels[1] if item.labels else None,
    )


def info(basis: Basis) -> BasisInfo:
    return BasisInfo(
        layer=basis.layer.name,
        basis=basis.key,
        kind=basis.kind,
        n_components=basis.n_components,
        names=basis.names,
        explained_variance_ratio=basis.explained_variance_ratio,
        kurtosis=basis.kurtosis,
        separation=basis.separation,
    )
