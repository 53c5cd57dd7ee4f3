"""The one sample filter: its parts against hand-computed masks, its JSON form, its errors, and
the probing it restricts (extremes, quantiles, histograms among the kept samples)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from tests.support import MLP
from torch.utils.data import TensorDataset

import embedding_explorer as ee
from embedding_explorer.filters import Filter, FilterError, as_filter


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    """90 samples, labels 0..2 named, a numeric column, a boolean ``correct``, a text column."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(90, 8, generator=g)
    y = torch.arange(90) % 3
    rng = np.random.default_rng(0)
    metadata = pd.DataFrame(
        {
            "brightness": np.where(np.arange(90) % 10 == 0, np.nan, rng.uniform(0, 1, 90)),
            "correct": np.arange(90) % 4 != 0,
            "note": [f"item {i} {'striped' if i % 7 == 0 else 'plain'}" for i in range(90)],
        }
    )
    r = ee.explore(
        MLP(), TensorDataset(x, y), ["fc1", "fc2"], out=tmp_path_factory.mktemp("f") / "r",
        n_components=3, metadata=metadata, progress=False, render=[f"text number {i}" for i in range(90)],
    )  # fmt: skip
    r.manifest["labels"]["names"] = ["cat", "dog", "eel"]
    return r


def test_each_part_keeps_what_a_hand_loop_keeps(run: ee.Run) -> None:
    labels = run.labels
    bright = run.metadata["brightness"].to_numpy()
    correct = run.metadata["correct"].to_numpy()
    assert (run.mask(Filter(labels=["dog"])) == (labels == 1)).all()
    assert (run.mask({"labels": ["0", "eel"]}) == np.isin(labels, [0, 2])).all()  # value or name
    assert (run.mask({"hide": ["cat"]}) == (labels != 0)).all()
    hand = np.array([not np.isnan(b) and 0.25 <= b <= 0.5 for b in bright])
    assert (run.mask({"ranges": {"brightness": [0.25, 0.5]}}) == hand).all()
    open_low = np.array([not np.isnan(b) and b <= 0.3 for b in bright])
    assert (run.mask({"ranges": {"brightness": [None, 0.3]}}) == open_low).all()
    assert (run.mask({"flags": {"correct": False}}) == ~correct).all()
    striped = np.array([i % 7 == 0 for i in range(90)])
    assert (run.mask({"query": "STRIPED"}) == striped).all()  # case-insensitive, metadata values
    names = ["cat", "dog", "eel"]
    table = run.metadata
    fields = [
        [f"text number {i}", names[labels[i]], *(str(table[c].iat[i]) for c in table.columns)]
        for i in range(90)
    ]
    hand = np.array([all(any(t in f.lower() for f in row) for t in ("number", "42")) for row in fields])
    assert hand[42] and hand.sum() < 90
    assert (run.mask({"query": "number 42"}) == hand).all()  # texts too; every term must occur
    assert (run.mask({"query": "eel"}) == (labels == 2)).all()  # label names
    both = Filter(labels=["dog"], flags={"correct": False}, query="plain")
    assert (run.mask(both) == ((labels == 1) & ~correct & ~striped)).all()  # parts combine by AND
    assert (
        run.select(labels=["dog"], flags={"correct": False}) == np.flatnonzero((labels == 1) & ~correct)
    ).all()


def test_the_json_form_round_trips_and_empty_is_no_filter() -> None:
    f = Filter(labels=["a"], hide=["b"], ranges={"x": (0, None)}, flags={"ok": True}, query=" hi ")
    assert Filter.from_json(f.to_json()) == f
    assert f.to_dict() == {
        "labels": ["a"],
        "hide": ["b"],
        "ranges": {"x": [0.0, None]},
        "flags": {"ok": True},
        "query": "hi",
    }
    assert as_filter({}) is None and as_filter(None) is None and as_filter('{"query": ""}') is None
    assert hash(Filter(query="a")) == hash(Filter.from_dict({"query": "a"}))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"colour": 1}, r"filter\.colour is not a filter field"),
        ({"labels": "cat"}, r"filter\.labels='cat' must be a list"),
        (
            {"labels": ["lion"]},
            r"filter\.labels: run 'mlp' has no label 'lion'; its labels: 'cat', 'dog', 'eel'",
        ),
        ({"ranges": {"brightness": [1, 0]}}, r"filter\.ranges\['brightness'\]: low=1.0 is above high=0.0"),
        ({"ranges": {"brightness": ["a", 1]}}, r"filter\.ranges\['brightness'\]: 'a' is not a number"),
        ({"ranges": {"nope": [0, 1]}}, r"filter\.ranges\['nope'\]: run 'mlp' has no column 'nope'"),
        ({"ranges": {"note": [0, 1]}}, r"filter\.ranges\['note'\]: column 'note' is not numeric"),
        (
            {"flags": {"brightness": True}},
            r"filter\.flags\['brightness'\]: column 'brightness' is not boolean",
        ),
        ({"flags": {"correct": 1}}, r"filter\.flags\['correct'\]=1 must be true or false"),
        ({"query": "x" * 201}, r"filter\.query is 201 characters long"),
    ],
)
def test_bad_filters_name_the_field(run: ee.Run, spec: dict, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        run.mask(spec)
    assert issubclass(FilterError, ee.EmbeddingExplorerError)


def test_bad_json_is_refused_plainly() -> None:
    with pytest.raises(FilterError, match="filter is not valid JSON"):
        Filter.from_json("{labels")


def test_probing_among_the_kept_samples_equals_probing_the_subset(run: ee.Run) -> None:
    layer = run["fc2"]
    f = {"labels": ["dog", "eel"], "flags": {"correct": True}}
    kept = run.select(f)
    scores = layer.scores[:, 1].astype(np.float64)
    low, high = layer.extremes(1, 5, filter=f)
    by_hand = kept[np.lexsort((kept, scores[kept]))]
    assert (low == by_hand[:5]).all()
    assert (high == kept[np.lexsort((kept, -scores[kept]))][:5]).all()
    assert set(low) | set(high) <= set(kept)
    assert layer.quantile(1, 0.5, filter=f) == pytest.approx(np.median(scores[kept]))
    ids = layer.quantile_samples(1, 0.5, 3, filter=f)
    nearest = kept[np.argsort(np.abs(scores[kept] - np.median(scores[kept])), kind="stable")[:3]]
    assert sorted(ids) == sorted(nearest) and list(scores[ids]) == sorted(scores[ids])
    hist = layer.histogram(1, 4, by_label=True, filter=f)
    assert hist.counts.sum() == len(kept)
    assert set(hist.by_label or {}) == {1, 2}
    assert (layer.extremes(1, 5, filter=None)[0] == layer.extremes(1, 5)[0]).all()


def test_a_filter_nobody_passes_gives_empty_answers(run: ee.Run) -> None:
    f = {"query": "no such text anywhere"}
    assert len(run.select(f)) == 0
    low, high = run["fc1"].extremes(0, 4, filter=f)
    assert len(low) == len(high) == 0
    with pytest.raises(ee.EmbeddingExplorerError, match="no sample of run 'mlp' passes the filter"):
        run["fc1"].histogram(0, filter=f)


def test_select_takes_a_filter_or_its_parts_not_both(run: ee.Run, tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="not both"):
        run.select({"query": "a"}, labels=["cat"])
