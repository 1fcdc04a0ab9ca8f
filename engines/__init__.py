"""Runtime backends for the per-frame model (see base.FieldEngine) and the choice among them.

    select_engine(name="auto", grid_size=None) -> EngineChoice(engine, reasons)
    describe_choice(choice) -> str          one line for the CLI / GUI
    BACKENDS, AUTO_ORDER                    the backend names, and auto's preference order

`auto` takes the first backend of AUTO_ORDER that is available and starts:
tensorrt > onnxruntime-cuda > torch-cuda > (torch-cpu, onnxruntime-cpu in the order measured
on a CPU, see CPU_PREFERENCE). Naming a backend forces it; an unavailable one raises
EngineUnavailable, a PuppetCamError that says why and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
import importlib.util
import logging

from .base import FieldEngine
from .errors import EngineUnavailable, UnknownEngine

log = logging.getLogger("puppetcam.engines")

GPU_INSTALL = "pip install -r requirements-gpu.txt"

# On CPUs, which of the two CPU backends auto prefers, measured with `python -m engines.bench`
# (WarpField 96x96, 3 Newton steps, real footage, batch 1): on the 2-core dev/CI machine, with
# torch on one intra-op thread (see torch_engine.py), torch 4.0 ms per frame, ONNX Runtime 13.1
# ms (2026-11-22; its GridSample kernel alone costs more than torch's whole model); on a 16-core
# box 2.1 vs 6.4 ms. The numbers go into reasons, so the user sees why.
CPU_PREFERENCE = ("torch-cpu", "onnxruntime-cpu")
CPU_MEASURED_MS = {"torch-cpu": 4.0, "onnxruntime-cpu": 13.1}

AUTO_ORDER = ("tensorrt", "onnxruntime-cuda", "torch-cuda") + CPU_PREFERENCE
BACKENDS = AUTO_ORDER + ("tensorrt-fp32",)
ALIASES = {
    "torch": "torch-cpu",
    "cpu": "torch-cpu",
    "cuda": "torch-cuda",
    "trt": "tensorrt",
    "tensorrt-fp16": "tensorrt",
    "ort": "onnxruntime",
    "onnxruntime": "onnxruntime",  # CUDA provider when present, else CPU
}


@dataclass
class EngineChoice:
    engine: FieldEngine
    reasons: dict[str, str]  # backend -> why it was or was not used

    def summary(self) -> str:
        return describe_choice(self)


def _torch_cuda_reason() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"no CUDA GPU: torch {torch.__version__} is a CPU-only build"
    return f"no CUDA GPU visible to torch {torch.__version__} (no NVIDIA driver or device)"


def unavailable_reason(backend: str) -> str | None:
    """Why `backend` cannot run here (cheap checks, nothing is built), or None if it can."""
    if backend in ("tensorrt", "tensorrt-fp32"):
        if importlib.util.find_spec("tensorrt") is None:
            return f"not installed ({GPU_INSTALL})"
        cuda = _torch_cuda_reason()
        return f"installed, but {cuda}" if cuda else None
    if backend.startswith("onnxruntime"):
        if importlib.util.find_spec("onnxruntime") is None:
            return "onnxruntime is not installed (pip install -r requirements.txt)"
        if backend == "onnxruntime-cuda":
            from .onnxruntime_engine import cuda_provider_available

            if not cuda_provider_available():
                import onnxruntime as ort

                return (f"onnxruntime {ort.__version__} has no CUDA provider (CPU-only build; "
                        f"{GPU_INSTALL} installs onnxruntime-gpu)")
        return None
    if backend == "torch-cuda":
        return _torch_cuda_reason()
    if backend == "torch-cpu":
        return None if importlib.util.find_spec("torch") else "torch is not installed"
    raise UnknownEngine(f"Unknown engine {backend!r}.", f"Use one of: auto, {', '.join(BACKENDS)}.")


def _build(backend: str, grid_size: int) -> FieldEngine:
    if backend == "torch-cpu":
        from .torch_engine import TorchFieldEngine

        return TorchFieldEngine(grid_size)
    if backend == "torch-cuda":
        from .torch_engine import TorchFieldEngine

        return TorchFieldEngine(grid_size, device="cuda")
    if backend.startswith("onnxruntime"):
        from .onnxruntime_engine import OnnxRuntimeFieldEngine

        return OnnxRuntimeFieldEngine(grid_size, device=backend.split("-", 1)[1] if "-" in backend else "auto")
    if backend.startswith("tensorrt"):
        from .tensorrt_engine import TensorRTFieldEngine

        return TensorRTFieldEngine(grid_size, precision="fp32" if backend.endswith("fp32") else "fp16")
    raise UnknownEngine(f"Unknown engine {backend!r}.", f"Use one of: auto, {', '.join(BACKENDS)}.")


def _canonical(name: str) -> str:
    key = (name or "auto").strip().lower()
    key = ALIASES.get(key, key)
    if key != "auto" and key != "onnxruntime" and key not in BACKENDS:
        raise UnknownEngine(f"Unknown engine {name!r}.", f"Use one of: auto, {', '.join(BACKENDS)}, "
                            f"or an alias ({', '.join(sorted(ALIASES))}).")
    return key


def _slower_than(backend: str, picked: str) -> str:
    if backend in CPU_MEASURED_MS and picked in CPU_MEASURED_MS:
        return (f"available, but slower than {picked} on this kind of CPU "
                f"({CPU_MEASURED_MS[backend]:g} vs {CPU_MEASURED_MS[picked]:g} ms per frame measured)")
    return f"available, but {picked} is preferred (faster)"


def select_engine(name: str = "auto", grid_size: int | None = None) -> EngineChoice:
    """The fastest available backend ("auto"), or the one named (raises EngineUnavailable when
    it cannot run here). `reasons` says, for every backend, why it was or was not used."""
    from models.warp_field import DEFAULT_GRID_SIZE

    g = grid_size or DEFAULT_GRID_SIZE
    key = _canonical(name)
    if key == "onnxruntime":
        from .onnxruntime_engine import cuda_provider_available

        key = "onnxruntime-cuda" if cuda_provider_available() else "onnxruntime-cpu"
    if key != "auto":
        why = unavailable_reason(key)
        if why is not None:
            raise EngineUnavailable(key, why, "Use --engine auto, or set up the GPU backends as docs/engines.md says.")
        engine = _build(key, g)
        return EngineChoice(engine, {key: "picked: asked for by name", **{
            b: f"not used: --engine {name} was asked for" for b in AUTO_ORDER if b != key}})

    reasons: dict[str, str] = {}
    engine = None
    picked = None
    for backend in AUTO_ORDER:
        why = unavailable_reason(backend)
        if picked is not None:
            reasons[backend] = why or _slower_than(backend, picked)
            continue
        if why is not None:
            reasons[backend] = why
            continue
        try:
            engine = _build(backend, g)
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


__all__ = ["AUTO_ORDER", "BACKENDS", "EngineChoice", "EngineUnavailable", "FieldEngine", "UnknownEngine",
           "describe_choice", "select_engine", "unavailable_reason"]
