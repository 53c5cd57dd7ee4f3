"""The per-token text demo: every token of 2,000 WordNet glosses through all-MiniLM-L6-v2.

Each sample is one token (special tokens skipped) of a gloss (``"dog: a member of the genus
Canis ..."``), with the gloss's lexicographer category as its label and ``text_id``,
``position``, ``token``, ``token_id`` and ``pos`` as metadata; layers are MiniLM's embeddings and
its six encoder layers. The glosses are a stratified subset drawn the same way as the text
demo's (:mod:`.wordnet_minilm`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from ..explore import explore
from ..reducers import Reducer
from ..run import Layer, Run
from ..text import text_batches
from . import wordnet_minilm as wn

DEFAULT_GLOSSES = 2_000
RUN_NAME = "wordnet-minilm-tokens"


def build_token_run(
    out: Path,
    *,
    n: int = DEFAULT_GLOSSES,
    progress: bool = True,
    data_dir: str | Path | None = None,
    model: Any = None,
    batch_size: int = 64,
) -> Run:
    """Explore MiniLM per token over ``n`` glosses (a stratified subset); reused when finished."""
    folder = wn.find_wordnet(data_dir)
    glosses = wn.load_glosses(folder)
    glosses = [glosses[i] for i in wn.stratified_subset([g.category for g in glosses], n)]
    if model is None:
        model = wn.load_minilm()
    layers, _ = wn.minilm_layers(model)
    layers.pop("sentence")  # one vector per text: not a per-token layer
    return explore(
        model,
        text_batches([g.text for g in glosses], model.tokenizer, batch_size=batch_size),
        layers,
        out=out / RUN_NAME,
        name=RUN_NAME,
        reduce=Reducer("tokens", skip_special=True),
        labels=[g.category for g in glosses],
        label_names=list(wn.lexnames(folder)),
        metadata={"pos": [g.pos for g in glosses]},
        progress=progress,
    )


def token_makeup(layer: Layer, component: int, n: int = 16) -> tuple[str, str]:
    """The most common tokens at both ends of a component, e.g. ``("9/16 'of'", "5/16 'a'")``."""
    tokens = layer.run.samples["token"].to_numpy()
    ends = []
    for ids in layer.extremes(component, n):
        counts = Counter(str(t) for t in tokens[ids])
        ends.append(", ".join(f"{c}/{len(ids)} {name!r}" for name, c in counts.most_common(2)))
    return ends[0], ends[1]


def describe_token_run(run: Run, top: int = 3) -> str:
    """Per layer, the top components: variance, token make-up of each end, r with position."""
    lines = [f"{run.name}  ({run.n_samples:,} tokens of {run.samples['text_id'].nunique():,} glosses)"]
    position = run.samples["position"].to_numpy(dtype=np.float64)
    for layer in run:
        scores = np.asarray(layer.scores, dtype=np.float64)
        for c in range(min(top, layer.n_components)):
            low, high = token_makeup(layer, c)
            r = float(np.corrcoef(scores[:, c], position)[0, 1])
            head = layer.name if c == 0 else ""
            lines.append(
                f"  {head:<10} PC{c + 1} {100 * layer.explained_variance_ratio[c]:5.1f}%"
                f"  r(position) {r:+.2f}   low: {low:<26} high: {high}"
            )
    return "\n".join(lines)


__all__ = ["build_token_run", "describe_token_run", "token_makeup"]
