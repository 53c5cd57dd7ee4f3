"""The helpers that shape answers (server/answers.py): ETags, JSON numbers, the compute-once cache."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer.server.answers import (
    Cache,
    binary,
    etag,
    finite,
    finite_or_none,
    matrix,
    narrow_codes,
    not_modified,
    refs,
)
from embedding_explorer.server.registry import Registry


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    data = torch.randn(12, 3, generator=torch.Generator().manual_seed(5))
    out = tmp_path_factory.mktemp("answers") / "r"
    return ee.explore(
        None, data, ["input"], out=out, name="r", labels=[0, 1] * 6, label_names=["a", "b"], progress=False
    )


def test_etags_depend_on_what_and_match_if_none_match(run: ee.Run) -> None:
    served = Registry([run]).get("r")
    tag = etag(served, "3")
    assert tag.startswith('"') and tag != etag(served, "4") and tag == etag(served, "3")
    assert not not_modified(None, tag)
    assert not_modified(tag, tag) and not_modified(f'W/{tag}, "other"', tag) and not_modified("*", tag)
    assert not not_modified('"other"', tag)


def test_json_numbers() -> None:
    assert [finite(v) for v in (1.5, float("nan"), float("inf"))] == [1.5, None, None]
    assert [finite_or_none(v) for v in (np.float32(2), np.nan, -np.inf)] == [2.0, None, None]
    assert matrix(np.array([[1.0, np.nan], [np.inf, 0.0]])) == [[1.0, None], [None, 0.0]]


def test_binary_and_refs(run: ee.Run) -> None:
    response = binary(b"\x00\x01", {"X-Shape": "2"})
    assert response.media_type == "application/octet-stream" and response.headers["X-Shape"] == "2"
    served = Registry([run]).get("r")
    out = refs(served, np.array([3, 4]), np.array([0.5, -1.0], dtype=np.float32))
    assert [(r.id, r.score, r.label) for r in out] == [(3, 0.5, "b"), (4, -1.0, "a")]


@pytest.mark.parametrize(
    ("top", "dtype"), [(-1, "<i1"), (127, "<i1"), (128, "<i2"), (32767, "<i2"), (32768, "<i4")]
)
def test_category_codes_travel_in_the_narrowest_int_that_holds_them(top: int, dtype: str) -> None:
    codes = np.array([-1, 0, top, 3], dtype=np.int32)
    narrow = narrow_codes(codes)
    assert narrow.dtype == np.dtype(dtype) and narrow.tolist() == codes.tolist()


def test_the_cache_computes_each_key_once() -> None:
    cache = Cache()
    calls: list[str] = []

    def slow() -> int:
        calls.append("x")
        time.sleep(0.05)
        return 42

    threads = [threading.Thread(target=lambda: cache.get(("k",), slow)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["x"] and cache.get(("k",), lambda: 0) == 42
    assert cache.get(("other",), lambda: 7) == 7
