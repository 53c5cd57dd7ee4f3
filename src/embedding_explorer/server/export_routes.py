"""``GET /api/runs/{run}/layers/{layer}/export/{table}.{csv|parquet}``: a layer's tables as files.

The tables are :mod:`embedding_explorer.export`'s (the same ``ee.export_run`` writes): every
sample's scores, the extremes of each component, and each column's association with each
component, of the layer's PCA (default) or, with ``basis=``, its ICA or a direction. Answers are
attachments, so a browser link downloads them.
"""

from __future__ import annotations

import io
from typing import Annotated, Literal
from urllib.parse import quote

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Response

from .. import export
from ..filters import Filter
from ..probe import ScoreProbe
from .bases import ica_fitted_first, resolve_basis
from .params import BasisParam, DirectionsDep, FilterDep, LayerName, RegistryDep, RunId

Table = Literal["scores", "extremes", "associations"]
Format = Literal["csv", "parquet"]
MEDIA = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


router = APIRouter(prefix="/api", dependencies=[Depends(ica_fitted_first)])


@router.get(
    "/runs/{run}/layers/{layer}/export/{table}.{fmt}",
    response_class=Response,
    responses={200: {"content": {MEDIA["csv"]: {}, MEDIA["parquet"]: {}}, "description": "a file"}},
)
def export_table(
    registry: RegistryDep,
    directions: DirectionsDep,
    run: RunId,
    layer: LayerName,
    table: Annotated[Table, Path(description="scores, extremes or associations")],
    fmt: Annotated[Format, Path(description="csv or parquet")],
    n: Annotated[int, Query(ge=1, le=200, description="samples per end (extremes)")] = 8,
    basis: BasisParam = "pca",
    filter: FilterDep = None,
) -> Response:
    """A layer's table as a file; ``filter`` keeps the scores of, and the extremes among, the
    samples it keeps (associations are over all samples)."""
    served = registry.get(run)
    b = resolve_basis(served, served.layer(layer), basis, directions)
    frame = build(table, b.probe, n, filter)
    suffix = "" if b.key == "pca" else "-" + b.key.replace(":", "-")
    headers = {"Content-Disposition": attachment(f"{served.id}-{layer}{suffix}-{table}.{fmt}")}
    return Response(encode(frame, fmt), media_type=MEDIA[fmt], headers=headers)


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` header for any file name (RFC 6266; headers must be Latin-1):
    an ASCII ``filename`` and, when that had to replace characters, the exact name as
    ``filename*=UTF-8''<percent-encoded>``."""
    name = filename.replace("/", "_").replace("\\", "_")
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"%;' else "_" for c in name)
    header = f'attachment; filename="{fallback}"'
    return header if fallback == name else f"{header}; filename*=UTF-8''{quote(name, safe='')}"


def build(table: Table, probe: ScoreProbe, n: int, filter: Filter | None = None) -> pd.DataFrame:
    """The tables ``ee.export_run`` writes, of a layer's PCA, its ICA or a direction."""
    if table == "scores":
        return export.scores_table(probe, filter=filter)
    if table == "extremes":
        return export.extremes_table(probe, n=n, filter=filter)
    return export.association_table(probe)


def encode(frame: pd.DataFrame, fmt: Format) -> bytes:
    """CSV (UTF-8, no index) or Parquet (pyarrow) bytes of ``frame``."""
    if fmt == "csv":
        return frame.to_csv(index=False).encode("utf-8")
    buffer = io.BytesIO()
    export.write_parquet(frame, buffer)
    return buffer.getvalue()
