"""Text extraction overhead: ``ee.explore`` on all-MiniLM-L6-v2 with every layer hooked (embeddings,
six encoder layers, sentence embedding) vs the bare forward loop over the same tokenized batches.

Both iterate the same ``ee.text_batches`` of WordNet glosses (a stratified subset) in the same
process, alternating, best of ``--repeats``. Prints the ratio (goal: at most 1.10x), samples/s and
the peak RSS (sampled every 50 ms in a thread). Never asserts.

    .venv/bin/python benchmarks/bench_text_extraction.py [--n 20000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import torch

import embedding_explorer as ee
from embedding_explorer.demos import wordnet_minilm as wn


class PeakRSS:
    """The largest resident set size seen while the block runs."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._proc = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.peak = self._proc.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bare(model: Any, batches: ee.TextBatches) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        for batch in batches:
            model({k: v for k, v in batch.items() if k != "labels"})
    return time.perf_counter() - start


def ours(model: Any, batches: ee.TextBatches, texts: list[str], out: Path) -> float:
    layers, reduce = wn.minilm_layers(model)
    start = time.perf_counter()
    ee.explore(
        model,
        batches,
        layers,
        reduce=reduce,
        out=out,
        recompute=True,
        progress=False,
        render=texts,
        label_names=list(wn.LEXNAMES),
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000, help="glosses (stratified subset)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    glosses = wn.load_glosses()
    glosses = [glosses[i] for i in wn.stratified_subset([g.category for g in glosses], args.n)]
    texts = [g.text for g in glosses]
    model = wn.load_minilm()
    batches = ee.text_batches(
        texts, model.tokenizer, batch_size=args.batch_size, labels=[g.category for g in glosses]
    )
    warm = ee.text_batches(texts[: 4 * args.batch_size], model.tokenizer, batch_size=args.batch_size)
    bare(model, warm)
    times_bare, times_ours = [], []
    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as peak:
        for i in range(args.repeats):
            times_bare.append(bare(model, batches))
            times_ours.append(ours(model, batches, texts, Path(tmp) / f"run{i}"))
        t = ee.open_run(Path(tmp) / "run0").manifest["timings"]
    b, o, n = min(times_bare), min(times_ours), len(texts)
    print(f"MiniLM over {n:,} WordNet glosses, 8 layers hooked, {torch.get_num_threads()} threads "
          f"(best of {args.repeats})")  # fmt: skip
    print(f"  bare forward loop  {b:7.2f} s  {n / b:7.0f} samples/s")
    print(f"  ee.explore         {o:7.2f} s  {n / o:7.0f} samples/s   ratio {o / b:.2f}x (goal <= 1.10x)")
    print(f"  of which: extract {t['extract_s']:.2f} s, PCA {t['pca_s']:.2f} s, scores {t['scores_s']:.2f} s")
    print(f"  peak RSS {peak.peak / 2**20:,.0f} MiB")


if __name__ == "__main__":
    main()
