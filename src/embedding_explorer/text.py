"""Texts as batches of tokenizer output, so ``explore`` runs a language model with no collate code.

>>> batches = ee.text_batches(texts, model.tokenizer, labels=categories)   # doctest: +SKIP
>>> ee.explore(model, batches, ["0.model.encoder.layer.5"], render=texts)   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from .checks import positive_int
from .exceptions import EmbeddingExplorerError


class TextBatches:
    """Re-iterable batches of ``tokenizer(texts[i : i + batch_size], padding=True, ...)`` dicts.

    Each batch is a plain dict of tensors (``input_ids``, ``attention_mask``, ... as the
    tokenizer gives them) plus a ``labels`` key when labels are given; ``explore`` takes the
    labels out and keeps the attention mask for mask-aware token means. ``len()`` is the number
    of samples (texts), and :meth:`content_fingerprint` lets ``explore`` reuse a finished run.
    """

    def __init__(
        self,
        texts: Sequence[str],
        tokenizer: Any,
        *,
        batch_size: int = 64,
        max_length: int = 128,
        labels: Sequence[Any] | np.ndarray | None = None,
    ) -> None:
        if isinstance(texts, str):
            raise TypeError("texts must be a sequence of strings, not one string")
        self.texts = [str(t) for t in texts]
        positive_int(batch_size, "batch_size")
        positive_int(max_length, "max_length")
        if not callable(tokenizer):
            raise TypeError(
                f"tokenizer must be callable (a Hugging Face tokenizer), not {type(tokenizer).__name__}"
            )
        if getattr(tokenizer, "pad_token", "") is None and len(self.texts) > 1:
            raise EmbeddingExplorerError(
                f"the tokenizer {getattr(tokenizer, 'name_or_path', type(tokenizer).__name__)!r} has no "
                "padding token (GPT-2's has none), so texts cannot be batched; set "
                "tokenizer.pad_token = tokenizer.eos_token (padding is masked out)"
            )
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        self.labels: np.ndarray | None = None
        if labels is not None:
            if isinstance(labels, torch.Tensor):
                labels = labels.detach().cpu().numpy()
            self.labels = np.asarray(labels)
            if self.labels.ndim != 1 or len(self.labels) != len(self.texts):
                raise ValueError(
                    f"labels has shape {self.labels.shape} for {len(self.texts)} texts; expected one per text"
                )

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def n_samples(self) -> int:
        """The number of samples (texts): what ``explore`` counts before it iterates."""
        return len(self.texts)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.batches()

    @property
    def n_batches(self) -> int:
        """The number of batches of texts (the last may be shorter)."""
        return -(-len(self.texts) // self.batch_size)

    def batches(self, first: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Batches ``first .. stop`` (indices of batches of texts); a Dask shard runs a range of
        them, each padded exactly as in one pass over all of them."""
        stop = self.n_batches if stop is None else stop
        for index in range(first, stop):
            yield self.encode(index * self.batch_size)

    def batch_counts(self) -> np.ndarray:
        """The number of samples (texts) in each batch: what a Dask driver splits the run by."""
        starts = np.arange(0, len(self.texts), self.batch_size, dtype=np.int64)
        return np.minimum(starts + self.batch_size, len(self.texts)) - starts

    def encode(self, start: int, *, special_tokens_mask: bool = False) -> dict[str, Any]:
        """The batch of texts ``start .. start + batch_size``: the tokenizer's tensors, plus
        ``labels`` when there are labels and, when asked, the tokenizer's ``special_tokens_mask``
        (1 for [CLS], [SEP], <bos>...; per-token runs take it out before the model runs)."""
        extra = {"return_special_tokens_mask": True} if special_tokens_mask else {}
        encoded = self.tokenizer(
            self.texts[start : start + self.batch_size],
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
            **extra,
        )
        batch: dict[str, Any] = dict(encoded)
        if self.labels is not None:
            batch["labels"] = self.labels[start : start + self.batch_size]
        return batch

    def content_fingerprint(self) -> str:
        """A hash of the texts, labels, batching and the tokenizer's identity (class, name or path,
        vocabulary size): the same texts through the same tokenizer give the same batches."""
        digest = hashlib.blake2b(digest_size=16)
        tok = self.tokenizer
        identity = (
            f"{type(tok).__module__}.{type(tok).__qualname__}|{getattr(tok, 'name_or_path', '')}|"
            f"{_vocab_size(tok)}|{self.batch_size}|{self.max_length}|{len(self.texts)}"
        )
        digest.update(identity.encode())
        for text in self.texts:
            encoded = text.encode()
            digest.update(len(encoded).to_bytes(8, "little"))
            digest.update(encoded)
        if self.labels is not None:
            digest.update(b"labels")
            digest.update(repr(self.labels.tolist()).encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (
            f"TextBatches({len(self.texts)} texts, batch_size={self.batch_size}, "
            f"max_length={self.max_length}, labels={'yes' if self.labels is not None else 'no'})"
        )


def text_batches(
    texts: Sequence[str],
    tokenizer: Any,
    *,
    batch_size: int = 64,
    max_length: int = 128,
    labels: Sequence[Any] | np.ndarray | None = None,
) -> TextBatches:
    """Batches of tokenized ``texts`` for :func:`explore`: padded dicts of tensors, truncated to
    ``max_length`` tokens, with a ``labels`` key when ``labels`` (one per text) are given.

    The result can be iterated any number of times, ``len()`` is the number of texts, and a
    finished run over the same texts, labels and tokenizer is reused.
    """
    return TextBatches(texts, tokenizer, batch_size=batch_size, max_length=max_length, labels=labels)


def _vocab_size(tokenizer: Any) -> int | None:
    try:
        return len(tokenizer)
    except TypeError:
        return None


__all__ = ["TextBatches", "text_batches"]
