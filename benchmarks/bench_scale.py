"""How a whole run scales with N: wall time (linear) and peak resident memory (flat) of ``ee.explore``.

A synthetic model (a fixed random MLP 64 -> 512 -> 512 -> 512 -> 512, four 512-wide layers) over
a synthetic map-style Dataset that generates each block of inputs from its own seed when it is
read, so neither the inputs nor the activations of all N samples ever sit in memory unless a
method keeps them. Each method and N runs in a fresh subprocess (one torch and BLAS thread by
default, steadier on a shared machine), so its peak RSS (``ru_maxrss``) is its own:

- ``forward``: the bare forward loop over the DataLoader (the floor: what the model itself costs);
- ``ours``: ``ee.explore`` with the four layers into a temporary run directory (float32
  activations on disk, exact PCA, scores, labels; the run is deleted after it is measured);
- ``ours_float16``: the same with ``storage_dtype="float16"``;
- ``incremental_pca``: scikit-learn's IncrementalPCA, ``partial_fit`` per batch per layer (fit
  only: no stored activations, no scores);
- ``old_inmemory``: the old approach: a list of per-sample tensors per layer, ``torch.stack``,
  scikit-learn ``PCA(whiten=True).fit_transform``.

A method whose projected peak (its measured bytes per sample times N, or at least the N x D x 4
bytes it holds) exceeds ``--mem-cap-gib`` is not started at that N: "would need X GiB" is printed
instead. A parent thread also stops any child whose RSS passes the cap. Prints a table and saves
two panels (wall time and peak RSS against N) to ``--plot``; never asserts on time.

    .venv/bin/python benchmarks/bench_scale.py [--sizes 10000,100000,1000000] [--plot docs/scaling.png]
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
import psutil
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

IN_DIM, WIDTH, N_LAYERS = 64, 512, 4
LAYERS = [str(2 * i + 1) for i in range(N_LAYERS)]  # the four ReLU outputs of the Sequential
BATCH = 1024
K = 10
METHODS = ("forward", "ours", "ours_float16", "incremental_pca", "old_inmemory")
BASELINES = ("incremental_pca", "old_inmemory")  # the only ones skipped for time
GiB = 2**30
MiB = 2**20


def make_model() -> nn.Sequential:
    """A fixed random MLP, 64 -> 512 -> 512 -> 512 -> 512, ReLU after each layer (seed 0)."""
    torch.manual_seed(0)
    dims = [IN_DIM] + [WIDTH] * N_LAYERS
    modules: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        modules += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*modules)


class SyntheticData(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """A map-style data set of N samples generated on demand: sample i comes from the block of
    ``BATCH`` samples seeded by ``i // BATCH`` (anisotropic Gaussian inputs, scales 3 down to 0.1;
    four labels from the signs of the two leading inputs). Nothing of size N is ever held, and
    reading it again gives the same values, so a run over it can be fingerprinted and resumed."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed = n, seed

    def __len__(self) -> int:
        return self.n

    def block(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + b)
        size = min(BATCH, self.n - b * BATCH)
        x = torch.randn(size, IN_DIM, generator=g) * torch.linspace(3.0, 0.1, IN_DIM)
        return x, (x[:, 0] > 0).long() + 2 * (x[:, 1] > 0).long()

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        x, y = self.block(i // BATCH)
        return x[i % BATCH], y[i % BATCH]

    def __getitems__(self, ids: list[int]) -> list[tuple[Any, Any]]:
        """A DataLoader's whole batch at once: one generated block per block touched."""
        blocks: dict[int, tuple[Any, Any]] = {}
        out = []
        for i in ids:
            x, y = blocks.get(i // BATCH) or blocks.setdefault(i // BATCH, self.block(i // BATCH))
            out.append((x[i % BATCH], y[i % BATCH]))
        return out


def make_data(n: int) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
    """The synthetic data set behind a DataLoader of ``BATCH``-sample batches."""
    return DataLoader(SyntheticData(n), batch_size=BATCH, shuffle=False)


def hooked_outputs(model: Any) -> dict[str, list[Any]]:
    """Forward hooks that put each layer's output of the current batch in a dict of lists."""
    seen: dict[str, list[Any]] = {name: [] for name in LAYERS}
    modules = dict(model.named_modules())
    for name in LAYERS:
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: seen[name].append(out))
    return seen


def run_method(method: str, n: int, workdir: Path, keep: bool = False) -> dict[str, Any]:
    """Runs one method over N samples; returns its first layer's ratios and what it stored
    (``keep``: leave ours's run in ``workdir`` for the server check)."""
    model = make_model().eval()
    data = make_data(n)
    if method in ("ours", "ours_float16"):
        import embedding_explorer as ee

        dtype: Literal["float32", "float16"] = "float16" if method == "ours_float16" else "float32"
        out = workdir / f"run-{method}-{n}"
        run = ee.explore(
            model, data, LAYERS, out=out, name="scale", n_components=K, progress=False, storage_dtype=dtype
        )
        ratio = run[LAYERS[0]].explained_variance_ratio
        disk = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        if not keep:
            shutil.rmtree(out)
        timings = run.manifest["timings"]
        return {"ratio": np.asarray(ratio).tolist(), "disk_bytes": disk, "run": str(out), "timings": timings}
    seen = hooked_outputs(model)
    with torch.inference_mode():
        if method == "forward":
            for x, _y in data:
                model(x)
                for outs in seen.values():
                    outs.clear()
            return {"ratio": None}
        if method == "incremental_pca":
            from sklearn.decomposition import IncrementalPCA

            fits = {name: IncrementalPCA(K) for name in LAYERS}
            for x, _y in data:
                model(x)
                for name, outs in seen.items():
                    fits[name].partial_fit(outs.pop().numpy())
            return {"ratio": fits[LAYERS[0]].explained_variance_ratio_.tolist()}
        if method == "old_inmemory":
            from sklearn.decomposition import PCA

            rows: dict[str, list[Any]] = {name: [] for name in LAYERS}
            labels: list[Any] = []
            for x, y in data:
                model(x)
                for name, outs in seen.items():
                    rows[name].extend(row.clone() for row in outs.pop())
                labels.extend(y.tolist())
            fits = {}
            for name in LAYERS:
                stacked = torch.stack(rows[name]).numpy()
                pca = PCA(K, whiten=True)
                pca.fit_transform(stacked)
                fits[name] = pca
                del stacked
            return {"ratio": fits[LAYERS[0]].explained_variance_ratio_.tolist()}
    raise ValueError(method)


def serve_check(path: Path, requests: int) -> dict[str, Any]:
    """p50/p95 of the UI's heavy endpoints on a finished run, as ``bench_server.py`` measures
    them (HTTP over loopback, after one warm-up request each)."""
    import random

    import httpx

    from embedding_explorer.server import serve

    sys.path.insert(0, str(Path(__file__).parent))
    from bench_server import measure

    import embedding_explorer as ee

    run = ee.open_run(path)
    handle = serve([run], port=0, block=False)
    base = f"{handle.url.rstrip('/')}/api/runs/{run.name}/layers/{LAYERS[-1]}"
    rng = random.Random(0)
    endpoints = {
        "gallery (n=8, all PCs)": [f"{base}/gallery?n=8"] * requests,
        "probe (quantile, n=8)": [
            f"{base}/components/0/quantile?q={rng.random():.4f}&n=8" for _ in range(requests)
        ],
        "histogram (30 bins, by label)": [f"{base}/components/1/histogram?bins=30&by_label=true"] * requests,
        "scores (2 PCs, binary)": [f"{base}/scores?components=0,1"] * requests,
    }
    try:
        with httpx.Client(timeout=60) as client:
            return {name: measure(client, urls) for name, urls in endpoints.items()}
    finally:
        handle.stop()


def child(method: str, n: int, workdir: Path, threads: int, keep: bool = False) -> None:
    import sklearn.decomposition  # noqa: F401 - imported before measuring, as a user has them
    from threadpoolctl import threadpool_limits

    import embedding_explorer  # noqa: F401

    torch.set_num_threads(threads)
    base = psutil.Process().memory_info().rss
    # numpy's BLAS gets as many threads as torch (scikit-learn's SVDs would otherwise spin two
    # OpenBLAS threads on cores other processes use, and swing by 10x from run to run)
    with threadpool_limits(threads, user_api="blas"):
        start = time.perf_counter()
        result = run_method(method, n, workdir, keep)
        seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({**result, "seconds": seconds, "peak_bytes": peak, "base_bytes": base}))


