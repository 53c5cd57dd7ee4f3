"""``ee.text_batches``: tokenized dict batches (padding, truncation, labels), run reuse, and models
whose forward takes one features dict (the sentence-transformers convention). No download."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.capture import takes_features_dict
from support import TinyTransformer

TEXTS = [
    "the cat sat",
    "a dog ran far away today",
    "birds fly",
    "the quick brown fox jumps over the lazy dog",
    "one",
    "two words",
    "three small words",
]


class WordTokenizer:
    """A Hugging Face-style tokenizer: words -> ids (1..19), [CLS]=1 first, right padding with 0."""

    name_or_path = "test-word-tokenizer"

    def __init__(self) -> None:
        self.calls = 0

    def __len__(self) -> int:
        return 20

    def __call__(
        self,
        texts: list[str],
        *,
        padding: bool,
        truncation: bool,
        max_length: int,
        return_tensors: str,
    ) -> dict[str, torch.Tensor]:
        assert padding and truncation and return_tensors == "pt"
        self.calls += 1
        rows = [[1] + [2 + sum(map(ord, w)) % 18 for w in t.split()] for t in texts]
        rows = [r[:max_length] for r in rows]
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        return {"input_ids": ids, "attention_mask": mask}


class Pool(nn.Module):
    """Mask-aware mean of token embeddings into the features dict, as sentence-transformers pools."""

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        mask = features["attention_mask"].unsqueeze(-1).float()
        pooled = (features["token_embeddings"] * mask).sum(1) / mask.sum(1)
        return {**features, "sentence_embedding": pooled}


class FeaturesModel(nn.Module):
    """Like a SentenceTransformer: ``forward(input: dict, **kwargs) -> dict`` with a pooled key."""

    def __init__(self) -> None:
        super().__init__()
        self.body = TinyTransformer()
        self.pool = Pool()

    def forward(self, input: dict[str, torch.Tensor], **kwargs: Any) -> dict[str, torch.Tensor]:
        hidden, _ = self.body.block(self.body.embed(input["input_ids"]), input["attention_mask"])
        return self.pool({**input, "token_embeddings": hidden})


def test_batches_are_padded_dicts_with_labels() -> None:
    tok = WordTokenizer()
    batches = ee.text_batches(TEXTS, tok, batch_size=3, max_length=5, labels=list("abcdefg"))
    assert len(batches) == 7 and batches.n_samples == 7
    first = list(batches)
    assert [b["input_ids"].shape[0] for b in first] == [3, 3, 1]
    assert first[0]["input_ids"].shape == (3, 5)  # padded to the longest row, truncated at 5
    assert first[0]["attention_mask"].tolist()[2] == [1, 1, 1, 0, 0]
    assert first[1]["attention_mask"].tolist()[1] == [1, 1, 0, 0, 0]
    assert [list(b["labels"]) for b in first] == [["a", "b", "c"], ["d", "e", "f"], ["g"]]
    again = list(batches)  # re-iterable: a fresh pass gives the same batches
    assert all(torch.equal(a["input_ids"], b["input_ids"]) for a, b in zip(first, again, strict=True))
    assert "labels" not in next(iter(ee.text_batches(TEXTS, tok)))


def test_bad_arguments_are_refused() -> None:
    tok = WordTokenizer()
    with pytest.raises(TypeError, match="sequence of strings"):
        ee.text_batches("one text", tok)
    with pytest.raises(ValueError, match="one per text"):
        ee.text_batches(TEXTS, tok, labels=[0, 1])
    with pytest.raises(ValueError, match="batch_size"):
        ee.text_batches(TEXTS, tok, batch_size=0)


def test_explore_on_text_batches_mask_aware_and_labelled(explore_quiet) -> None:
    tok = WordTokenizer()
    model = TinyTransformer()
    labels = np.arange(7) % 3
    run = explore_quiet(
        model,
        ee.text_batches(TEXTS, tok, batch_size=3, labels=labels),
        ["embed", "block"],
        reduce={"block": "first"},
        render=TEXTS,
        n_components=3,
    )
    assert run.n_samples == 7 and model.calls == 3
    np.testing.assert_array_equal(run.labels, labels)
    assert run.rendering_kind == "text/plain"
    enc = tok(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
    with torch.no_grad():
        emb = model.embed(enc["input_ids"])
        hidden, _ = model.block(emb, enc["attention_mask"])
    lengths = enc["attention_mask"].sum(1)
    expected = np.stack([emb[i, : int(lengths[i])].mean(0).numpy() for i in range(7)])
    np.testing.assert_allclose(run["embed"].activations[:], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run["block"].activations[:], hidden[:, 0].numpy(), rtol=1e-5, atol=1e-6)


def test_finished_text_run_is_reused_and_changes_recompute(explore_quiet) -> None:
    model = TinyTransformer()
    tok = WordTokenizer()
    first = explore_quiet(model, ee.text_batches(TEXTS, tok, batch_size=3), ["embed"], n_components=2)
    assert first.manifest["data"]["fingerprint"] is not None
    again = explore_quiet(model, ee.text_batches(list(TEXTS), tok, batch_size=3), ["embed"], n_components=2)
    assert again.manifest["created"] == first.manifest["created"] and model.calls == 3  # not run again
    other = ee.text_batches([*TEXTS[:-1], "changed text"], tok, batch_size=3)
    assert other.content_fingerprint() != ee.text_batches(TEXTS, tok, batch_size=3).content_fingerprint()
    relabelled = ee.text_batches(TEXTS, tok, batch_size=3, labels=[0] * 7)
    assert relabelled.content_fingerprint() != other.content_fingerprint()
    explore_quiet(model, other, ["embed"], n_components=2)
    assert model.calls == 6


def test_features_dict_model_gets_the_dict(explore_quiet) -> None:
    model = FeaturesModel()
    tok = WordTokenizer()
    batch = next(iter(ee.text_batches(TEXTS, tok)))
    assert takes_features_dict(model, batch)
    assert not takes_features_dict(TinyTransformer(), batch)  # keyword arguments by name
    run = explore_quiet(
        model,
        ee.text_batches(TEXTS, tok, batch_size=4),
        ["pool", "body.block"],
        reduce={"pool": ee.Reducer(select="sentence_embedding")},
        n_components=2,
    )
    with torch.no_grad():
        enc = tok(TEXTS, padding=True, truncation=True, max_length=128, return_tensors="pt")
        expected = model(dict(enc))["sentence_embedding"].numpy()
    # the pooling module's output dict, key sentence_embedding: the mask-aware mean of the block
    np.testing.assert_allclose(run["pool"].activations[:], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(run["body.block"].activations[:], expected, rtol=1e-5, atol=1e-6)


def test_a_range_of_batches_is_those_batches_of_one_pass() -> None:
    """What a Dask shard runs (batches ``first .. stop``) and splits the run by (texts per batch)."""
    batches = ee.text_batches(TEXTS, WordTokenizer(), batch_size=3, labels=list(range(len(TEXTS))))
    whole = list(batches)
    assert batches.n_batches == len(whole) == 3
    assert batches.batch_counts().tolist() == [len(b["input_ids"]) for b in whole] == [3, 3, 1]
    part = list(batches.batches(1, 3))
    assert len(part) == 2
    for got, want in zip(part, whole[1:], strict=True):
        assert got.keys() == want.keys()
        for key in want:
            np.testing.assert_array_equal(np.asarray(got[key]), np.asarray(want[key]))
