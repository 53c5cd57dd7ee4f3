"""Per-token runs (``reduce="tokens"``): every real token of every text is one sample.

:class:`TokenBatches` wraps :class:`~embedding_explorer.text.TextBatches`: each batch it yields
carries a :class:`TokenSelection`, the one choice of which tokens are samples (padding never;
special tokens such as [CLS], [SEP], <bos> kept or skipped), which every layer of the run then
applies to its ``(B, T, D)`` output. Samples are the selected tokens in text order, then position
order, so the tokens of one text are consecutive sample ids.

Each token sample is described by ``text_id`` (the text's index), ``position`` (its index among
the text's non-padding tokens, special tokens counted), ``token`` (the decoded string, e.g.
``" not"`` for GPT-2) and ``token_id``; the text's own label and metadata are repeated on it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .exceptions import EmbeddingExplorerError
from .text import TextBatches

TOKENS_KEY = "__ee_tokens__"  # the batch key that carries a TokenSelection (never a model argument)
TOKEN_COLUMNS = ("text_id", "position", "token", "token_id")


@dataclass(frozen=True)
class TokenSelection:
    """Which tokens of one ``(B, T)`` batch are samples, and what each one is.

    Attributes
    ----------
    keep : torch.Tensor of shape (B, T), bool
        True at the tokens that are samples (row-major order is sample order).
    rows, text_ids, positions, token_ids : ndarray of shape (n,), int64
        For each kept token: its row in the batch, its text's index in the data, its position
        among the text's non-padding tokens, and its vocabulary id.
    texts : list of str
        The batch's texts (row ``r`` is ``texts[r]``), for rendering each token with its text.
    """

    keep: torch.Tensor
    rows: np.ndarray
    text_ids: np.ndarray
    positions: np.ndarray
    token_ids: np.ndarray
    texts: Sequence[str]

    @property
    def size(self) -> int:
        return len(self.rows)

    def columns(self) -> np.ndarray:
        """``(n, 3)`` int64: text_id, position, token_id of each kept token (for the ledger)."""
        return np.stack([self.text_ids, self.positions, self.token_ids], axis=1)


def select_tokens(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    special: torch.Tensor | None,
    *,
    first_text: int,
    skip_special: bool,
    texts: Sequence[str],
) -> TokenSelection:
    """The token samples of one batch: non-padding tokens (``attention_mask``), less the
    ``special`` ones when ``skip_special``. Positions count the text's non-padding tokens, so
    they are the same for right and left padding."""
    real = torch.ones_like(input_ids, dtype=torch.bool) if attention_mask is None else attention_mask > 0
    keep = real & ~special.bool() if skip_special and special is not None else real
    positions = real.long().cumsum(dim=1) - 1
    rows, cols = keep.nonzero(as_tuple=True)
    rows_np = rows.numpy().astype(np.int64)
    return TokenSelection(
        keep=keep,
        rows=rows_np,
        text_ids=rows_np + first_text,
        positions=positions[rows, cols].numpy().astype(np.int64),
        token_ids=input_ids[rows, cols].numpy().astype(np.int64),
        texts=texts,
    )


class TokenBatches:
    """The batches of a :class:`~embedding_explorer.text.TextBatches` with their token samples.

    ``explore`` wraps text batches in this when a run reduces by ``"tokens"``; each yielded
    dict carries its :class:`TokenSelection` under ``TOKENS_KEY`` and per-text ``labels``.
    """

    def __init__(self, source: TextBatches, *, skip_special: bool) -> None:
        self.source = source
        self.skip_special = skip_special
        self._special_ids = _special_ids(source.tokenizer)
        self._names: dict[int, str] = {}  # decoded tokens, for a sample table written in chunks

    @property
    def n_texts(self) -> int:
        return len(self.source)

    @property
    def texts(self) -> list[str]:
        return self.source.texts

    @property
    def tokenizer(self) -> Any:
        return self.source.tokenizer

    @property
    def n_batches(self) -> int:
        """The number of batches of texts (the last may be shorter)."""
        return self.source.n_batches

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.batches()

    def batches(self, first: int = 0, stop: int | None = None) -> Iterator[dict[str, Any]]:
        """Batches ``first .. stop`` (indices of batches of texts), each with its selection; a
        Dask shard runs a range of them, padded exactly as in one pass over all of them."""
        stop = self.n_batches if stop is None else stop
        for index in range(first, stop):
            yield self._batch(index * self.source.batch_size)

    def batch_counts(self) -> np.ndarray:
        """The number of token samples in each batch of texts, from the tokenizer alone (no
        model): what a Dask driver splits the run by, before any token reaches a worker."""
        return np.array([batch[TOKENS_KEY].size for batch in self.batches()], dtype=np.int64)

    def _batch(self, start: int) -> dict[str, Any]:
        texts = self.source.texts
        batch = self.source.encode(start, special_tokens_mask=self.skip_special)
        ids = batch.get("input_ids")
        if not isinstance(ids, torch.Tensor) or ids.ndim != 2:
            raise EmbeddingExplorerError(
                "reduce='tokens' needs the tokenizer to give input_ids of shape (batch, tokens)"
            )
        special = batch.pop("special_tokens_mask", None)
        if self.skip_special and special is None:
            special = torch.isin(ids, torch.tensor(self._special_ids, dtype=ids.dtype))
        mask = batch.get("attention_mask")
        batch[TOKENS_KEY] = select_tokens(
            ids,
            mask if isinstance(mask, torch.Tensor) else None,
            special if isinstance(special, torch.Tensor) else None,
            first_text=start,
            skip_special=self.skip_special,
            texts=texts[start : start + self.source.batch_size],
        )
        return batch

    def content_fingerprint(self) -> str:
        """The texts' fingerprint and the choice of special tokens."""
        return f"{self.source.content_fingerprint()}:tokens:{int(self.skip_special)}"

    def decode(self, token_ids: np.ndarray) -> np.ndarray:
        """The decoded string of each id (each distinct id decoded once, then remembered), as an
        object array."""
        unique, inverse = np.unique(np.asarray(token_ids, dtype=np.int64), return_inverse=True)
        names = np.array([self._name(int(i)) for i in unique], dtype=object)
        return names[inverse.reshape(-1)]

    def _name(self, token_id: int) -> str:
        name = self._names.get(token_id)
        if name is None:
            name = self._names[token_id] = decode_token(self.tokenizer, token_id)
        return name

    def __repr__(self) -> str:
        return f"TokenBatches({self.source!r}, skip_special={self.skip_special})"


