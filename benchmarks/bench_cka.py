"""CKA of every layer pair of two runs (100k samples, three 512-wide layers each): the streamed
feature-side computation vs. the naive N x N Gram-matrix approach.

The two runs are two random MLPs (different seeds) over the same inputs, cached under
``runs/bench-cka`` (reused when nothing changed). The naive approach builds a centred float64
Gram matrix per layer, ``H X X^T H``, and takes ``sum(K_c * L_c)`` per pair; it runs on the
largest subsample that fits (``--naive-rows``), and its time and memory at the full N are
extrapolated (both grow as N^2). The streamed computation is also timed on that subsample, for a
ratio at equal N, and both are checked to agree. Prints figures; never asserts on time.

    .venv/bin/python benchmarks/bench_cka.py [--rows 100000] [--dim 512] [--naive-rows 10000]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer.analysis import cka_matrix

LAYERS = ["fc1", "fc2", "fc3"]


class MLP(nn.Module):
    def __init__(self, d_in: int, dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_in, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.fc3 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


def build_runs(rows: int, dim: int, root: Path) -> tuple[ee.Run, ee.Run]:
    g = torch.Generator().manual_seed(0)
    latent = torch.randn(rows, 16, generator=g) * torch.linspace(4.0, 0.5, 16)
    x = latent @ torch.randn(16, 128, generator=g) / 4.0 + 0.3 * torch.randn(rows, 128, generator=g)
    runs = []
    for seed, name in [(1, "a"), (2, "b")]:
        torch.manual_seed(seed)
        t = time.perf_counter()
        run = ee.explore(MLP(128, dim), x, LAYERS, out=root / name, batch_size=4096, progress=False)
        print(f"run {name}: {run.n_samples} samples, layers {run.layers} ({time.perf_counter() - t:.1f} s)")
        runs.append(run)
    return runs[0], runs[1]


def centred_gram(x: np.ndarray) -> np.ndarray:
    k = x @ x.T
    row = k.mean(axis=0)
    k -= row[None, :]
    k -= row[:, None]
    k += row.mean()
    return k


def naive_cka(acts_a: list[np.ndarray], acts_b: list[np.ndarray]) -> np.ndarray:
    grams_a = [centred_gram(x) for x in acts_a]
    grams_b = [centred_gram(x) for x in acts_b]
    self_a = [np.sqrt(np.sum(k * k)) for k in grams_a]
    self_b = [np.sqrt(np.sum(k * k)) for k in grams_b]
    out = np.empty((len(acts_a), len(acts_b)))
    for i, ka in enumerate(grams_a):
        for j, kb in enumerate(grams_b):
            out[i, j] = np.sum(ka * kb) / (self_a[i] * self_b[j])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--naive-rows", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-cka"))
    args = parser.parse_args()

    run_a, run_b = build_runs(args.rows, args.dim, args.out)
    layers_a, layers_b = list(run_a), list(run_b)
    n, m = run_a.n_samples, min(args.naive_rows, run_a.n_samples)
    pairs = len(layers_a) * len(layers_b)

    t = time.perf_counter()
    full = cka_matrix(layers_a, layers_b)
    t_stream = time.perf_counter() - t
    t = time.perf_counter()
    cka_matrix(layers_a, layers_b, debiased=True)
    t_debiased = time.perf_counter() - t
    total_dim = sum(layer.dim for layer in layers_a + layers_b)
    print(
        f"\nstreamed CKA, {pairs} pairs, N={n}: {t_stream:.2f} s (debiased: {t_debiased:.2f} s), "
        f"accumulator {total_dim**2 * 8 / 2**20:.0f} MiB"
    )
    print("CKA (rows: run a layers, columns: run b layers):")
    print(np.array2string(full, precision=4))

    sub_a = [np.asarray(layer.activations[:m], dtype=np.float64) for layer in layers_a]
    sub_b = [np.asarray(layer.activations[:m], dtype=np.float64) for layer in layers_b]
    t = time.perf_counter()
    streamed_sub = cka_matrix(sub_a, sub_b)
    t_stream_sub = time.perf_counter() - t
    t = time.perf_counter()
    naive = naive_cka(sub_a, sub_b)
    t_naive = time.perf_counter() - t
    gram_bytes = m * m * 8
    difference = np.abs(naive - streamed_sub).max()
    print(
        f"\nsubsample N={m}: naive Gram {t_naive:.2f} s ({len(sub_a) + len(sub_b)} Gram matrices of "
        f"{gram_bytes / 2**30:.2f} GiB each), streamed {t_stream_sub:.3f} s: "
        f"ratio naive/streamed {t_naive / t_stream_sub:.0f}x; max |difference| {difference:.1e}"
    )
    scale = (n / m) ** 2
    print(
        f"naive extrapolated to N={n}: ~{t_naive * scale:.0f} s and "
        f"{gram_bytes * scale / 2**30:.0f} GiB per Gram matrix (x{scale:.0f}); "
        f"ratio to streamed at full N: ~{t_naive * scale / t_stream:.0f}x"
    )


if __name__ == "__main__":
    main()
