"""Argument checks shared across the package, so the same mistake reads the same everywhere."""

from __future__ import annotations

from typing import Any

import numpy as np


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int, or a ValueError naming the argument (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer")
    return int(value)


def quantile(value: Any, name: str = "q") -> float:
    """``value`` as a float in [0, 1], or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}={value!r} must be a quantile between 0 and 1")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name}={value!r} must be a quantile between 0 and 1")
    return float(value)
