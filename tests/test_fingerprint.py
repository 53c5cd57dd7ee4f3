"""Fingerprints: arrays are hashed without a copy, callables by what they compute, and a
DataLoader by how it collates, so a run is never reused (or resumed) for other inputs."""

from __future__ import annotations

import functools
import hashlib
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
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

import embedding_explorer as ee
from embedding_explorer.fingerprint import (
    SAMPLED_ITEMS,
    array_hash,
    callable_digest,
    data_fingerprint,
    files_digest,
    model_fingerprint,
    transform_identity,
)
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
import hashlib
from embedding_explorer.fingerprint import callable_digest, transform_identity

def member(x, names={"alpha", "beta", "gamma", "delta"}):
    return x in {"one", "two", "three", "four", "five"} and x not in names

class Steps:  # object.__repr__, with its address
    def __init__(self, steps):
        self.steps = steps

    def __call__(self, x):
        return x

import torch
from torch import nn
from embedding_explorer.fingerprint import model_fingerprint

class Gate(nn.Module):  # a user's module: its code and settings count
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.names = {"alpha", "beta"}
        self.register_buffer("shift", torch.ones(2), persistent=False)

    def forward(self, x):
        return self.fc(x) + self.shift if "alpha" in {"alpha", "gamma"} else x

torch.manual_seed(0)
print(
    callable_digest(member),
    callable_digest(functools.partial(member, names={"x": 1.5})),
    transform_identity(Steps([lambda x: x * 2, {"a", "b", "c"}])),
    model_fingerprint(Gate())["fingerprint"],
)
"""


def test_a_tensor_dataset_counts_by_every_item(tmp_path: Path) -> None:
    """An edit of any one item of a ``TensorDataset`` (not one of the sampled ones) makes another
    run: its tensors are hashed whole, as a tensor given directly is."""
    torch.manual_seed(0)
    x, y = torch.randn(1000, 8), torch.arange(1000) % 3
    edited = x.clone()
    edited[1] += 100  # between the evenly spaced items a sampled read takes (0, 3, 7, ...)
    assert data_fingerprint(TensorDataset(x, y)) == data_fingerprint(TensorDataset(x.clone(), y.clone()))
    assert data_fingerprint(TensorDataset(x, y)) != data_fingerprint(TensorDataset(edited, y))
    assert data_fingerprint(TensorDataset(x, y)) != data_fingerprint(TensorDataset(x, (y + 1) % 3))
    # a Subset counts the rows it picks: an edit outside them is the same data, inside it is not
    picked = list(range(500, 600))
    assert data_fingerprint(Subset(TensorDataset(x, y), picked)) == data_fingerprint(
        Subset(TensorDataset(edited, y), picked)
    )
    assert data_fingerprint(Subset(TensorDataset(x, y), [0, 1])) != data_fingerprint(
        Subset(TensorDataset(edited, y), [0, 1])
    )
    model = nn.Linear(8, 4)
    first = ee.explore(model, TensorDataset(x, y), ["input"], out=tmp_path / "run", progress=False)
    again = ee.explore(model, TensorDataset(edited, y), ["input"], out=tmp_path / "run", progress=False)
    assert again.manifest["key"] != first.manifest["key"]
    np.testing.assert_allclose(np.asarray(again["input"].activations)[1], edited[1].numpy())


class Doubler(nn.Module):
    def __init__(self, shift: float = 0.0) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("shift", torch.full((4,), shift), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x)) + self.shift


def test_a_model_counts_by_its_code_its_settings_and_every_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ``repr`` and ``state_dict`` do not show still changes what a model computes: its
    ``forward`` code, a setting kept as a plain attribute, a non-persistent buffer. Each makes
    another fingerprint (a run of the old model is not reused); the training flag does not."""
    torch.manual_seed(0)
    model = Doubler()
    before = model_fingerprint(model)
    assert model_fingerprint(model) == before  # deterministic
    assert model_fingerprint(model.train(False)) == before == model_fingerprint(model.train(True))
    shifted = Doubler(shift=5.0)
    shifted.load_state_dict(model.state_dict())  # the same state_dict: the buffer is not in it
    assert set(shifted.state_dict()) == {"fc.weight", "fc.bias"} and repr(shifted) == repr(model)
    assert model_fingerprint(shifted)["fingerprint"] != before["fingerprint"]

    def tanh_forward(self: Doubler, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.fc(x)) + self.shift

    monkeypatch.setattr(Doubler, "forward", tanh_forward)
    assert model_fingerprint(model)["fingerprint"] != before["fingerprint"]
    monkeypatch.undo()
    assert model_fingerprint(model) == before
    pre, post = (nn.TransformerEncoderLayer(8, 2, 16, norm_first=first) for first in (False, True))
    post.load_state_dict(pre.state_dict())
    assert repr(pre) == repr(post)  # norm_first is a setting repr leaves out
    assert model_fingerprint(pre)["fingerprint"] != model_fingerprint(post)["fingerprint"]
    gelu = nn.TransformerEncoderLayer(8, 2, 16, activation="gelu")
    gelu.load_state_dict(pre.state_dict())
    assert repr(gelu) == repr(pre)  # so is the activation function
    assert model_fingerprint(gelu)["fingerprint"] != model_fingerprint(pre)["fingerprint"]
    model.calls = 7  # a counter (an integer) is the model's state, not a setting: still reused
    model._cache = torch.ones(3)  # nor is a private attribute
    assert model_fingerprint(model) == before


