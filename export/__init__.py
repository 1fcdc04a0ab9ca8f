"""Export the per-frame torch models to ONNX (and TensorRT engines) in the user's cache.

    python -m export [--grid 96] [--out DIR] [--opset 18]    # ONNX + checker + ORT-vs-torch parity
    python -m export --inputs FILE.npz                        # parity on inputs the app recorded from
                                                              # footage (python -m app.model_inputs)
    python -m export --trt [--fp32]                           # TensorRT engines + manifests

Library use (the engines call these):
    onnx_path(name, config, out) -> Path       where a model's ONNX file lives
    ensure_onnx(name, config, out) -> Path     that file, exported (quietly) if missing or stale
"""

from __future__ import annotations

from pathlib import Path

from .paths import CACHE_ENV, cache_root, models_dir
from .registry import DEFAULT_MAX_BATCH, DEFAULT_OPSET, MODELS, ModelConfig, ModelSpec

__all__ = ["CACHE_ENV", "DEFAULT_MAX_BATCH", "DEFAULT_OPSET", "MODELS", "ModelConfig", "ModelSpec", "cache_root",
           "ensure_onnx", "models_dir", "onnx_path"]


def onnx_path(name: str | ModelSpec = "warp_field", config: ModelConfig | None = None,
              out: Path | str | None = None) -> Path:
    spec = name if isinstance(name, ModelSpec) else MODELS[name]
    return models_dir(out) / spec.filename(config or ModelConfig())


def ensure_onnx(name: str | ModelSpec = "warp_field", config: ModelConfig | None = None,
                out: Path | str | None = None, quiet: bool = True) -> Path:
    """The model's ONNX file in the cache, exported first if it is missing or was exported from
    other source code (a few seconds, once)."""
    from .onnx_export import export_onnx, is_current

    spec = name if isinstance(name, ModelSpec) else MODELS[name]  # a spec: models outside MODELS
    config = config or ModelConfig()
    path = onnx_path(spec, config, out)
    if not is_current(spec, config, path):
        export_onnx(spec, config, path, quiet=quiet)
    return path
