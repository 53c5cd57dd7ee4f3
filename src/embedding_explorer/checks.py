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


def port(value: Any, name: str = "port") -> int:
    """``value`` as a TCP port in 0..65535 (0: any free port), or a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value <= 65535:
        raise ValueError(f"{name}={value!r} must be a port between 0 and 65535 (0: any free port)")
    return int(value)


def run_name(value: Any, name: str = "name") -> str:
    """``value`` as a run name: one folder name, never a path (no separator, not '.' or '..')."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}={value!r} must be a non-empty string")
    if any(sep in value for sep in ("/", "\\", "\0")) or value in (".", "..") or value.startswith(".."):
        raise ValueError(
            f"{name}={value!r} is a path, not a name: runs are saved under runs/<{name}>, so it may not "
            "contain '/', '\\' or '..'; pass out= to choose the folder"
        )
    return value
