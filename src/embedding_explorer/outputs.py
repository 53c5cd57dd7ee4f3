"""What the model itself said about each sample, recorded as metadata columns.

With ``explore(..., outputs="auto")`` (the default) a model whose output is a ``(B, C)`` tensor
of class scores, ``C >= 2`` (or an object with such a ``logits`` attribute, as Hugging Face
heads return), gets these columns (``p = softmax(scores)``):

``predicted``
    ``argmax_c scores[c]``, the class index.
``confidence``
    ``max_c p[c]``, in [1/C, 1].
``entropy``
    ``-sum_c p[c] log p[c]`` in nats, in [0, log C].
``loss``
    with integer labels in ``0..C-1``: the cross-entropy ``-log p[label]``.
``correct``
    with such labels: ``predicted == label``.

``outputs="classification"`` insists (an output of another shape is an error naming it);
``None`` records nothing; a callable maps the model's output to the ``(B, C)`` scores (for other
heads, e.g. ``lambda out: out["logits"]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .exceptions import EmbeddingExplorerError

OutputsSpec = str | Callable[[Any], Any] | None
OUTPUT_COLUMNS = ("predicted", "confidence", "entropy", "loss", "correct")


def check_outputs(spec: OutputsSpec) -> None:
    """Refuse an ``outputs=`` argument that is none of the accepted forms."""
    if spec is None or callable(spec) or spec in ("auto", "classification"):
        return
    raise ValueError(f"outputs={spec!r}: use 'auto', 'classification', None or a callable")


def class_scores(output: Any, spec: OutputsSpec, batch_size: int | None = None) -> torch.Tensor | None:
    """The ``(B, C)`` class scores in the model's ``output`` (``B == batch_size`` when given),
    or None (nothing to record)."""
    if spec is None:
        return None
    value = spec(output) if callable(spec) else output
    if not isinstance(value, torch.Tensor):
        value = getattr(value, "logits", None)
    if batch_size == 1 and isinstance(value, torch.Tensor) and value.ndim == 1:
        value = value.unsqueeze(0)  # a batch of one through a head that ends in .squeeze()
    ok = (
        isinstance(value, torch.Tensor)
        and value.ndim == 2
        and value.shape[1] >= 2
        and value.is_floating_point()
        and (batch_size is None or value.shape[0] == batch_size)
    )
    if ok:
        return value
    if spec == "auto":
        return None
    shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
    raise EmbeddingExplorerError(
        f"outputs={'a callable' if callable(spec) else repr(spec)} needs (batch, classes) class scores "
        f"with at least 2 classes, one row per sample; the model's output is {shape}: pass outputs=None, "
        "or a callable "
        "that picks the scores"
    )


def output_columns(scores: torch.Tensor, labels: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-sample ``predicted``, ``confidence``, ``entropy`` and ``loss`` (NaN where the label
    is not a class index) of one batch of class scores (float64 arrays).

    In numpy, on the calling thread: a batch's scores are a few thousand values, and torch's
    thread pool, entered for each of its operations, cost 10-100x more than the arithmetic
    whenever another process held a core (measured: 1.6 ms against 0.06 ms for 256 x 10)."""
    logits = scores.detach().to("cpu", torch.float64).numpy()
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # NaN/Inf scores: NaN, as torch
        shifted = logits - logits.max(axis=1, keepdims=True)  # log-softmax, as torch computes it
        p = np.exp(shifted)
        sums = p.sum(axis=1, keepdims=True)
        log_p = shifted - np.log(sums)
        p /= sums
        out = {
            "predicted": logits.argmax(axis=1).astype(np.float64),
            "confidence": p.max(axis=1),
            "entropy": -(p * log_p).sum(axis=1),
        }
    loss = np.full(len(logits), np.nan)
    if labels is not None and labels.dtype.kind in "iub":
        y = labels.astype(np.int64)
        valid = (y >= 0) & (y < logits.shape[1])
        rows = np.flatnonzero(valid)
        loss[rows] = -log_p[rows, y[rows]]
    out["loss"] = loss
    return out


def finish_columns(
    raw: dict[str, np.ndarray], labels: np.ndarray | None, *, loss: bool
) -> dict[str, np.ndarray]:
    """The recorded columns as stored: ``predicted`` as int64; ``loss`` and ``correct`` when
    ``loss`` says to keep them (:func:`.build.columns.keeps_loss`: every label a class index;
    ``correct`` compares with the final labels)."""
    out: dict[str, np.ndarray] = {
        "predicted": raw["predicted"].astype(np.int64),
        "confidence": raw["confidence"],
        "entropy": raw["entropy"],
    }
    if loss and labels is not None:
        out["loss"] = raw["loss"]
        out["correct"] = out["predicted"] == labels.astype(np.int64)
    return out
