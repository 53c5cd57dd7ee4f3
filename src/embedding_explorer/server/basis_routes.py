"""The ``/api`` routes of bases: directions made from two groups, and what a basis holds.

``POST /api/runs/{run}/layers/{layer}/directions`` makes a direction from two label values or
two lists of sample ids (a lasso selection); its id then works as ``basis=dir:<id>`` on every
probing route (:mod:`.routes`), for as long as the server runs: the id says how to make the
direction again (:mod:`.directions`), so a client never posts it twice. ``GET .../basis?basis=``
says how many components a basis has and how they read, so a view can offer them before it
loads a gallery.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, HTTPException

from .bases import Basis, ica_fitted_first, resolve_basis
from .directions import check_group, content_id, label_codes, label_groups, label_id, labels_of
from .params import BasisParam, DirectionsDep, LayerName, RegistryDep, RunId
from .recipes import Recipe
from .schemas import BasisInfo, DirectionIn, DirectionOut

router = APIRouter(prefix="/api", dependencies=[Depends(ica_fitted_first)])


@router.get("/runs/{run}/layers/{layer}/basis")
def basis_info(
    registry: RegistryDep, directions: DirectionsDep, run: RunId, layer: LayerName, basis: BasisParam = "pca"
) -> BasisInfo:
    """The components of a basis (PCA, ICA or a direction): names and statistics."""
    served = registry.get(run)
    return info(resolve_basis(served, served.layer(layer), basis, directions))


@router.get("/runs/{run}/layers/{layer}/directions")
def list_directions(
    registry: RegistryDep, directions: DirectionsDep, run: RunId, layer: LayerName
) -> list[DirectionOut]:
    """The directions of this layer made on this server, oldest first."""
    served = registry.get(run)
    served.layer(layer)
    return [direction_out(d) for d in directions.of_layer(served.id, layer)]


@router.post("/runs/{run}/layers/{layer}/directions")
def make_direction(
    registry: RegistryDep, directions: DirectionsDep, run: RunId, layer: LayerName, body: DirectionIn
) -> DirectionOut:
    """A direction from the mean of group A to the mean of group B.

    Give two label values (``label_a``, ``label_b``; display names or stored values) or two
    lists of sample ids (``ids_a``, ``ids_b``). The same groups (and ``name``) always get the
    same id; the same groups under a new name make a new direction of that name. Two labels and
    no name get the id ``label:<a>:<b>``; anything else a digest (see :mod:`.directions`).
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
        coding = labels_of(served)
        codes_a = label_codes(served.id, coding, body.label_a, "label_a")
        codes_b = label_codes(served.id, coding, body.label_b, "label_b")
        (ids_a, ids_b), default, labels = label_groups(coding, codes_a, codes_b)
        name = body.name or default
        direction_id = label_id(codes_a, codes_b) if body.name is None else None
    else:
        if body.ids_a is None or body.ids_b is None:
            raise HTTPException(422, "give both ids_a and ids_b")
        ids_a = check_group(body.ids_a, served, "ids_a")
        ids_b = check_group(body.ids_b, served, "ids_b")
        name = body.name or f"selection A ({len(ids_a)}) → B ({len(ids_b)})"
        direction_id = None
        if len(ids_a) == len(ids_b) and np.array_equal(ids_a, ids_b):
            raise HTTPException(422, "group A and group B are the same samples: a direction needs two groups")
    if direction_id is None:
        direction_id = content_id(served.id, lay.name, ids_a, ids_b, body.name)
    return direction_out(directions.make(served, lay, direction_id, (ids_a, ids_b), name, labels))


def direction_out(recipe: Recipe) -> DirectionOut:
    return DirectionOut(
        id=recipe.id,
        basis=f"dir:{recipe.id}",
        run=recipe.run,
        layer=recipe.layer,
        name=recipe.name,
        separation=recipe.separation if np.isfinite(recipe.separation) else None,
        n_a=recipe.n_a,
        n_b=recipe.n_b,
        label_a=recipe.labels[0] if recipe.labels else None,
        label_b=recipe.labels[1] if recipe.labels else None,
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
