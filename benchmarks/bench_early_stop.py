"""Early stop: ``ee.explore`` hooking all-MiniLM-L6-v2's first encoder layer (layer 1 of 6), with
the forward pass stopped after it (as explore does) vs run to the end (as it did before).

Both runs iterate the same ``ee.text_batches`` of WordNet glosses (a stratified subset) in the
same process, alternating, best of ``--repeats``; "whole pass" disables the stop by never
learning where to stop. Also hooks layer 6 of 6, where nothing can be saved (the pooling and
normalisation after it are cheap). Prints the times and the ratios. Never asserts.

    .venv/bin/python benchmarks/bench_early_stop.py [--n 4000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import embedding_explorer as ee
from embedding_explorer.capture import LayerCapture
from embedding_explorer.demos import wordnet_minilm as wn


def timed(model: Any, batches: ee.TextBatches, layer: str, out: Path, *, stop: bool) -> float:
    learn = LayerCapture._last_needed
    if not stop:
        LayerCapture._last_needed = lambda self: None  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        ee.explore(model, batches, {"layer": layer}, out=out, recompute=True, progress=False)
        return time.perf_counter() - start
    finally:
        LayerCapture._last_needed = learn  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000, help="glosses (stratified subset)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    glosses = wn.load_glosses()
    glosses = [glosses[i] for i in wn.stratified_subset([g.category for g in glosses], args.n)]
    model = wn.load_minilm()
    batches = ee.text_batches([g.text for g in glosses], model.tokenizer, batch_size=args.batch_size)
    print(f"MiniLM over {len(glosses):,} WordNet glosses, batches of {args.batch_size}, "
          f"{torch.get_num_threads()} threads (best of {args.repeats})", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        timed(model, batches, "0.model.encoder.layer.0", Path(tmp) / "warm", stop=True)
        for label, layer in (
            ("layer 1 of 6", "0.model.encoder.layer.0"),
            ("layer 6 of 6", "0.model.encoder.layer.5"),
        ):
            early, whole = [], []
            for i in range(args.repeats):
                early.append(timed(model, batches, layer, Path(tmp) / f"e{i}", stop=True))
                whole.append(timed(model, batches, layer, Path(tmp) / f"w{i}", stop=False))
            e, w = min(early), min(whole)
            print(
                f"  {label}: stopped after it {e:6.2f} s, whole pass {w:6.2f} s   whole/stopped {w / e:.2f}x"
            )


if __name__ == "__main__":
    main()
