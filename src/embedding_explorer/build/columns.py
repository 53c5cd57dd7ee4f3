"""The columns extraction recorded per sample (input statistics, the model's outputs), as the
sample table stores them."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import numpy as np

from ..extract import Ledger
from ..inputstats import ALL_STATS, TEXT_STATS
from ..outputs import OUTPUT_COLUMNS, finish_columns


def keeps_loss(labelled: bool, losses: Iterable[np.ndarray] | None) -> bool:
    """Whether the outputs keep ``loss`` and ``correct``: labels, and a finite loss for every
    sample. ``losses``: the recorded loss, whole or in parts, read only when ``labelled``; None
    when none was recorded."""
    return labelled and losses is not None and all(bool(np.isfinite(part).all()) for part in losses)


def with_loss(ledger: Ledger, labelled: bool) -> bool:
    """:func:`keeps_loss` for a run written in parts: one pass over the ledger's segments, only
    when the outputs were recorded and there are labels."""
    names = ledger.column_names or []
    if "loss" not in names:
        return keeps_loss(labelled, None)
    i = names.index("loss")
    return keeps_loss(labelled, (s.columns[:, i] for s in ledger.segments() if s.columns is not None))


def recorded_block(
    raw: dict[str, np.ndarray], labels: np.ndarray | None, given: Collection[str], loss: bool
) -> dict[str, np.ndarray]:
    """Some samples' recorded columns as stored (the text statistics as int64, the outputs as
    :func:`~.outputs.finish_columns` makes them), less those named in ``given`` (a metadata
    column of the same name wins)."""
    stats = {k: v.astype(np.int64) if k in TEXT_STATS else v for k, v in raw.items() if k in ALL_STATS}
    outputs = finish_columns(raw, labels, loss=loss) if "predicted" in raw else {}
    return {k: v for k, v in {**stats, **outputs}.items() if k not in given}


def recorded_names(names: Sequence[str], given: Collection[str], loss: bool) -> dict[str, list[str]]:
    """The recorded columns the sample table keeps, by source (the manifest's ``recorded``)."""
    outputs = [k for k in OUTPUT_COLUMNS if "predicted" in names and (loss or k not in ("loss", "correct"))]
    return {
        "input_statistics": [k for k in ALL_STATS if k in names and k not in given],
        "outputs": [k for k in outputs if k not in given],
    }
