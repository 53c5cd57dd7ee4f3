"""Nearest neighbours of one sample and one filter's mask, on a stored run (default 50,000
samples, a 512-wide input layer): exact neighbours streamed over the stored activations, against
scikit-learn's brute force on the matrix held in memory (read once, timed apart), and against the
fast search over the layer's PCA scores; plus a filter (label, range, search) evaluated the first
time and again (kept). Checks the answers agree; prints figures, never asserts on time.

    .venv/bin/python benchmarks/bench_neighbors.py [--rows 50000] [--dim 512]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import NearestNeighbors

import embedding_explorer as ee


def timed(f):  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-neighbors"))
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.rows, args.dim, generator=g)
    rng = np.random.default_rng(0)
    metadata = pd.DataFrame(
        {"brightness": rng.uniform(0, 1, args.rows), "note": [f"item {i}" for i in range(args.rows)]}
    )
    run = ee.explore(
        None, x, ["input"], out=args.out, labels=(np.arange(args.rows) % 10).tolist(),
        metadata=metadata, n_components=10, render="none", progress=False,
    )  # fmt: skip
    layer = run["input"]
    (ids, dist), t_exact = timed(lambda: layer.neighbors(123, k=10, metric="cosine"))
    matrix, t_read = timed(lambda: np.asarray(layer.activations[...], dtype=np.float64))
    fitted = NearestNeighbors(n_neighbors=11, algorithm="brute", metric="cosine").fit(matrix)
    (d_ref, i_ref), t_sklearn = timed(lambda: fitted.kneighbors(matrix[123:124]))
    keep = i_ref[0] != 123
    assert (i_ref[0][keep][:10] == ids).all() and np.allclose(d_ref[0][keep][:10], dist)
    _, t_scores = timed(lambda: layer.neighbors(123, k=10, metric="cosine", space="scores"))
    spec = {"labels": ["3", "7"], "ranges": {"brightness": [0.2, 0.6]}, "query": "item 1"}
    kept, t_first = timed(lambda: run.select(spec))
    _, t_again = timed(lambda: run.select(spec))
    print(f"{args.rows} x {args.dim} stored activations ({args.rows * args.dim * 4 / 2**20:.0f} MiB)")
    print(f"exact neighbours, streamed:   {t_exact:.3f} s (same ids and distances as scikit-learn)")
    print(
        f"scikit-learn brute force:      {t_sklearn:.3f} s on the matrix in memory, "
        f"+ {t_read:.3f} s to read it"
    )
    print(f"neighbours on the PCA scores:  {t_scores * 1000:.1f} ms")
    print(
        f"filter (labels, range, search): {t_first:.3f} s first, {t_again * 1000:.2f} ms again; "
        f"keeps {len(kept)}"
    )


if __name__ == "__main__":
    main()
