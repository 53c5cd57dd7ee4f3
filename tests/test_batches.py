"""Batches: every accepted kind of data, walked in sample order and split into inputs and labels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
)
from torch.utils.data.distributed import DistributedSampler

from embedding_explorer import DataOrderError, EmbeddingExplorerError
from embedding_explorer.batches import count_samples, indexable, input_tensor, iter_batches, parse_batch


def collect(data: object, batch_size: int = 4) -> tuple[torch.Tensor, np.ndarray | None, list[int]]:
    """All inputs, labels and batch sizes of ``data``, in order."""
    batches = list(iter_batches(data, batch_size))
    inputs = torch.cat([b.inputs for b in batches])
    labels = None if batches[0].labels is None else np.concatenate([b.labels for b in batches])
    return inputs, labels, [b.size for b in batches]


X = torch.arange(30, dtype=torch.float32).reshape(10, 3)
Y = torch.arange(10) % 3


# ---- order -------------------------------------------------------------------------------------
def test_shuffling_dataloader_is_refused() -> None:
    loader = DataLoader(TensorDataset(X, Y), batch_size=4, shuffle=True)
    with pytest.raises(DataOrderError, match=r"RandomSampler.*pass a DataLoader with shuffle=False"):
        next(iter_batches(loader, 4))


@pytest.mark.parametrize(
    "loader",
    [
        DataLoader(TensorDataset(X), sampler=SubsetRandomSampler(range(10))),
        DataLoader(TensorDataset(X), sampler=WeightedRandomSampler([1.0] * 10, 10)),
        DataLoader(TensorDataset(X), batch_sampler=BatchSampler(RandomSampler(range(10)), 4, False)),
        DataLoader(TensorDataset(X), sampler=DistributedSampler(TensorDataset(X), num_replicas=1, rank=0)),
    ],
    ids=["subset-random", "weighted", "random-batch-sampler", "distributed-shuffle"],
)
def test_other_shuffling_samplers_are_refused(loader: DataLoader) -> None:
    with pytest.raises(DataOrderError, match="shuffle=False"):
        next(iter_batches(loader, 4))


@pytest.mark.parametrize(
    "loader",
    [
        DataLoader(TensorDataset(X), sampler=list(range(9, -1, -1))),
        DataLoader(TensorDataset(X), sampler=range(5)),
        DataLoader(
            TensorDataset(X),
            sampler=DistributedSampler(TensorDataset(X), num_replicas=2, rank=0, shuffle=False),
        ),
        DataLoader(TensorDataset(X), batch_size=None),
    ],
    ids=["reversed", "subset", "distributed-shard", "unbatched"],
)
def test_samplers_that_break_position_ids_are_refused(loader: DataLoader) -> None:
    """Sample ids are data-set positions: a custom order or a subset would silently shift them."""
    with pytest.raises(DataOrderError, match="DataLoader"):
        next(iter_batches(loader, 4))


def test_ordered_dataloaders_are_accepted() -> None:
    loaders = [
        DataLoader(TensorDataset(X, Y), batch_size=3, shuffle=False),
        DataLoader(TensorDataset(X, Y), batch_sampler=BatchSampler(SequentialSampler(range(10)), 3, False)),
    ]
    for loader in loaders:
        inputs, labels, sizes = collect(loader, batch_size=99)  # the loader's own batch size wins
        assert torch.equal(inputs, X)
        np.testing.assert_array_equal(labels, Y.numpy())
        assert sizes == [3, 3, 3, 1]


# ---- kinds of data -----------------------------------------------------------------------------
def test_tensor_data_in_row_batches() -> None:
    inputs, labels, sizes = collect(X, 4)
    assert torch.equal(inputs, X)
    assert labels is None
    assert sizes == [4, 4, 2]


def test_ndarray_data() -> None:
    inputs, labels, sizes = collect(X.numpy(), 6)
    assert torch.equal(inputs, X)
    assert labels is None
    assert sizes == [6, 4]


def test_xy_tuples_give_labels() -> None:
    inputs, labels, sizes = collect(TensorDataset(X, Y), 4)
    assert torch.equal(inputs, X)
    np.testing.assert_array_equal(labels, Y.numpy())
    assert sizes == [4, 4, 2]


class Squares(Dataset):
    """A map-style Dataset returning (tensor, int) pairs."""

    def __len__(self) -> int:
        return 7

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return torch.tensor([float(i), float(i * i)]), i % 2


def test_map_style_dataset() -> None:
    inputs, labels, sizes = collect(Squares(), 3)
    assert torch.equal(inputs, torch.tensor([[float(i), float(i * i)] for i in range(7)]))
    np.testing.assert_array_equal(labels, [0, 1, 0, 1, 0, 1, 0])
    assert sizes == [3, 3, 1]
    assert count_samples(Squares()) == 7


class Stream(IterableDataset):
    def __iter__(self):
        for i in range(5):
            yield torch.full((2,), float(i))


def test_iterable_dataset() -> None:
    inputs, labels, sizes = collect(Stream(), 2)
    assert torch.equal(inputs[:, 0], torch.arange(5.0))
    assert labels is None
    assert sizes == [2, 2, 1]
    assert count_samples(Stream()) is None


def test_generator_of_batches() -> None:
    def gen():
        for start in range(0, 10, 4):
            yield X[start : start + 4], Y[start : start + 4]

    inputs, labels, sizes = collect(gen(), batch_size=1)  # batch_size does not re-split batches
    assert torch.equal(inputs, X)
    np.testing.assert_array_equal(labels, Y.numpy())
    assert sizes == [4, 4, 2]
    assert count_samples(gen()) is None


def test_dict_batches_take_labels_out_and_keep_the_mask() -> None:
    ids = torch.tensor([[5, 6, 0], [7, 8, 9]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    batch = parse_batch({"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([1, 0])})
    assert set(batch.inputs) == {"input_ids", "attention_mask"}
    assert batch.size == 2
    np.testing.assert_array_equal(batch.labels, [1, 0])
    assert batch.attention_mask is mask
    args, kwargs = batch.model_args(torch.device("cpu"))
    assert args == ()
    assert torch.equal(kwargs["input_ids"], ids)
    assert torch.equal(kwargs["attention_mask"], mask)

    single = parse_batch({"pixel_values": torch.zeros(3, 2), "label": ["a", "b", "c"]})
    np.testing.assert_array_equal(single.labels, ["a", "b", "c"])
    assert single.attention_mask is None
    assert set(single.inputs) == {"pixel_values"}


def test_tensor_batch_model_args_are_positional() -> None:
    batch = parse_batch(X[:2])
    args, kwargs = batch.model_args(torch.device("cpu"))
    assert len(args) == 1 and torch.equal(args[0], X[:2])
    assert kwargs == {}


def test_single_element_batch_is_unwrapped() -> None:
    batch = parse_batch([X[:3]])  # TensorDataset(X) yields [x] lists
    assert torch.equal(batch.inputs, X[:3])
    assert batch.labels is None


def test_string_labels() -> None:
    batch = parse_batch((X[:2], ["cat", "dog"]))
    np.testing.assert_array_equal(batch.labels, ["cat", "dog"])


# ---- bad batches -------------------------------------------------------------------------------
def test_three_element_tuple_batch_errors() -> None:
    with pytest.raises(EmbeddingExplorerError, match="a batch is a tuple of 3 elements; expected x or"):
        parse_batch((X[:2], Y[:2], Y[:2]))
    with pytest.raises(EmbeddingExplorerError, match="list of 3 elements"):  # collated as a list
        next(iter_batches(TensorDataset(X, Y, Y), 4))


def test_label_count_must_match_inputs() -> None:
    with pytest.raises(
        EmbeddingExplorerError, match=r"a batch has 3 inputs but 2 labels in its \(x, y\) pair"
    ):
        parse_batch((X[:3], Y[:2]))
    with pytest.raises(EmbeddingExplorerError, match=r"labels of a batch have shape \(3, 2\)"):
        parse_batch((X[:3], torch.zeros(3, 2)))


def test_other_bad_batches() -> None:
    with pytest.raises(EmbeddingExplorerError, match="a batch is a 0-d tensor"):
        parse_batch(torch.tensor(1.0))
    with pytest.raises(TypeError, match="a batch is a str; expected a tensor"):
        parse_batch("text")
    with pytest.raises(
        EmbeddingExplorerError, match=r"a dict batch has no tensor to count samples by; keys: \['a'\]"
    ):
        parse_batch({"a": [1, 2]})


@pytest.mark.parametrize("data", ["abc", {"x": X}, 3])
def test_unsupported_data_types(data: object) -> None:
    with pytest.raises(
        TypeError, match="data must be a Tensor, a Dataset, a DataLoader or an iterable of batches"
    ):
        next(iter_batches(data, 4))


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_bad_batch_size(bad: object) -> None:
    with pytest.raises(ValueError, match=f"batch_size={bad!r} must be a positive integer"):
        next(iter_batches(X, bad))  # type: ignore[arg-type]


def test_a_stream_resumed_at_a_batch_of_no_samples_yields_that_batch() -> None:
    """A run stopped after sample 2 had not met the empty batch that follows (checkpoints end
    after a batch with samples), so a resume from 2 yields it; an empty batch before that
    point was met and is skipped."""
    x = torch.arange(24.0).reshape(8, 3)
    batches = [x[:1], x[:0], x[1:2], x[:0], x[2:5], x[5:]]  # samples: 1, 0, 1, 0, 3, 3
    assert [b.size for b in iter_batches(batches, 4, start=2)] == [0, 3, 3]
    assert [b.size for b in iter_batches(batches, 4, start=5)] == [3]
    assert [b.size for b in iter_batches(batches, 4, start=1)] == [0, 1, 0, 3, 3]
    assert [b.size for b in iter_batches(batches, 4, start=1, stop=2)] == [0, 1]
    with pytest.raises(EmbeddingExplorerError, match=r"start at sample 3: a batch spans samples 2\.\.4"):
        list(iter_batches(batches, 4, start=3))


def test_input_tensor_needs_tensor_inputs() -> None:
    batch = parse_batch({"input_ids": torch.zeros(2, 3)})
    with pytest.raises(
        EmbeddingExplorerError, match="layer 'input' captures the model input, but batches are dict"
    ):
        input_tensor(batch)


def test_count_samples() -> None:
    assert count_samples(X) == 10
    assert count_samples(X.numpy()) == 10
    assert count_samples(TensorDataset(X)) == 10
    assert count_samples(DataLoader(TensorDataset(X), batch_size=3)) == 10
    assert count_samples(DataLoader(Stream(), batch_size=3)) is None
    assert count_samples([X[:2], X[2:]]) is None


def test_a_whole_x_y_pair_is_one_data_set_not_two_batches() -> None:
    x = torch.arange(30, dtype=torch.float32).reshape(10, 3)
    y = np.arange(10) % 3
    batches = list(iter_batches((x, y), batch_size=4))
    assert [b.size for b in batches] == [4, 4, 2]
    assert np.array_equal(np.concatenate([b.labels for b in batches]), y)
    assert torch.equal(torch.cat([b.inputs for b in batches]), x)
    assert count_samples((x, torch.as_tensor(y))) == 10
    # a pair of two batches of inputs stays two batches
    assert [b.size for b in iter_batches((x[:5], x[5:]), batch_size=4)] == [5, 5]


def test_streaming_pca_rejects_bad_n_components_on_the_first_batch() -> None:
    from embedding_explorer.pca import StreamingPCA

    with pytest.raises(ValueError, match="n_components=0 must be a positive integer"):
        StreamingPCA(0).partial_fit(np.ones((3, 2)))


def test_a_drop_last_loader_counts_only_the_samples_it_yields() -> None:
    loader = DataLoader(TensorDataset(X), batch_size=4, drop_last=True)
    assert count_samples(loader) == 8 == sum(b.size for b in iter_batches(loader, 4))


# ---- slices: resuming a run and running one shard ----------------------------------------------
def _sliced_inputs(data: Any, batch_size: int, start: int, stop: int | None) -> list[torch.Tensor]:
    return [b.inputs for b in iter_batches(data, batch_size, start, stop)]


@pytest.mark.parametrize("kind", ["tensor", "ndarray", "pair", "dataset", "loader"])
def test_start_and_stop_give_the_same_batches_as_a_full_pass(kind: str) -> None:
    x, y = torch.arange(50.0).reshape(25, 2), torch.arange(25)
    data: Any = {
        "tensor": x,
        "ndarray": x.numpy(),
        "pair": (x, y),
        "dataset": TensorDataset(x, y),
        "loader": DataLoader(
            TensorDataset(x, y), batch_size=4, collate_fn=lambda items: torch.stack([i[0] for i in items])
        ),
    }[kind]
    assert indexable(data)
    full = [b.inputs for b in iter_batches(data, 4)]
    part = _sliced_inputs(data, 4, 8, 20)
    assert [tuple(t.shape) for t in part] == [(4, 2)] * 3
    for got, expected in zip(part, full[2:5], strict=True):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    tail = _sliced_inputs(data, 4, 24, None)
    np.testing.assert_array_equal(np.asarray(tail[0]), x[24:].numpy())


def test_a_stream_skips_whole_batches_and_refuses_a_start_inside_one() -> None:
    batches = [torch.full((n, 2), float(i)) for i, n in enumerate([3, 5, 2])]
    assert not indexable(batches)
    assert [float(t[0, 0]) for t in _sliced_inputs(batches, 99, 3, None)] == [1.0, 2.0]
    assert [float(t[0, 0]) for t in _sliced_inputs(batches, 99, 8, None)] == [2.0]
    with pytest.raises(
        EmbeddingExplorerError, match=r"cannot start at sample 4: a batch spans samples 3\.\.7"
    ):
        _sliced_inputs(batches, 99, 4, None)