NET_SOURCE = """
def inner(x):
    return x * {k}

def helper(x):
    return inner(x) + 1

def scale(x):
    return x * {k}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 3)

    @property
    def factor(self):
        return {k}

    {decorator}
    def forward(self, x):
        return {body}
"""


@pytest.mark.parametrize(
    ("decorator", "body"),
    [
        ("@torch.no_grad()", "self.lin(x) * {k}"),  # the function inside the decorator's wrapper
        ("", "self.lin(x) * self.factor"),  # a property's getter
        ("", "scale(self.lin(x))"),  # a module function forward calls
        ("", "helper(self.lin(x))"),  # and one that it calls
    ],
    ids=["decorated", "property", "helper", "helper-of-helper"],
)
def test_an_edit_behind_a_decorator_a_property_or_a_helper_is_a_new_model(decorator: str, body: str) -> None:
    def net(k: int) -> nn.Module:
        namespace: dict[str, Any] = {"torch": torch, "nn": nn}
        exec(NET_SOURCE.format(k=k, decorator=decorator, body=body.format(k=k)), namespace)
        return namespace["Net"]()  # type: ignore[no-any-return]

    assert model_fingerprint(net(2)) == model_fingerprint(net(2))
    assert model_fingerprint(net(2))["fingerprint"] != model_fingerprint(net(3))["fingerprint"]


def test_where_a_model_was_read_from_is_not_what_it_computes() -> None:
    """A Hugging Face model's ``name_or_path`` (the folder or hub id it was read from) is left
    out: the same weights from another folder are the same model."""
    model = Doubler()
    model.name_or_path = "./models/a"  # type: ignore[assignment]
    before = model_fingerprint(model)
    model.name_or_path = "/elsewhere/a"  # type: ignore[assignment]
    assert model_fingerprint(model) == before


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
    assert len(outputs) == 1 and len(outputs.pop().split()) == 4


# ---- torchvision's DatasetFolder, by its files ----------------------------------------------
class DatasetFolder(Dataset[tuple[torch.Tensor, int]]):
    """A stand-in for ``torchvision.datasets.folder.DatasetFolder`` (torchvision's only wheel for
    the pinned torch here does not import): the same attributes and ``__getitem__``, under the
    same qualified name, with a count of the files it reads."""

    def __init__(self, root: Path, loader: Any, transform: Any = None, target_transform: Any = None) -> None:
        classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        self.samples = [(str(p), i) for i, c in enumerate(classes) for p in sorted((root / c).iterdir())]
        self.targets = [target for _, target in self.samples]
        self.loader, self.transform, self.target_transform = loader, transform, target_transform
        self.reads = 0

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        path, target = self.samples[index]
        self.reads += 1
        sample = self.loader(path)
        if self.transform is not None:
            sample = self.transform(sample)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return sample, target


DatasetFolder.__module__ = "torchvision.datasets.folder"


class ImageFolder(DatasetFolder):
    """torchvision's ImageFolder: a DatasetFolder of images (the subclass is recognised too)."""


ImageFolder.__module__ = "torchvision.datasets.folder"


class Compose:
    """torchvision's Compose: its repr lists its steps."""

    def __init__(self, transforms: list[Any]) -> None:
        self.transforms = transforms

    def __call__(self, x: Any) -> Any:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return "Compose(" + ", ".join(map(repr, self.transforms)) + ")"


