"""The recorded columns as the sample table keeps them (build/columns.py): one rule for keeping
``loss`` and ``correct``, whether the samples come whole or in a ledger's parts."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from embedding_explorer.build.columns import keeps_loss, recorded_block, recorded_names, with_loss
from embedding_explorer.extract import Ledger
from embedding_explorer.outputs import finish_columns


def ledger_of(*losses: list[float]) -> Ledger:
    """A ledger that recorded the outputs of one batch per entry of ``losses``."""
    ledger = Ledger(n_components=2, max_dense_dim=8)
    for loss in losses:
        n = len(loss)
        ledger.add_columns(
            {
                "predicted": np.zeros(n),
                "confidence": np.ones(n),
                "entropy": np.zeros(n),
                "loss": np.array(loss),
            },
            n,
        )
    return ledger


@pytest.mark.parametrize(
    ("labelled", "parts", "kept"),
    [
        (True, [[0.1, 2.0], [0.5]], True),
        (True, [[0.1, 2.0], [np.nan]], False),  # a label that is not a class index: no loss for it
        (True, [[0.1, np.inf]], False),
        (False, [[0.1, 2.0]], False),
        (True, None, False),  # no loss recorded (no outputs)
    ],
)
def test_one_rule_whole_or_in_parts(labelled: bool, parts: list[list[float]] | None, kept: bool) -> None:
    losses = None if parts is None else [np.array(p) for p in parts]
    assert keeps_loss(labelled, losses) is kept
    whole = None if losses is None else [np.concatenate(losses)]
    assert keeps_loss(labelled, whole) is kept
    ledger = ledger_of(*(parts or [])) if parts is not None else Ledger(n_components=2, max_dense_dim=8)
    assert with_loss(ledger, labelled) is kept


def test_losses_are_not_read_without_labels() -> None:
    def parts() -> Iterator[np.ndarray]:
        raise AssertionError("read")
        yield np.zeros(1)

    assert keeps_loss(False, parts()) is False


def test_kept_loss_decides_the_stored_and_named_columns() -> None:
    raw = {
        "predicted": np.array([1.0, 0.0]),
        "confidence": np.array([0.9, 0.8]),
        "entropy": np.array([0.1, 0.2]),
    }
    raw["loss"] = np.array([0.1, 0.3])
    raw["brightness"] = np.array([0.5, 0.7])
    labels = np.array([1, 1])
    for loss, outputs in (
        (True, ["predicted", "confidence", "entropy", "loss", "correct"]),
        (False, ["predicted", "confidence", "entropy"]),
    ):
        block = recorded_block(raw, labels, {"entropy"}, loss)
        names = recorded_names(list(raw), {"entropy"}, loss)
        assert names == {
            "input_statistics": ["brightness"],
            "outputs": [k for k in outputs if k != "entropy"],
        }
        assert sorted(block) == sorted(names["input_statistics"] + names["outputs"])
    stored = finish_columns(raw, labels, loss=True)
    assert stored["predicted"].dtype == np.int64 and stored["correct"].tolist() == [True, False]
    with pytest.raises(TypeError, match="loss"):  # the caller decides, by keeps_loss
        finish_columns(raw, labels)  # type: ignore[call-arg]
