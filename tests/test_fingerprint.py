"""Fingerprints: arrays are hashed without a copy, callables by what they compute, and a
DataLoader by how it collates, so a run is never reused (or resumed) for other inputs."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xxhash
from torch.utils.data import DataLoader, Dataset, TensorDataset

from embedding_explorer.fingerprint import SAMPLED_ITEMS, array_hash, callable_digest, data_fingerprint
from embedding_explorer.reducers import Reducer
from embedding_explorer.render import Renderer

MB = 1 << 20


def peak_bytes(fn: Any, *args: Any) -> tuple[Any, int]:
    """``fn(*args)`` and the peak of Python and numpy allocations while it ran."""
    tracemalloc.start()
    try:
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def reference(header: str, *blocks: bytes) -> str:
    """The XXH3-128 digest of the header and the arrays' bytes copied with ``tobytes()``."""
    digest = xxhash.xxh3_128()
    digest.update(header.encode())
    for block in blocks:
        digest.update(block)
    return digest.hexdigest()


# ---- arrays and tensors: hashed in place ---------------------------------------------------
def test_a_contiguous_array_or_tensor_is_hashed_without_a_copy() -> None:
    x = np.random.default_rng(0).standard_normal((4096, 1024)).astype(np.float32)  # 16 MiB
    t = torch.from_numpy(x.copy())
    expected_np = reference(f"{x.dtype}{x.shape}", x.tobytes())
    expected_t = reference(f"{t.dtype}{tuple(t.shape)}", x.tobytes())
    got_np, peak_np = peak_bytes(data_fingerprint, x)
    got_t, peak_t = peak_bytes(data_fingerprint, t)
    assert (got_np, got_t) == (expected_np, expected_t)  # the bytes hashed in place, as copied
    assert peak_np < MB and peak_t < MB  # a copy would be 16 MiB


def test_a_strided_array_is_hashed_in_bounded_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("embedding_explorer.fingerprint.HASH_BLOCK_BYTES", MB)
    x = np.random.default_rng(1).standard_normal((1024, 4096)).astype(np.float32).T  # 16 MiB, F-order
    expected = reference(f"{x.dtype}{x.shape}", np.ascontiguousarray(x).tobytes())
    got, peak = peak_bytes(data_fingerprint, x)
    assert got == expected == data_fingerprint(np.ascontiguousarray(x))
    assert peak < 3 * MB
    t = torch.from_numpy(np.ascontiguousarray(x)).T  # a transposed tensor: the same blocks
    assert data_fingerprint(t) == data_fingerprint(t.contiguous())


def test_bfloat16_tensors_are_hashed_by_their_bits() -> None:
    t = torch.linspace(-3, 3, 1000).to(torch.bfloat16)
    u = t.clone()
    u[500] = torch.nextafter(u[500].float(), torch.tensor(10.0)).to(torch.bfloat16) + 0.01
    assert data_fingerprint(t) == data_fingerprint(t.clone()) != data_fingerprint(u)
    assert array_hash(np.array([1.0, 2.0])) != array_hash(np.array([1.0, 2.5]))


# ---- callables ------------------------------------------------------------------------------
def _scale(x: Any, factor: float = 2.0) -> Any:
    return x * factor


class _Opaque:
    """An object with no content-based form (its repr holds an address)."""


def test_callables_are_hashed_by_code_defaults_closures_and_arguments() -> None:
    def closure(value: Any) -> Any:
        return lambda x: x * value

    first, second = (lambda x: x * 2.0), (lambda x: x * 3.0)
    assert callable_digest(first) != callable_digest(second)  # both "<lambda>"
    assert callable_digest(lambda x: x * 2.0) == callable_digest(first)  # the same code: one key
    assert callable_digest(functools.partial(_scale, factor=2.0)) != callable_digest(
        functools.partial(_scale, factor=3.0)
    )
    assert callable_digest(functools.partial(_scale, 1)) != callable_digest(functools.partial(_scale, 2))
    assert callable_digest(closure(2.0)) != callable_digest(closure(3.0))
    assert callable_digest(closure(torch.ones(3))) != callable_digest(closure(torch.zeros(3)))
    assert callable_digest(closure(_Opaque())) == callable_digest(closure(_Opaque()))  # no address

    def with_default(x: Any, factor: float = 2.0) -> Any:
        return x * factor

    before = callable_digest(with_default)
    with_default.__defaults__ = (3.0,)
    assert callable_digest(with_default) != before


