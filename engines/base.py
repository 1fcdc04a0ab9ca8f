"""The interface every runtime backend implements for the per-frame model."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class FieldEngine(Protocol):
    """Runs the WarpField model: (tri_index, tri_weight, displacement) -> grid (B, G, G, 2)."""

    name: str

    def __call__(self, tri_index: np.ndarray, tri_weight: np.ndarray, displacement: np.ndarray) -> np.ndarray: ...