def spawn(method: str, n: int, workdir: Path, args: argparse.Namespace, keep: bool = False) -> dict[str, Any]:
    """One method in a fresh process; stopped (and reported so) if its RSS passes the cap."""
    cap_bytes = args.mem_cap_gib * GiB
    command = [sys.executable, __file__, "--child", method, "--n", str(n), "--workdir", str(workdir)]
    proc = subprocess.Popen(
        [*command, "--threads", str(args.threads)] + (["--keep"] if keep else []),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = threading.Event()

    def watch() -> None:
        ps = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                if ps.memory_info().rss > cap_bytes:
                    killed.set()
                    proc.kill()
                    return
            except psutil.NoSuchProcess:
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    stdout, stderr = proc.communicate()
    watcher.join()
    if killed.is_set():
        return {"status": "stopped", "why": f"passed the {cap_bytes / GiB:.1f} GiB cap"}
    if proc.returncode != 0:
        return {"status": "failed", "why": stderr.strip().splitlines()[-1] if stderr.strip() else "?"}
    return {"status": "ok", **json.loads(stdout.strip().splitlines()[-1])}


def projected_peak(method: str, n: int, done: dict[tuple[str, int], dict[str, Any]]) -> float:
    """Peak bytes expected at N: a line through the two largest measured sizes (at least the
    N x D x 4 bytes of all layers for the in-memory approach)."""
    points = sorted(
        (m_n, r["peak_bytes"]) for (m, m_n), r in done.items() if m == method and "peak_bytes" in r
    )
    floor = n * N_LAYERS * WIDTH * 4 if method == "old_inmemory" else 0.0
    if len(points) < 2:
        return float(floor)
    (n0, p0), (n1, p1) = points[-2], points[-1]
    slope = max(0.0, (p1 - p0) / (n1 - n0))
    return max(float(floor), float(p1 + slope * (n - n1)))


def print_table(sizes: list[int], results: dict[tuple[str, int], dict[str, Any]]) -> None:
    header = f"{'N':>10}  {'method':<16}{'wall s':>9}{'samples/s':>11}{'peak RSS MiB':>14}{'vs ours':>9}"
    print(header + f"{'disk MiB':>10}{'max |ratio - ours|':>20}")
    for n in sizes:
        ours = results.get(("ours", n), {})
        for method in METHODS:
            r = results.get((method, n))
            if r is None:
                continue
            if r["status"] != "ok":
                print(f"{n:>10,}  {method:<16}{r['why']}")
                continue
            ratio = f"{r['seconds'] / ours['seconds']:.2f}x" if ours.get("status") == "ok" else "-"
            disk = f"{r['disk_bytes'] / MiB:,.0f}" if "disk_bytes" in r else "-"
            err = "-"
            if r.get("ratio") is not None and ours.get("ratio") is not None:
                err = f"{np.max(np.abs(np.asarray(r['ratio']) - np.asarray(ours['ratio']))):.1e}"
            print(
                f"{n:>10,}  {method:<16}{r['seconds']:>9.1f}{n / r['seconds']:>11,.0f}"
                f"{r['peak_bytes'] / MiB:>14,.0f}{ratio:>9}{disk:>10}{err:>20}"
            )


def plot(sizes: list[int], results: dict[tuple[str, int], dict[str, Any]], path: Path, note: str) -> None:
    """Two panels, log-x: wall time and peak RSS against N; projections dashed, hollow."""
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed (the dev extra has it): no plot")
        return

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {
        "forward": ("bare forward pass", "#999999", "x"),
        "ours": ("ee.explore, float32", "#1f77b4", "o"),
        "ours_float16": ("ee.explore, float16", "#17becf", "s"),
        "incremental_pca": ("IncrementalPCA (fit only)", "#ff7f0e", "^"),
        "old_inmemory": ("old: per-sample tensors + PCA", "#d62728", "D"),
    }
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method, (label, color, marker) in style.items():
        pts = [(n, results[(method, n)]) for n in sizes if results.get((method, n), {}).get("status") == "ok"]
        if not pts:
            continue
        ns = [n for n, _ in pts]
        ax_t.plot(ns, [r["seconds"] for _, r in pts], marker=marker, color=color, label=label)
        ax_m.plot(ns, [r["peak_bytes"] / GiB for _, r in pts], marker=marker, color=color, label=label)
        slow = [
            (n, results[(method, n)])
            for n in sizes
            if results.get((method, n), {}).get("status") == "too_long"
        ]
        if slow:
            xs = [ns[-1]] + [n for n, _ in slow]
            ys = [pts[-1][1]["seconds"]] + [r["need_seconds"] for _, r in slow]
            ax_t.plot(xs, ys, linestyle="--", color=color, marker=marker, markerfacecolor="none")
            for n, r in slow:
                ax_t.annotate(
                    f"~{r['need_seconds']:,.0f} s, not run",
                    (n, r["need_seconds"]),
                    textcoords="offset points",
                    xytext=(-95, -3),
                    fontsize=8,
                    color=color,
                )
        need = [
            (n, results[(method, n)])
            for n in sizes
            if results.get((method, n), {}).get("status") == "skipped"
        ]
        if need:
            xs = [ns[-1]] + [n for n, _ in need]
            ys = [pts[-1][1]["peak_bytes"] / GiB] + [r["need_bytes"] / GiB for _, r in need]
            ax_m.plot(xs, ys, linestyle="--", color=color, marker=marker, markerfacecolor="none")
            for n, r in need:
                ax_m.annotate(
                    f"would need {r['need_bytes'] / GiB:.0f} GiB",
                    (n, r["need_bytes"] / GiB),
                    textcoords="offset points",
                    xytext=(-110, 0),
                    fontsize=8,
                    color=color,
                )
    ax_t.set(
        xscale="log", yscale="log", xlabel="samples N", ylabel="wall time (s)", title="Wall time: linear in N"
    )
    ax_m.set(
        xscale="log",
        xlabel="samples N",
        ylabel="peak RSS (GiB)",
        title="Peak resident memory (RSS)",
    )
    ax_m.set_ylim(bottom=0)
    for ax in (ax_t, ax_m):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks(sizes, [f"{n:,}" for n in sizes])
    ax_t.legend(fontsize=8)
    fig.suptitle(f"{N_LAYERS} layers x {WIDTH} dims, synthetic MLP; {note}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"plot saved to {path}")


def measure_all(sizes: list[int], methods: list[str], args: argparse.Namespace) -> dict[tuple[str, int], Any]:
    """Every method at every N, smallest N first, each in a fresh process; skips what would
    pass the memory cap or the time limit by the projection from the sizes already measured."""
    cap = args.mem_cap_gib * GiB
    results: dict[tuple[str, int], dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-scale-", dir=args.workdir) as tmp:
        for n in sizes:
            for method in methods:
                need, seconds = projected_peak(method, n, results), projected_seconds(method, n, results)
                if need > cap:
                    why = f"would need {need / GiB:.1f} GiB (> the {args.mem_cap_gib:g} GiB cap): not run"
                    results[(method, n)] = {"status": "skipped", "need_bytes": need, "why": why}
                elif seconds > args.max_seconds and method in BASELINES:
                    why = (
                        f"would take about {seconds:,.0f} s (linear in N; > {args.max_seconds:g} s): not run"
                    )
                    results[(method, n)] = {"status": "too_long", "need_seconds": seconds, "why": why}
                else:
                    keep = args.serve and method == "ours" and n in (sizes[0], sizes[-1])
                    results[(method, n)] = spawn(method, n, Path(tmp), args, keep)
                    if keep and results[(method, n)]["status"] == "ok":
                        results[("serve", n)] = serve_in_child(
                            Path(results[(method, n)]["run"]), args.requests
                        )
                        shutil.rmtree(results[(method, n)]["run"])
                r = results[(method, n)]
                shown = (
                    f"{r['seconds']:.1f} s, {r['peak_bytes'] / MiB:,.0f} MiB"
                    if r["status"] == "ok"
                    else r["why"]
                )
                print(f"  {method} N={n:,}: {shown}", flush=True)
    return results


def serve_in_child(run: Path, requests: int) -> dict[str, Any]:
    """The server check in a fresh process, so the extraction's memory is not counted there."""
    out = subprocess.run(
        [sys.executable, __file__, "--serve-child", str(run), "--requests", str(requests)],
        capture_output=True,
        text=True,
        check=True,
    )
    return {"status": "ok", **json.loads(out.stdout.strip().splitlines()[-1])}


def projected_seconds(method: str, n: int, done: dict[tuple[str, int], dict[str, Any]]) -> float:
    """Seconds expected at N: the largest measured size's time, scaled linearly."""
    points = sorted((m_n, r["seconds"]) for (m, m_n), r in done.items() if m == method and "seconds" in r)
    return float(points[-1][1] * n / points[-1][0]) if points else 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--mem-cap-gib", type=float, default=6.0, help="never start or keep a child above this"
    )
    parser.add_argument(
        "--max-seconds", type=float, default=300.0, help="skip a baseline projected to run longer"
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where runs are written (then deleted)")
    parser.add_argument("--plot", default="docs/scaling.png", help="the PNG; '' for none")
    parser.add_argument("--json", type=Path, default=None, help="also save the raw results here")
    parser.add_argument(
        "--replot", type=Path, nargs="+", default=None, help="table and plot from --json files (merged)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch and BLAS threads per child (1: steadier on a shared machine)",
    )
    parser.add_argument(
        "--serve", action="store_true", help="time the server on ours's smallest and largest runs"
    )
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--child", choices=METHODS)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--serve-child", type=Path)
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.workdir, args.threads, args.keep)
        return
    if args.serve_child:
        print(json.dumps(serve_check(args.serve_child, args.requests)))
        return
    if args.replot:
        results = {}
        for path in args.replot:  # a later file's measurement replaces an earlier one's
            for k, r in json.loads(path.read_text()).items():
                if r["status"] == "ok" or (k.split(":")[0], int(k.split(":")[1])) not in results:
                    results[(k.split(":")[0], int(k.split(":")[1]))] = r
        for (method, n), r in results.items():  # projections from the merged measurements
            if r["status"] == "too_long":
                measured = {key: v for key, v in results.items() if key[1] < n}
                r["need_seconds"] = projected_seconds(method, n, measured)
                r["why"] = f"would take about {r['need_seconds']:,.0f} s (linear in N): not run"
        sizes = sorted({n for _, n in results})
    else:
        sizes = sorted(int(s) for s in args.sizes.split(","))
        methods = [m for m in METHODS if m in args.methods.split(",")]
        results = measure_all(sizes, methods, args)
        if args.json:
            args.json.write_text(json.dumps({f"{m}:{n}": r for (m, n), r in results.items()}, indent=1))
    print()
    print_table(sizes, results)
    for n in sizes:  # issue 16's goal: ours at least as fast as the in-memory approach
        ours, old, bare = (results.get((m, n), {}) for m in ("ours", "old_inmemory", "forward"))
        if ours.get("status") == "ok" and old.get("status") == "ok":
            versus_bare = f", {ours['seconds'] / bare['seconds']:.2f}x the bare forward pass" if bare else ""
            print(
                f"N={n:,}: ours / old_inmemory = {ours['seconds'] / old['seconds']:.2f} "
                f"(goal <= 1){versus_bare}"
            )
    ok = sorted((n, r["peak_bytes"]) for (m, n), r in results.items() if m == "ours" and r["status"] == "ok")
    if len(ok) >= 2:
        (n0, p0), (n1, p1) = ok[0], ok[-1]
        print(
            f"\nours: peak RSS {p0 / MiB:,.0f} MiB at N={n0:,} and {p1 / MiB:,.0f} MiB at N={n1:,} "
            f"({n1 // n0}x the samples): {(p1 - p0) / (n1 - n0):.0f} bytes per extra sample "
            f"(the activations alone are {N_LAYERS * WIDTH * 4:,} bytes per sample)"
        )
    for (method, n), r in sorted(results.items()):
        if method.startswith("ours") and "timings" in r:
            t = r["timings"]
            print(
                f"{method} N={n:,}: extraction {t['extract_s']:.1f} s, PCA {t['pca_s']:.1f} s, "
                f"scores {t['scores_s']:.1f} s (total in explore {t['total_s']:.1f} s)"
            )
    served = sorted((n, r) for (m, n), r in results.items() if m == "serve")
    for n, r in served:
        print(
            f"\nserver on the N={n:,} run (layer {LAYERS[-1]!r}; {args.requests} requests after one warm-up)"
        )
        print(f"{'endpoint':<32}{'first ms':>10}{'p50 ms':>9}{'p95 ms':>9}")
        for name, (cold, p50, p95) in ((k, v) for k, v in r.items() if k != "status"):
            print(f"{name:<32}{cold:>10.1f}{p50:>9.1f}{p95:>9.1f}")
    if args.plot:
        plot(
            sizes,
            results,
            Path(args.plot),
            f"{args.threads} thread(s) per process, shared 2-core machine",
        )


if __name__ == "__main__":
    main()