def test_callable_reducers_and_renderers_describe_what_they_compute() -> None:
    assert Reducer(lambda t: t.mean(1)).describe() != Reducer(lambda t: t.amax(1)).describe()
    assert Reducer(lambda t: t.mean(1)).describe() == Reducer(lambda t: t.mean(1)).describe()
    shown = Renderer(functools.partial(_scale, factor=2.0), None).describe()
    assert shown != Renderer(functools.partial(_scale, factor=3.0), None).describe()
    assert shown.startswith("callable:")


# ---- DataLoaders ----------------------------------------------------------------------------
SETTINGS = {"scale": 2.0}


def _collate_by_setting(items: list[tuple[torch.Tensor, ...]]) -> torch.Tensor:
    return torch.stack([x for (x,) in items]) * SETTINGS["scale"]  # a global its code hash cannot see


def test_a_loader_is_fingerprinted_by_what_its_collate_fn_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = TensorDataset(torch.arange(600.0).reshape(300, 2))

    def loader(**kwargs: Any) -> DataLoader[Any]:
        return DataLoader(dataset, batch_size=64, **kwargs)

    plain = data_fingerprint(loader())
    assert plain == data_fingerprint(loader()) is not None
    by_setting = data_fingerprint(loader(collate_fn=_collate_by_setting))
    monkeypatch.setitem(SETTINGS, "scale", 3.0)
    assert data_fingerprint(loader(collate_fn=_collate_by_setting)) not in (by_setting, plain)
    assert data_fingerprint(loader(drop_last=True)) != plain


class BatchReads(Dataset[tuple[torch.Tensor]]):
    """A map-style data set that reads whole batches with ``__getitems__`` (and counts reads)."""

    def __init__(self) -> None:
        self.x = torch.arange(600.0).reshape(300, 2)
        self.items, self.batches = 0, 0

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor]:
        self.items += 1
        return (self.x[i],)

    def __getitems__(self, ids: list[int]) -> list[tuple[torch.Tensor]]:
        self.batches += 1
        return [(self.x[i],) for i in ids]


def test_a_loader_s_edge_batches_are_read_as_it_reads_them() -> None:
    """The first and last batches come from ``__getitems__`` where the data set has one (one
    read a batch, as the DataLoader does), and hash as the same batches read item by item."""
    data = BatchReads()
    fingerprint = data_fingerprint(DataLoader(data, batch_size=64))
    assert data.batches == 2 and data.items == min(len(data), SAMPLED_ITEMS)  # items: the sampled ones
    monkeypatched = BatchReads()
    monkeypatched.__getitems__ = None  # type: ignore[assignment,method-assign]
    assert data_fingerprint(DataLoader(monkeypatched, batch_size=64)) == fingerprint
    assert monkeypatched.batches == 0


SCRIPT = """
import functools
from embedding_explorer.fingerprint import callable_digest

def member(x, names={"alpha", "beta", "gamma", "delta"}):
    return x in {"one", "two", "three", "four", "five"} and x not in names

print(callable_digest(member), callable_digest(functools.partial(member, names={"x": 1.5})))
"""


@pytest.mark.slow
def test_callable_digests_are_the_same_in_every_process(tmp_path: Path) -> None:
    """A finished run is found again by a later session: no hash seed, address or set order."""
    script = tmp_path / "digest.py"
    script.write_text(SCRIPT)
    outputs = {
        subprocess.run(
            [sys.executable, str(script)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1 and len(outputs.pop().split()) == 2
