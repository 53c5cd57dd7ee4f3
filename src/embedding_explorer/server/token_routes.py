"""The ``/api`` routes of per-token runs: tokens in the context of their text, and a component read
along every token of one text (a coloured strip).

A per-token run's samples are tokens; its sample table has ``text_id``, ``position`` and
``token``, and the tokens of one text are consecutive sample ids (:mod:`embedding_explorer.tokens`),
so a text's tokens are one ``searchsorted`` away. Each token's stored rendering is its full text.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import BaseModel, Field

from .answers import finite
from .bases import check_component, ica_fitted_first
from .errors import NotFoundError
from .params import BasisParam, ComponentIndex, DirectionsDep, LayerName, RegistryDep, RunId
from .registry import ServedRun
from .routes import basis_of, parse_ids, stored_rendering

router = APIRouter(prefix="/api", dependencies=[Depends(ica_fitted_first)])

MAX_WINDOW = 64
Window = Annotated[int, Query(ge=0, le=MAX_WINDOW, description="tokens shown on each side of the token")]


class TokenContext(BaseModel):
    """One token sample within a window of its text."""

    id: int = Field(description="the token's sample id")
    text_id: int
    position: int = Field(description="the token's position among its text's tokens")
    tokens: list[str] = Field(description="the window of tokens, the sample's own at `focus`")
    focus: int = Field(description="index of the sample's token within `tokens`")
    more_before: bool = Field(description="the text has tokens before the window")
    more_after: bool = Field(description="the text has tokens after the window")
    text: str = Field(description="the whole text")


class TokenContexts(BaseModel):
    items: list[TokenContext]


class TokenStrip(BaseModel):
    """A component's score at every token of one text, for a coloured strip."""

    layer: str
    basis: str
    component: int
    text_id: int
    text: str
    sample_ids: list[int]
    tokens: list[str]
    scores: list[float | None]
    low: float = Field(description="the component's 1st percentile over all tokens (colour scale)")
    high: float = Field(description="the component's 99th percentile over all tokens (colour scale)")


def token_columns(served: ServedRun) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """text_id, position and token of every sample, or 404 for a run that is not per token."""
    samples = served.run.samples
    missing = [c for c in ("text_id", "position", "token") if c not in samples.columns]
    if missing:
        raise NotFoundError(
            f"run {served.id!r} is not a per-token run (its samples have no {', '.join(missing)}); "
            "make one with reduce='tokens'"
        )
    return (
        samples["text_id"].to_numpy(dtype=np.int64),
        samples["position"].to_numpy(dtype=np.int64),
        [str(t) for t in samples["token"]],
    )


def text_span(text_ids: np.ndarray, text_id: int) -> tuple[int, int]:
    """The sample ids ``[first, stop)`` of the tokens of ``text_id`` (they are consecutive)."""
    return int(np.searchsorted(text_ids, text_id, "left")), int(np.searchsorted(text_ids, text_id, "right"))


@router.get("/runs/{run}/tokens", response_model=TokenContexts)
def token_contexts(
    registry: RegistryDep,
    run: RunId,
    ids: Annotated[str, Query(description="comma-separated sample ids (tokens)")],
    window: Window = 6,
) -> TokenContexts:
    """Each token sample with ``window`` tokens of its text on each side, and the whole text."""
    served = registry.get(run)
    text_ids, positions, tokens = token_columns(served)
    items = []
    for sample_id in parse_ids(ids, served):
        first, stop = text_span(text_ids, int(text_ids[sample_id]))
        lo, hi = max(first, sample_id - window), min(stop, sample_id + window + 1)
        items.append(
            TokenContext(
                id=sample_id,
                text_id=int(text_ids[sample_id]),
                position=int(positions[sample_id]),
                tokens=tokens[lo:hi],
                focus=sample_id - lo,
                more_before=lo > first,
                more_after=hi < stop,
                text=stored_rendering(served, sample_id).decode("utf-8", errors="replace"),
            )
        )
    return TokenContexts(items=items)


@router.get("/runs/{run}/layers/{layer}/components/{c}/texts/{text_id}", response_model=TokenStrip)
def token_strip(
    registry: RegistryDep,
    directions: DirectionsDep,
    run: RunId,
    layer: LayerName,
    c: ComponentIndex,
    text_id: Annotated[int, Path(ge=0, description="the text's index in the data")],
    basis: BasisParam = "pca",
) -> TokenStrip:
    """Component ``c``'s score at every token of text ``text_id`` (and the colour scale)."""
    served, b = basis_of(registry, directions, run, layer, basis)
    check_component(b, c)
    text_ids, _, tokens = token_columns(served)
    first, stop = text_span(text_ids, text_id)
    if first == stop:
        raise NotFoundError(
            f"run {served.id!r} has no tokens of text {text_id}; texts are 0..{int(text_ids[-1])}"
        )
    column = np.asarray(b.probe.scores[:, c], dtype=np.float64)
    low, high = (float(v) for v in np.percentile(column, [1, 99]))
    if not high > low:
        raise HTTPException(422, f"component {c} of {b.key} is constant over the tokens")
    return TokenStrip(
        layer=b.layer.name,
        basis=b.key,
        component=c,
        text_id=text_id,
        text=stored_rendering(served, first).decode("utf-8", errors="replace"),
        sample_ids=list(range(first, stop)),
        tokens=tokens[first:stop],
        scores=[finite(v) for v in column[first:stop]],
        low=low,
        high=high,
    )