class Lambda:
    """torchvision's Lambda: its repr is ``Lambda()`` whatever it computes."""

    def __init__(self, lambd: Any) -> None:
        self.lambd = lambd

    def __call__(self, x: Any) -> Any:
        return self.lambd(x)

    def __repr__(self) -> str:
        return "Lambda()"


class Scale:
    def __init__(self, factor: float) -> None:
        self.factor = factor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def __repr__(self) -> str:
        return f"Scale(factor={self.factor})"


def read_values(path: str) -> torch.Tensor:
    return torch.tensor(list(Path(path).read_bytes()), dtype=torch.float32)


def image_folder(tmp_path: Path, *, transform: Any = None, n: int = 6) -> ImageFolder:
    if not (tmp_path / "cat").exists():
        for i in range(n):
            folder = tmp_path / ("cat" if i % 2 else "dog")
            folder.mkdir(exist_ok=True)
            (folder / f"{i}.bin").write_bytes(bytes([i, i + 1, i + 2]))
    return ImageFolder(tmp_path, read_values, transform=transform or Compose([Scale(2.0)]))


def test_a_dataset_folder_is_fingerprinted_by_its_files_and_its_first_and_last_items(tmp_path: Path) -> None:
    data = image_folder(tmp_path)
    fingerprint = data_fingerprint(data)
    assert data.reads == 2 and fingerprint is not None
    assert data_fingerprint(image_folder(tmp_path)) == fingerprint
    loader = DataLoader(data, batch_size=4)
    in_loader = data_fingerprint(loader)
    assert data.reads == 4 and in_loader not in (None, fingerprint)  # the default collate: no batch read
    assert data_fingerprint(DataLoader(data, batch_size=2)) != in_loader
    subset = data_fingerprint(Subset(data, [0, 2, 4]))
    assert subset not in (None, fingerprint)
    assert data_fingerprint(Subset(data, [0, 2, 5])) != subset
    assert data_fingerprint(Subset(data, torch.tensor([0, 2, -2]))) == subset  # the same items
    assert data_fingerprint(Subset(Subset(data, [4, 3, 2, 0]), [3, 2, 0])) == subset


def test_a_subset_of_a_folder_looks_only_at_the_files_it_picks(tmp_path: Path) -> None:
    data = image_folder(tmp_path)
    subset = data_fingerprint(Subset(data, [0, 2]))
    Path(data.samples[5][0]).unlink()  # a file it does not pick
    assert data_fingerprint(Subset(image_folder(tmp_path), [0, 2])) == subset


class ScaledFolder(ImageFolder):
    """A subclass with state of its own that its ``__getitem__`` uses: not known by its files."""

    def __init__(self, root: Path, scale: float) -> None:
        super().__init__(root, read_values)
        self.scale = scale

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        x, y = super().__getitem__(index)
        return x * self.scale, y


class ScaledSubset(Subset[Any]):
    def __init__(self, dataset: Any, indices: list[int], scale: float) -> None:
        super().__init__(dataset, indices)
        self.scale = scale

    def __getitem__(self, index: int) -> Any:  # type: ignore[override]
        x, y = super().__getitem__(index)
        return x * self.scale, y

    def __getitems__(self, indices: list[int]) -> list[Any]:
        return [self[i] for i in indices]


def test_subclasses_of_a_folder_or_a_subset_are_read_as_any_dataset(tmp_path: Path) -> None:
    image_folder(tmp_path)
    assert data_fingerprint(ScaledFolder(tmp_path, 1.0)) != data_fingerprint(ScaledFolder(tmp_path, 5.0))
    data = image_folder(tmp_path)
    one, five = (data_fingerprint(ScaledSubset(data, [0, 1, 2], s)) for s in (1.0, 5.0))
    assert one != five and one != data_fingerprint(Subset(data, [0, 1, 2]))


def test_a_folder_s_targets_count_as_they_are(tmp_path: Path) -> None:
    fingerprints = set()
    for targets in ([0.2] * 6, [0.7] * 6, ["a"] * 6):
        data = image_folder(tmp_path)
        data.samples = [(path, t) for (path, _), t in zip(data.samples, targets, strict=True)]
        fingerprints.add(data_fingerprint(data))
    assert len(fingerprints) == 3 and None not in fingerprints


