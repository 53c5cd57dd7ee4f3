"""Analyses over finished runs: associations with labels and metadata, cross-layer and
cross-model correlation of components, and CKA."""

from __future__ import annotations

from .associations import association, extreme_makeup
from .cka import cka, cka_matrix
from .compare import ModelComparison, compare_models
from .correlation import pc_correlation

__all__ = [
    "ModelComparison",
    "association",
    "cka",
    "cka_matrix",
    "compare_models",
    "extreme_makeup",
    "pc_correlation",
]
