"""Per-avatar rig tensors kept on an engine's device, shared by every engine.

The rig arrays (tri_index, tri_weight) are constant per avatar and per set of moving faces, so
an engine uploads them once and reuses them while the caller passes the same arrays. The key is
the arrays' identity: the cache holds a reference to each array it keys on, so an id cannot be
reused by another array while its entry lives.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Generic, TypeVar

import numpy as np

T = TypeVar("T")

# A cast of N faces alternates between a few sets of moving faces (each its own batched rig
# arrays, see app.puppeteer); a handful of entries keeps those uploaded without growing.
DEFAULT_ENTRIES = 4


class RigCache(Generic[T]):
    """upload(tri_index, tri_weight) -> device tensors, memoised on the arrays' identity (LRU)."""

    def __init__(self, upload: Callable[[np.ndarray, np.ndarray], T], entries: int = DEFAULT_ENTRIES) -> None:
        self._upload = upload
        self._entries = entries
        self._cache: OrderedDict[tuple[int, int], tuple[T, np.ndarray, np.ndarray]] = OrderedDict()

    def get(self, tri_index: np.ndarray, tri_weight: np.ndarray) -> T:
        key = (id(tri_index), id(tri_weight))
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit[0]
        tensors = self._upload(tri_index, tri_weight)
        self._cache[key] = (tensors, tri_index, tri_weight)
        while len(self._cache) > self._entries:
            self._cache.popitem(last=False)
        return tensors

    def __len__(self) -> int:
        return len(self._cache)

    def clear(self) -> None:
        """Drops every device tensor (the engine's `close`)."""
        self._cache.clear()
