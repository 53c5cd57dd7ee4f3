"""The A/B loop of the extraction benchmarks: the bare forward loop and ``ee.explore`` alternating
in one process, the ratios of the interleaved pairs, the load, and an optional profile.

Each repeat also times the bare loop inside :func:`embedding_explorer.heap.reused_heap`, the
heap ``explore`` extracts in: against the plain loop a ratio says what a user sees (``explore``'s
forward passes no longer page in their activations every batch, so it can beat the loop); against
that one it is ``explore``'s own overhead."""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import embedding_explorer as ee
from embedding_explorer import heap

# --lean: the streaming pipeline alone, without the per-image work the bare loop does not do
# (no thumbnails, so no input statistics, and no model outputs), for reference
LEAN = {"render": "none", "input_stats": False, "outputs": None}


def ratios(baseline_s: list[float], candidate_s: list[float]) -> str:
    """The per-repeat ratios of interleaved (baseline, candidate) pairs: their median and range."""
    r = sorted(c / b for b, c in zip(baseline_s, candidate_s, strict=True))
    return f"paired ratios median {statistics.median(r):.2f}x (range {r[0]:.2f}-{r[-1]:.2f}x)"


def load() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews every timing)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def best_seconds(fn: Callable[[], Any], repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bare(model: nn.Module, loader: Iterable[Any]) -> float:
    """Seconds of the bare forward loop over ``loader``'s ``(x, y)`` batches."""
    start = time.perf_counter()
    with torch.inference_mode():
        for x, _ in loader:
            model(x)
    return time.perf_counter() - start


@dataclass
class Times:
    """Seconds of each repeat: the plain bare loop, the bare loop in explore's heap, explore."""

    bare: list[float] = field(default_factory=list)
    bare_reused: list[float] = field(default_factory=list)
    ours: list[float] = field(default_factory=list)


def compare(
    model: nn.Module,
    loader: Iterable[Any],
    explore: Callable[[Path], None],
    *,
    repeats: int,
    profile: Path | None,
) -> tuple[Times, dict[str, float]]:
    """``repeats`` interleaved triples (bare loop, bare loop in :func:`heap.reused_heap`,
    ``explore(out)``) after one warm-up pass: the seconds of each, and the first run's timings;
    with ``profile``, a cProfile of one more ``explore`` written there (its top lines printed)."""
    bare(model, loader)  # warm up
    times = Times()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            times.bare.append(bare(model, loader))
            with heap.reused_heap():
                times.bare_reused.append(bare(model, loader))
            start = time.perf_counter()
            explore(Path(tmp) / f"run{i}")
            times.ours.append(time.perf_counter() - start)
        timings = ee.open_run(Path(tmp) / "run0").manifest["timings"]
        if profile is not None:
            profiler = cProfile.Profile()
            profiler.runcall(explore, Path(tmp) / "profiled")
            profiler.dump_stats(profile)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    return times, timings


def report(n: int, times: Times, timings: dict[str, float], *, lean: bool, goal: float) -> None:
    """The lines both benchmarks print: paired ratios and load, best times, the explore phases."""
    b, r, o = min(times.bare), min(times.bare_reused), min(times.ours)
    setting = "lean" if lean else "defaults"
    print(f"  against the plain loop:   {ratios(times.bare, times.ours)}; {setting}, load {load()}")
    print(f"  against explore's heap:   {ratios(times.bare_reused, times.ours)} (explore's own overhead)")
    print(f"  bare forward loop           {b:6.2f} s  {n / b:8.0f} samples/s")
    print(f"  bare loop, explore's heap   {r:6.2f} s  {n / r:8.0f} samples/s")
    print(f"  ee.explore                  {o:6.2f} s  {n / o:8.0f} samples/s   ratio {o / b:.2f}x", end="")
    print(f", {o / r:.2f}x (goal <= {goal:.2f}x)")
    t = timings
    print(f"  of which: extract {t['extract_s']:.2f} s, PCA {t['pca_s']:.2f} s, scores {t['scores_s']:.2f} s")
