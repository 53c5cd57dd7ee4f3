"""The A/B loop of the extraction benchmarks: the bare forward loop and ``ee.explore`` alternating
in one process, the ratios of the interleaved pairs, the load, and an optional profile."""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn

import embedding_explorer as ee

LEAN = {"input_stats": False, "outputs": None}  # --lean: neither recorded (for reference)


def ratios(baseline_s: list[float], candidate_s: list[float]) -> str:
    """The per-repeat ratios of interleaved (baseline, candidate) pairs: their median and range."""
    r = sorted(c / b for b, c in zip(baseline_s, candidate_s, strict=True))
    return f"paired ratios median {statistics.median(r):.2f}x (range {r[0]:.2f}-{r[-1]:.2f}x)"


def load() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews every timing)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def bare(model: nn.Module, loader: Iterable[Any]) -> float:
    """Seconds of the bare forward loop over ``loader``'s ``(x, y)`` batches."""
    start = time.perf_counter()
    with torch.inference_mode():
        for x, _ in loader:
            model(x)
    return time.perf_counter() - start


def compare(
    model: nn.Module,
    loader: Iterable[Any],
    explore: Callable[[Path], None],
    *,
    repeats: int,
    profile: Path | None,
) -> tuple[list[float], list[float], dict[str, float]]:
    """``repeats`` interleaved pairs (bare loop, ``explore(out)``) after one warm-up pass: the
    seconds of each, and the first run's timings; with ``profile``, a cProfile of one more
    ``explore`` written there (its top lines printed)."""
    bare(model, loader)  # warm up
    times_bare, times_ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            times_bare.append(bare(model, loader))
            start = time.perf_counter()
            explore(Path(tmp) / f"run{i}")
            times_ours.append(time.perf_counter() - start)
        timings = ee.open_run(Path(tmp) / "run0").manifest["timings"]
        if profile is not None:
            profiler = cProfile.Profile()
            profiler.runcall(explore, Path(tmp) / "profiled")
            profiler.dump_stats(profile)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return times_bare, times_ours, timings


def report(
    n: int,
    times_bare: list[float],
    times_ours: list[float],
    timings: dict[str, float],
    *,
    lean: bool,
    goal: float,
) -> None:
    """The lines both benchmarks print: paired ratios and load, best times, the explore phases."""
    b, o = min(times_bare), min(times_ours)
    print(f"  {ratios(times_bare, times_ours)}; {'lean' if lean else 'defaults'}, load {load()}")
    print(f"  bare forward loop  {b:6.2f} s  {n / b:8.0f} samples/s")
    print(f"  ee.explore         {o:6.2f} s  {n / o:8.0f} samples/s   ratio {o / b:.2f}x", end="")
    print(f" (goal <= {goal:.2f}x)")
    t = timings
    print(f"  of which: extract {t['extract_s']:.2f} s, PCA {t['pca_s']:.2f} s, scores {t['scores_s']:.2f} s")
