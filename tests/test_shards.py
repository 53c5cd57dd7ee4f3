"""What a Dask worker runs (shards): a shard of a call that is over writes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedding_explorer import shards
from embedding_explorer.locations import Location, as_location


def test_a_shard_of_another_call_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / shards.CALL_FILE).write_text('"current"')
    shards.CallGuard(str(tmp_path), None, "current").check()
    with pytest.raises(RuntimeError, match="call that started this shard is over"):
        shards.CallGuard(str(tmp_path), None, "older").check()
    (tmp_path / shards.CALL_FILE).unlink()
    with pytest.raises(RuntimeError, match="call that started this shard is over"):
        shards.CallGuard(str(tmp_path), None, "current").check()


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_staged_edge_rows_come_back_from_one_read(
    tmp_path: Path, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a shard of samples [5, 23) in chunks of 8: rows 5..7 and 16..22 are staged for the driver
    span = shards.Span.of(5, 23, 8, n_samples=40)
    assert (span.direct_start, span.direct_stop) == (8, 16)
    rng = np.random.default_rng(3)
    dims = {"a": 3, "b": 5}
    rows = {layer: rng.standard_normal((18, d)).astype(dtype) for layer, d in dims.items()}
    edges = shards.EdgeRows(span)
    for layer, block in rows.items():  # two batches of 9 samples; the worker writes rows 8..15
        direct = [edges.split(layer, 5 + at, block[at : at + 9]) for at in (0, 9)]
        np.testing.assert_array_equal(np.concatenate(direct), block[3:11])
    source = as_location(str(tmp_path)) / "edges.bin"
    pieces = edges.save(source)
    reads: list[tuple[int | None, int | None]] = []
    read_bytes = Location.read_bytes

    def counted(self: Location, start: int | None = None, end: int | None = None) -> bytes:
        reads.append((start, end))
        return read_bytes(self, start, end)

    monkeypatch.setattr(Location, "read_bytes", counted)
    got = list(shards.staged_rows(source, pieces, dims, np.dtype(dtype)))
    assert reads == [(None, None)]  # the whole file, once, for the four pieces
    assert [(layer, first, len(r)) for layer, first, r in got] == [
        ("a", 5, 3),
        ("a", 16, 7),
        ("b", 5, 3),
        ("b", 16, 7),
    ]
    for layer, first, r in got:
        assert r.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(r, rows[layer][first - 5 : first - 5 + len(r)])
