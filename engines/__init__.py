"""Runtime backends for the per-frame model (see base.FieldEngine) and the choice among them."""

from __future__ import annotations

from dataclasses import dataclass

from .base import FieldEngine


@dataclass
class EngineChoice:
    engine: FieldEngine
    reasons: dict[str, str]  # backend -> why it was or was not used


def select_engine(name: str = "auto", grid_size: int | None = None) -> EngineChoice:
    """The fastest available backend, or the one named."""
    from app.rig import DEFAULT_GRID_SIZE

    from .torch_engine import TorchFieldEngine

    g = grid_size or DEFAULT_GRID_SIZE
    if name in ("auto", "torch", "torch-cpu"):
        return EngineChoice(TorchFieldEngine(g), {"torch-cpu": "picked"})
    if name == "torch-cuda":
        return EngineChoice(TorchFieldEngine(g, device="cuda"), {"torch-cuda": "picked"})
    raise ValueError(f"unknown engine {name!r}")
