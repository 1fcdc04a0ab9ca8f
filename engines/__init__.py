"""Runtime backends for the per-frame model (see base.FieldEngine) and the choice among them.

    select_engine(name="auto", grid_size=None) -> EngineChoice(engine, reasons)
    describe_choice(choice) -> str          one line for the CLI / GUI
    backends(), auto_order()                the registered names, and auto's preference order
    register_engine(name, needs=..., ...)   a new backend: one decorated class (see registry.py)

`auto` takes the first backend of auto's order that is available and starts: tensorrt >
onnxruntime-cuda > torch-cuda > torch-cpu > onnxruntime-cpu (the CPU pair in the order measured
on a CPU, see torch_engine.py). Naming a backend forces it; an unavailable one raises
EngineUnavailable, a PuppetCamError that says why and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

# The built-in backends register themselves on import; their modules import torch,
# onnxruntime or TensorRT only when an engine is built.
from . import onnxruntime_engine, tensorrt_engine, torch_engine  # noqa: F401
from .base import EngineLifecycle, FieldEngine, run_batched
from .errors import EngineUnavailable, UnknownEngine
from .needs import GPU_INSTALL
from .registry import (EngineSpec, aliases, auto_order, backends, engine_spec, register_engine, resolve,
                       unregister_engine)

log = logging.getLogger("puppetcam.engines")


@dataclass
class EngineChoice:
    engine: FieldEngine
    reasons: dict[str, str]  # backend -> why it was or was not used

    def summary(self) -> str:
        return describe_choice(self)


def unavailable_reason(backend: str) -> str | None:
    """Why `backend` cannot run here (cheap checks, nothing is built), or None if it can."""
    return engine_spec(backend).needs()


def build_engine(backend: str, grid_size: int | None = None) -> FieldEngine:
    """The backend by its registered name, built without checks (see select_engine for those)."""
    return engine_spec(backend).build(grid_size)


def _slower_than(backend: str, picked: str) -> str:
    mine, theirs = engine_spec(backend).measured_cpu_ms, engine_spec(picked).measured_cpu_ms
    if mine is not None and theirs is not None:
        return (f"available, but slower than {picked} on this kind of CPU "
                f"({mine:g} vs {theirs:g} ms per frame measured)")
    return f"available, but {picked} is preferred (faster)"


def _forced(name: str, key: str, grid_size: int | None) -> EngineChoice:
    why = unavailable_reason(key)
    if why is not None:
        raise EngineUnavailable(key, why, "Use --engine auto, or set up the GPU backends as docs/engines.md says.")
    engine = build_engine(key, grid_size)
    return EngineChoice(engine, {key: "picked: asked for by name", **{
        b: f"not used: --engine {name} was asked for" for b in auto_order() if b != key}})


def select_engine(name: str = "auto", grid_size: int | None = None) -> EngineChoice:
    """The fastest available backend ("auto"), or the one named (raises EngineUnavailable when
    it cannot run here). `reasons` says, for every backend, why it was or was not used."""
    key = resolve(name)
    if key != "auto":
        return _forced(name, key, grid_size)
    reasons: dict[str, str] = {}
    engine = picked = None
    for backend in auto_order():
        why = unavailable_reason(backend)
        if picked is not None:
            reasons[backend] = why or _slower_than(backend, picked)
            continue
        if why is not None:
            reasons[backend] = why
            continue
        try:
            engine = build_engine(backend, grid_size)
        except Exception as exc:  # noqa: BLE001 - auto falls through to the next backend, and says why
            log.warning("engine %s could not start: %s", backend, exc)
            reasons[backend] = f"failed to start: {exc}"
            continue
        picked = backend
        reasons[backend] = "picked: the fastest backend available here"
    if engine is None:  # pragma: no cover - torch-cpu is always there
        raise EngineUnavailable("auto", "no backend could start: " + "; ".join(f"{k}: {v}" for k, v in reasons.items()))
    return EngineChoice(engine, reasons)


def describe_choice(choice: EngineChoice) -> str:
    """One line: the engine in use, then why each other backend was not used."""
    name = getattr(choice.engine, "name", type(choice.engine).__name__)
    others = "; ".join(f"{b}: {why}" for b, why in choice.reasons.items() if b != name and not why.startswith("picked"))
    return f"engine {name}" + (f" (not used: {others})" if others else "")


__all__ = ["EngineChoice", "EngineLifecycle", "EngineSpec", "EngineUnavailable", "FieldEngine", "GPU_INSTALL",
           "UnknownEngine", "aliases", "auto_order", "backends", "build_engine", "describe_choice", "engine_spec",
           "register_engine", "resolve", "run_batched", "select_engine", "unavailable_reason", "unregister_engine"]
