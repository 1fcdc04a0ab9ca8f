"""Engines by name: each backend registers itself with what it needs (pyvirtualcam-style).

    @register_engine("torch-cpu", needs=needs_torch, auto_rank=40, aliases=("torch", "cpu"))
    class TorchFieldEngine(EngineLifecycle): ...

`needs` is a cheap check (nothing is built) that returns why the backend cannot run here, or
None. `auto_rank` places it in auto's order (lower first; None: only by name). `options` are
passed to the class beside the grid size, so one class can serve several names. An alias may
be shared by several backends: it resolves to the first of them (by auto rank) that can run.

The registry is a module-level dict by necessity: registration happens at import time of each
backend's module, before any object exists to hold it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .base import FieldEngine
from .errors import UnknownEngine


def _always() -> str | None:
    return None


@dataclass(frozen=True)
class EngineSpec:
    name: str
    cls: type
    needs: Callable[[], str | None] = _always
    options: dict[str, Any] = field(default_factory=dict)
    auto_rank: int | None = None
    aliases: tuple[str, ...] = ()
    measured_cpu_ms: float | None = None  # ms per frame on the CPU, for auto's reasons

    def build(self, grid_size: int | None) -> FieldEngine:
        return self.cls(grid_size, **self.options)


_ENGINES: dict[str, EngineSpec] = {}


def register_engine(name: str, *, needs: Callable[[], str | None] = _always, auto_rank: int | None = None,
                    aliases: tuple[str, ...] = (), measured_cpu_ms: float | None = None,
                    **options: Any) -> Callable[[type], type]:
    """Class decorator: `cls(grid_size, **options)` is the backend `name`. Registering a name
    again replaces it (a test or a plugin may override a built-in)."""

    def register(cls: type) -> type:
        _ENGINES[name] = EngineSpec(name, cls, needs, dict(options), auto_rank, tuple(aliases), measured_cpu_ms)
        return cls

    return register


def unregister_engine(name: str) -> None:
    _ENGINES.pop(name, None)


def engine_spec(name: str) -> EngineSpec:
    try:
        return _ENGINES[name]
    except KeyError:
        raise UnknownEngine(f"Unknown engine {name!r}.", f"Use one of: auto, {', '.join(backends())}.") from None


def backends() -> tuple[str, ...]:
    """Every registered name: auto's order first, then the by-name-only ones."""
    ranked = auto_order()
    return ranked + tuple(n for n in _ENGINES if n not in ranked)


def auto_order() -> tuple[str, ...]:
    ranked = [s for s in _ENGINES.values() if s.auto_rank is not None]
    return tuple(s.name for s in sorted(ranked, key=lambda s: s.auto_rank))


def aliases() -> dict[str, tuple[str, ...]]:
    """alias -> the backends it may mean, in auto's order."""
    order = {n: i for i, n in enumerate(backends())}
    table: dict[str, list[str]] = {}
    for spec in _ENGINES.values():
        for alias in spec.aliases:
            table.setdefault(alias, []).append(spec.name)
    return {a: tuple(sorted(names, key=order.__getitem__)) for a, names in table.items()}


def resolve(name: str) -> str:
    """A backend name, "auto", or what an alias means here; raises UnknownEngine."""
    key = (name or "auto").strip().lower()
    if key == "auto" or key in _ENGINES:
        return key
    candidates = aliases().get(key)
    if not candidates:
        raise UnknownEngine(f"Unknown engine {name!r}.", f"Use one of: auto, {', '.join(backends())}, "
                            f"or an alias ({', '.join(sorted(aliases()))}).")
    # The first that can run; when none can, the last, whose reason is then reported.
    return next((c for c in candidates if _ENGINES[c].needs() is None), candidates[-1])
