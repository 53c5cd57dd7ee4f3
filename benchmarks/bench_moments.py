"""Moments per batch: float64 products (``dsyrk``) vs float32 products merged in float64.

The activations of bench_scale's model (a fixed random MLP 64 -> 512 x 4, ReLU; one layer here:
the last) streamed in batches into :class:`ee.StreamingPCA` with ``products="float64"`` and
``products="float32"``; prints the seconds of the accumulation (one BLAS thread; wall and this
process's CPU time, which a busy shared machine disturbs less) and the largest
difference of the explained-variance ratios (all components) from scikit-learn's float64 PCA of
the same float32 activations held in memory. Best of ``--repeats``; never asserts.

    .venv/bin/python benchmarks/bench_moments.py [--n 100000] [--batch 1024]
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_limits

from embedding_explorer import StreamingPCA

WIDTH, DEPTH, IN_DIM = 512, 4, 64


def activations(n: int, batch: int) -> list[np.ndarray]:
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    dims = [IN_DIM] + [WIDTH] * DEPTH
    for a, b in itertools.pairwise(dims):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers).eval()
    scales = torch.logspace(np.log10(3.0), -1, IN_DIM)
    g = torch.Generator().manual_seed(1)
    out = []
    with torch.inference_mode():
        for start in range(0, n, batch):
            x = torch.randn(min(batch, n - start), IN_DIM, generator=g) * scales
            out.append(model(x).numpy())
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    batches = activations(args.n, args.batch)
    reference = PCA(n_components=WIDTH, svd_solver="covariance_eigh").fit(
        np.concatenate(batches).astype(np.float64)
    )
    print(
        f"{args.n:,} x {WIDTH} float32 activations in batches of {args.batch}, one BLAS thread, "
        f"best of {args.repeats}"
    )
    for products in ("float64", "float32"):
        walls, cpus = [], []
        for _ in range(args.repeats):
            pca = StreamingPCA(WIDTH, products=products)
            with threadpool_limits(1, user_api="blas"):
                start, cpu = time.perf_counter(), time.process_time()
                for b in batches:
                    pca.partial_fit(b)
                walls.append(time.perf_counter() - start)
                cpus.append(time.process_time() - cpu)
        result = pca.finalize()
        err = np.abs(result.explained_variance_ratio - reference.explained_variance_ratio_).max()
        rel = np.abs(result.explained_variance[:10] / reference.explained_variance_[:10] - 1).max()
        print(
            f"  products={products}: {min(walls):5.2f} s wall, {min(cpus):5.2f} s CPU"
            f"   max |ratio error| {err:.1e}"
            f"   max relative error of the top-10 variances {rel:.1e}"
        )


if __name__ == "__main__":
    main()