def text_batches_of(data: Any) -> TextBatches | TokenBatches | None:
    """``data`` when it is batches of texts (per text or per token): data read by batches of
    texts, whose sample counts come from the tokenizer, not from indexing; else None."""
    return data if isinstance(data, (TextBatches, TokenBatches)) else None


def decode_token(tokenizer: Any, token_id: int) -> str:
    """One token as text: ``tokenizer.decode([id])`` (``" not"`` for GPT-2, ``"##ing"`` for
    WordPiece), else its vocabulary entry, else the id itself."""
    decode = getattr(tokenizer, "decode", None)
    if callable(decode):
        return str(decode([token_id]))
    convert = getattr(tokenizer, "convert_ids_to_tokens", None)
    if callable(convert):
        return str(convert(token_id))
    return str(token_id)


def _special_ids(tokenizer: Any) -> list[int]:
    ids = getattr(tokenizer, "all_special_ids", None)
    return sorted({int(i) for i in ids}) if ids else []


def tokens_choice(methods: Mapping[str, tuple[str, bool]]) -> bool | None:
    """Whether the run is per token: None when no layer reduces by tokens, else ``skip_special``.

    ``methods`` maps each layer to its reduce method name and ``skip_special``. All layers of a
    run must agree on which tokens are samples, so a per-token run reduces every layer by tokens
    with one choice of special tokens.
    """
    per_token = {layer: skip for layer, (method, skip) in methods.items() if method == "tokens"}
    if not per_token:
        return None
    others = sorted(set(methods) - set(per_token))
    if others:
        raise EmbeddingExplorerError(
            f"layers {others} do not reduce by 'tokens' while {sorted(per_token)} do; in a per-token "
            "run every layer has one row per token, so give reduce='tokens' for all layers"
        )
    choices = set(per_token.values())
    if len(choices) > 1:
        raise EmbeddingExplorerError(
            "layers disagree on skip_special; every layer of a per-token run must keep the same tokens"
        )
    return choices.pop()


def token_samples(data: Any, skip_special: bool) -> TokenBatches:
    """``data`` (text batches) as token batches, or an error naming what per-token runs need."""
    if isinstance(data, TokenBatches):
        if data.skip_special != skip_special:
            return TokenBatches(data.source, skip_special=skip_special)
        return data
    if not isinstance(data, TextBatches):
        raise EmbeddingExplorerError(
            f"reduce='tokens' needs data=ee.text_batches(texts, tokenizer) (to name each token and show "
            f"it in its text), not {type(data).__name__}"
        )
    return TokenBatches(data, skip_special=skip_special)


def token_table(columns: np.ndarray, data: TokenBatches) -> pd.DataFrame:
    """The per-token columns of the sample table: text_id, position, token, token_id."""
    columns = np.asarray(columns, dtype=np.int64).reshape(-1, 3)
    return pd.DataFrame(
        {
            "text_id": columns[:, 0],
            "position": columns[:, 1],
            "token": data.decode(columns[:, 2]),
            "token_id": columns[:, 2],
        }
    )


__all__ = [
    "TOKENS_KEY",
    "TOKEN_COLUMNS",
    "TokenBatches",
    "TokenSelection",
    "decode_token",
    "select_tokens",
    "text_batches_of",
    "token_samples",
    "token_table",
    "tokens_choice",
]
