"""What the A/B benchmarks print besides their timings: the ratios of interleaved pairs and the load."""

from __future__ import annotations

import os
import statistics


def ratios(baseline_s: list[float], candidate_s: list[float]) -> str:
    """The per-repeat ratios of interleaved (baseline, candidate) pairs: their median and range."""
    r = sorted(c / b for b, c in zip(baseline_s, candidate_s, strict=True))
    return f"paired ratios median {statistics.median(r):.2f}x (range {r[0]:.2f}-{r[-1]:.2f}x)"


def load() -> str:
    """The 1, 5 and 15 minute load averages (other work on the machine skews every timing)."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())
