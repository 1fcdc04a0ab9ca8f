"""The interface every runtime backend implements for the per-frame model, and its lifecycle.

Polygraphy-style: an engine allocates on construction, frees on `close()`, and is a context
manager, so `with select_engine("auto").engine as engine: ...` frees its device memory on exit.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class FieldEngine(Protocol):
    """Runs the WarpField model: (tri_index, tri_weight, displacement) -> grid (B, G, G, 2)."""

    name: str
    max_batch: int | None  # the most faces one call takes; None: no limit

    def __call__(self, tri_index: np.ndarray, tri_weight: np.ndarray, displacement: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...

    def __enter__(self) -> "FieldEngine": ...

    def __exit__(self, *exc: object) -> None: ...


class EngineLifecycle:
    """Mixin: context-manager use on top of the engine's own `close()` (idempotent by contract)."""

    max_batch: int | None = None

    def close(self) -> None:  # pragma: no cover - every engine overrides it
        pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def run_batched(engine: FieldEngine, tri_index: np.ndarray, tri_weight: np.ndarray,
                displacement: np.ndarray) -> np.ndarray:
    """`engine(...)` for any number of faces: split into calls of at most `engine.max_batch`
    (a TensorRT profile has a fixed maximum; the others take any batch in one call)."""
    limit = getattr(engine, "max_batch", None)
    b = displacement.shape[0]
    if not limit or b <= limit:
        return engine(tri_index, tri_weight, displacement)
    return np.concatenate([engine(tri_index[i:i + limit], tri_weight[i:i + limit], displacement[i:i + limit])
                           for i in range(0, b, limit)])
