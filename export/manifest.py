"""The JSON manifest written beside each TensorRT engine, and the pure staleness check.

A serialized TensorRT engine only loads on the TensorRT version and GPU (compute capability)
that built it, and only means something for the ONNX file it was built from. The manifest
records all three (plus precision and the optimization profile's shapes); `manifest_status`
compares it with what the engine would be built from now and says "ok" or "stale: <why>", so
the runtime rebuilds instead of crashing on a foreign engine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

MANIFEST_VERSION = 1

# Keys compared by manifest_status, in the order their mismatch is reported.
CHECKED_KEYS = ("manifest_version", "onnx_sha256", "tensorrt_version", "gpu_name", "compute_capability", "precision",
                "profile")


def sha256_file(path: Path | str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def engine_paths(onnx_path: Path | str, precision: str) -> tuple[Path, Path]:
    """(engine, manifest) paths beside the ONNX file: NAME.fp16.engine and NAME.fp16.json."""
    onnx_path = Path(onnx_path)
    stem = onnx_path.with_suffix("")
    return stem.with_name(f"{stem.name}.{precision}.engine"), stem.with_name(f"{stem.name}.{precision}.json")


def make_manifest(*, onnx_path: str, onnx_sha256: str, tensorrt_version: str, gpu_name: str, compute_capability: str,
                  precision: str, profile: dict[str, dict[str, list[int]]], **extra) -> dict:
    """profile: input name -> {"min": shape, "opt": shape, "max": shape}."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "onnx_path": str(onnx_path),
        "onnx_sha256": onnx_sha256,
        "tensorrt_version": str(tensorrt_version),
        "gpu_name": gpu_name,
        "compute_capability": str(compute_capability),
        "precision": precision,
        "profile": {k: {m: list(map(int, s)) for m, s in v.items()} for k, v in profile.items()},
        **extra,
    }


def read_manifest(path: Path | str) -> dict | None:
    """The manifest, or None when missing or unreadable."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(path: Path | str, manifest: dict) -> None:
    Path(path).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _short(v) -> str:
    s = str(v)
    return s[:12] + "..." if len(s) == 64 and all(c in "0123456789abcdef" for c in s) else s


def manifest_status(manifest: dict | None, current: dict) -> str:
    """"ok" when an engine with `manifest` can serve `current` (same keys as make_manifest's
    output, for what the engine would be built from now); else "stale: <why>"."""
    if manifest is None:
        return "stale: no manifest (engine never built here, or its manifest is missing or unreadable)"
    why = {
        "manifest_version": lambda a, b: f"manifest format {a}, expected {b}",
        "onnx_sha256": lambda a, b: f"ONNX model changed (built from {_short(a)}, now {_short(b)})",
        "tensorrt_version": lambda a, b: f"built with TensorRT {a}, this is TensorRT {b}",
        "gpu_name": lambda a, b: f"built on {a}, this GPU is {b}",
        "compute_capability": lambda a, b: f"built for compute capability {a}, this GPU has {b}",
        "precision": lambda a, b: f"built for {a}, {b} requested",
        "profile": lambda a, b: f"optimization profile {a} differs from {b}",
    }
    for key in CHECKED_KEYS:
        if key not in current:
            continue
        have = manifest.get(key)
        if have is None:
            return f"stale: manifest has no {key}"
        if have != current[key]:
            return "stale: " + why[key](have, current[key])
    return "ok"


def current_environment(trt=None, device: int = 0) -> dict:
    """tensorrt_version, gpu_name and compute_capability of this machine (needs torch with CUDA)."""
    import torch

    if trt is None:
        import tensorrt as trt
    props = torch.cuda.get_device_properties(device)
    return {
        "tensorrt_version": str(trt.__version__),
        "gpu_name": props.name,
        "compute_capability": f"{props.major}.{props.minor}",
    }