GLOBAL_SCALE = {"factor": 2.0}


def test_what_a_transform_s_code_hash_cannot_see_shows_in_the_items_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transform = Lambda(lambda x: x * GLOBAL_SCALE["factor"])  # a dict global: not followed
    before = data_fingerprint(image_folder(tmp_path, transform=transform))
    monkeypatch.setitem(GLOBAL_SCALE, "factor", 3.0)
    assert data_fingerprint(image_folder(tmp_path, transform=transform)) != before


def test_an_nn_module_transform_counts_by_its_forward() -> None:
    def module_class(factor: float) -> type[nn.Module]:
        source = f"class Scaled(nn.Module):\n    def forward(self, x):\n        return x * {factor}\n"
        namespace: dict[str, Any] = {"nn": nn}
        exec(source, namespace)  # the same class name and module, another forward
        return namespace["Scaled"]  # type: ignore[no-any-return]

    assert transform_identity(module_class(2.0)()) != transform_identity(module_class(3.0)())
    assert transform_identity(module_class(2.0)()) == transform_identity(module_class(2.0)())


def test_a_dataset_folder_s_fingerprint_changes_with_any_file_target_or_setting(tmp_path: Path) -> None:
    fingerprint = data_fingerprint(image_folder(tmp_path))
    path = tmp_path / "dog" / "4.bin"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # touched: same bytes
    touched = data_fingerprint(image_folder(tmp_path))
    assert touched != fingerprint
    relabelled = image_folder(tmp_path)
    relabelled.samples[0] = (relabelled.samples[0][0], 1)
    assert data_fingerprint(relabelled) not in (touched, fingerprint)
    assert data_fingerprint(image_folder(tmp_path, transform=Compose([Scale(3.0)]))) != touched
    targets = image_folder(tmp_path)
    targets.target_transform = lambda t: t + 1
    assert data_fingerprint(targets) != touched
    (tmp_path / "cat" / "7.bin").write_bytes(b"new")
    assert data_fingerprint(image_folder(tmp_path)) != touched


def test_a_transform_s_identity_reaches_a_lambda_s_code_inside_a_compose(tmp_path: Path) -> None:
    """A torchvision ``Lambda`` shows as ``Lambda()``: only its code tells two apart."""
    double = image_folder(tmp_path, transform=Compose([Lambda(lambda x: x * 2)]))
    triple = image_folder(tmp_path, transform=Compose([Lambda(lambda x: x * 3)]))
    assert repr(double.transform) == repr(triple.transform)
    assert data_fingerprint(double) != data_fingerprint(triple)
    assert data_fingerprint(double) == data_fingerprint(image_folder(tmp_path, transform=double.transform))


def test_a_custom_collate_still_reads_the_edge_batches_of_a_known_data_set(tmp_path: Path) -> None:
    data = image_folder(tmp_path)
    plain = data_fingerprint(DataLoader(data, batch_size=4))
    assert data.reads == 2  # the first and last items
    by_setting = data_fingerprint(DataLoader(data, batch_size=4, collate_fn=_collate_folder_by_setting))
    assert data.reads == 4 + len(data) and by_setting != plain  # both (partial) batches: all six files


def _collate_folder_by_setting(items: list[tuple[torch.Tensor, int]]) -> torch.Tensor:
    return torch.stack([x for x, _ in items]) * SETTINGS["scale"]


def test_files_are_known_by_their_resolved_paths_sizes_and_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each folder is resolved once; the text hashed is each file's ``Path.resolve()``, through a
    linked folder, a linked file (the file it names) and a relative path with ``..``."""
    (tmp_path / "real").mkdir()
    for name in ("a.jpg", "b.jpg"):
        (tmp_path / "real" / name).write_bytes(name.encode() * 3)
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "link.jpg").symlink_to(tmp_path / "real" / "a.jpg")
    monkeypatch.chdir(tmp_path)
    paths = [
        Path("real/a.jpg"),
        Path("linked/b.jpg"),
        tmp_path / "real" / "link.jpg",
        Path("linked/../real/b.jpg"),
    ]
    labels = np.array([0, 1, 0, 1])
    reference = hashlib.blake2b(digest_size=16)
    reference.update(b"settings")
    for path in paths:
        stat = path.stat()
        reference.update(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    reference.update(labels.tobytes())
    assert files_digest("settings", paths, labels) == reference.hexdigest()
