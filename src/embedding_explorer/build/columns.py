"""The columns extraction recorded per sample (input statistics, the model's outputs), as the
sample table stores them."""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from ..extract import Ledger
from ..inputstats import ALL_STATS, TEXT_STATS
from ..outputs import OUTPUT_COLUMNS, finish_columns


def with_loss(ledger: Ledger, labelled: bool) -> bool:
    """Whether the outputs keep ``loss`` and ``correct``: labels, and a finite loss for every
    sample (one pass over the ledger's segments, only when the outputs were recorded)."""
    names = ledger.column_names or []
    if not labelled or "loss" not in names:
        return False
    i = names.index("loss")
    return all(s.columns is None or np.isfinite(s.columns[:, i]).all() for s in ledger.segments())


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
