"""What a Dask worker runs (shards): a shard of a call that is over writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from embedding_explorer import shards


def test_a_shard_of_another_call_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / shards.CALL_FILE).write_text('"current"')
    shards.CallGuard(str(tmp_path), None, "current").check()
    with pytest.raises(RuntimeError, match="call that started this shard is over"):
        shards.CallGuard(str(tmp_path), None, "older").check()
    (tmp_path / shards.CALL_FILE).unlink()
    with pytest.raises(RuntimeError, match="call that started this shard is over"):
        shards.CallGuard(str(tmp_path), None, "current").check()
