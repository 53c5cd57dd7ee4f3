"""PCA fit on an in-memory 200k x 512 float32 matrix: ours vs scikit-learn and the old approach.

Each method runs in a fresh subprocess so its peak memory is its own. Prints wall time, the
ratio to scikit-learn's covariance_eigh measured in the same run, peak memory above the data,
and the error of the explained-variance ratios against a float64 reference. Never asserts.

    .venv/bin/python benchmarks/bench_pca.py [--rows 200000] [--dim 512]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time

import numpy as np
import psutil

METHODS = (
    "ours",
    "sklearn_covariance_eigh",
    "sklearn_covariance_eigh_f64",
    "incremental_pca",
    "old_inmemory",
)
K = 10


def make_data(rows: int, dim: int) -> np.ndarray:
    """Low-rank structure plus noise and a large mean, as activations after a ReLU look."""
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((rows, 32)).astype(np.float32) * np.linspace(6, 1, 32, dtype=np.float32)
    mixing = rng.standard_normal((32, dim)).astype(np.float32) / np.sqrt(32)
    x = latent @ mixing + 0.5 * rng.standard_normal((rows, dim), dtype=np.float32)
    return x + 20.0


def fit(method: str, x: np.ndarray) -> np.ndarray:
    if method == "ours":
        from embedding_explorer.pca import StreamingPCA

        return StreamingPCA(K).fit(x).explained_variance_ratio_
    if method.startswith("sklearn_covariance_eigh"):
        from sklearn.decomposition import PCA

        data = x.astype(np.float64) if method.endswith("f64") else x
        return PCA(K, svd_solver="covariance_eigh").fit(data).explained_variance_ratio_
    if method == "incremental_pca":
        from sklearn.decomposition import IncrementalPCA

        return IncrementalPCA(K).fit(x).explained_variance_ratio_  # its default batch size
    if method == "old_inmemory":  # captum's explorer: a list of per-sample tensors, stacked, whitened PCA
        import torch
        from sklearn.decomposition import PCA

        samples = [torch.from_numpy(row.copy()) for row in x]
        stacked = torch.stack(samples).numpy()
        return PCA(K, whiten=True).fit(stacked).explained_variance_ratio_
    raise ValueError(method)


class PeakMemory:
    """Samples the resident memory every few milliseconds in a thread; ``extra`` is the peak
    above the memory in use when it started (the data itself), in MiB."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.base = self.process.memory_info().rss
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def extra(self) -> float:
        return (self.peak - self.base) / 2**20


def child(method: str, rows: int, dim: int) -> None:
    import sklearn.decomposition  # noqa: F401 - imported before measuring, as a user has them
    import torch  # noqa: F401

    import embedding_explorer.pca  # noqa: F401

    x = make_data(rows, dim)
    with PeakMemory() as memory:
        start = time.perf_counter()
        ratio = fit(method, x)
        seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "extra_mib": memory.extra, "ratio": ratio.tolist()}))


def reference(rows: int, dim: int) -> np.ndarray:
    """Exact float64 ratios from numpy's covariance (independent of our code)."""
    x = make_data(rows, dim).astype(np.float64)
    cov = np.cov(x, rowvar=False)
    values = np.sort(np.linalg.eigvalsh(cov))[::-1]
    return values[:K] / np.trace(cov)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--child", choices=METHODS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rows, args.dim)
        return
    ref = reference(args.rows, args.dim)
    results = {}
    for method in METHODS:
        out = subprocess.run(
            [sys.executable, __file__, "--child", method, "--rows", str(args.rows), "--dim", str(args.dim)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    base = results["sklearn_covariance_eigh"]["seconds"]
    print(f"PCA fit, {args.rows:,} x {args.dim} float32, k={K} (ratio = time / sklearn covariance_eigh)")
    print(f"{'method':<30}{'seconds':>9}{'ratio':>8}{'extra MiB':>11}{'max |ratio err|':>17}")
    for method, r in results.items():
        err = float(np.max(np.abs(np.asarray(r["ratio"]) - ref)))
        print(
            f"{method:<30}{r['seconds']:>9.2f}{r['seconds'] / base:>8.2f}{r['extra_mib']:>11.0f}{err:>17.1e}"
        )


if __name__ == "__main__":
    main()
