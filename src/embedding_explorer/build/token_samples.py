"""The sample table of a per-token run, written chunk by chunk.

A per-token run has one row per token: ``sample_id``, ``label`` (its text's), ``text_id``,
``position``, ``token``, ``token_id``, its text's metadata, then the recorded columns. At a
million tokens that table (token strings as Python objects, each text's label and metadata
repeated per token) would be the run's largest allocation, so it is built and written one
ledger segment at a time (:meth:`~embedding_explorer.extract.Ledger.segments`), one Parquet row
group each: memory stays that of one segment however many tokens the run has.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from ..exceptions import EmbeddingExplorerError
from ..extract import Ledger
from ..heap import release_freed_memory
from ..store.writer import RunWriter
from ..tokens import TOKEN_COLUMNS, TokenBatches, token_table
from .columns import recorded_block, recorded_names, with_loss


def write_token_samples(
    writer: RunWriter,
    data: TokenBatches,
    ledger: Ledger,
    labels_per_text: np.ndarray | None,
    metadata_per_text: pd.DataFrame | None,
) -> tuple[list[str], dict[str, list[str]]]:
    """Write a per-token run's sample table; returns its metadata columns (the token columns,
    then the text's) and the recorded columns by source (the manifest's ``recorded``)."""
    own = [] if metadata_per_text is None else [str(c) for c in metadata_per_text.columns]
    given = {*TOKEN_COLUMNS, *own}
    labelled = labels_per_text is not None or ledger.batches_with_labels > 0
    loss = with_loss(ledger, labelled)
    names = ledger.column_names or []
    recorded = recorded_names(names, given, loss)
    types = {}
    if metadata_per_text is not None:  # a chunk of all-None rows must not decide a column's type
        schema = pa.Schema.from_pandas(metadata_per_text, preserve_index=False)
        types = {field.name: field.type for field in schema}

    def chunks() -> Iterator[pd.DataFrame]:
        first = 0
        for segment in ledger.segments():
            if segment.size == 0 and first:
                continue
            tokens = segment.tokens if segment.tokens is not None else np.empty((0, 3), np.int64)
            text_ids = tokens[:, 0]
            head = pd.DataFrame({"sample_id": np.arange(first, first + len(tokens), dtype=np.int64)})
            labels = labels_per_text[text_ids] if labels_per_text is not None else segment.labels
            if labels is not None:
                head["label"] = labels
            parts = [head, token_table(tokens, data)]
            if metadata_per_text is not None:
                parts.append(metadata_per_text.iloc[text_ids].reset_index(drop=True))
            kept = recorded["input_statistics"] + recorded["outputs"]
            if segment.columns is not None and kept:
                raw = {name: segment.columns[:, i] for i, name in enumerate(names)}
                extra = recorded_block(raw, labels, given, loss)
                parts.append(pd.DataFrame({k: extra[k] for k in kept}))
            yield pd.concat(parts, axis=1)
            first += len(tokens)
            release_freed_memory()  # each chunk's strings and frames would otherwise pile up
            pa.default_memory_pool().release_unused()

    rows = writer.write_sample_chunks(chunks(), types)
    if rows != ledger.n_done:
        raise EmbeddingExplorerError(f"the token columns cover {rows} samples, not {ledger.n_done}")
    return [*TOKEN_COLUMNS, *own], recorded
