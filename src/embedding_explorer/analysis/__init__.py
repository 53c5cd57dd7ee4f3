"""Analyses over finished runs: associations with labels and metadata, cross-layer and
cross-model correlation of components, and CKA."""

from __future__ import annotations

from .associations import association, extreme_makeup
from .cka import cka, cka_matrix
from .compare import ModelComparison, compare_models
from .correlation import pc_correlation
from .datasets import DatasetComparison, compare_datasets
from .neighbors import knn_overlap, neighbor_overlap

__all__ = [
    "DatasetComparison",
    "ModelComparison",
    "association",
    "cka",
    "cka_matrix",
    "compare_datasets",
    "compare_models",
    "extreme_makeup",
    "knn_overlap",
    "neighbor_overlap",
    "pc_correlation",
]
