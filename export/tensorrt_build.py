"""ONNX -> TensorRT engine (fp16 by default), with a timing cache, an explicit optimization
profile and a manifest beside the engine; `ensure_engine` rebuilds a stale or foreign one.

Written against TensorRT 10.x's Python API: trt.Builder / create_network / OnnxParser,
IBuilderConfig.set_memory_pool_limit, BuilderFlag.FP16, create_optimization_profile,
create_timing_cache / set_timing_cache, build_serialized_network.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

from .manifest import (MANIFEST_VERSION, current_environment, engine_paths, make_manifest, manifest_status, read_manifest, sha256_file,
                       write_manifest)
from .registry import DEFAULT_MAX_BATCH

log = logging.getLogger("puppetcam.export")

PRECISIONS = ("fp16", "fp32")
INSTALL_HINT = "pip install -r requirements-gpu.txt (needs an NVIDIA GPU and driver; see docs/engines.md)"


class TensorRTUnavailable(RuntimeError):
    """tensorrt cannot be imported, or there is no CUDA GPU to build for."""

    def __init__(self, why: str, what_to_do: str = "") -> None:
        self.why = why
        self.what_to_do = what_to_do
        super().__init__(f"{why}. {what_to_do}".strip())


def import_tensorrt():
    """The tensorrt module, or TensorRTUnavailable saying why and how to install it."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailable(f"tensorrt is not installed ({exc})", f"Install it with: {INSTALL_HINT}") from None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a base requirement
        raise TensorRTUnavailable("TensorRT engines need torch (CUDA build) for their GPU buffers and stream",
                                  "pip install -r requirements.txt") from None
    if not torch.cuda.is_available():
        raise TensorRTUnavailable(f"tensorrt {trt.__version__} is installed but torch {torch.__version__} sees no CUDA "
                                  "GPU (a CPU-only torch build, or no NVIDIA driver)",
                                  "Install a CUDA build of torch and an NVIDIA driver (docs/engines.md)")
    return trt


def resolve_precision(trt, requested: str) -> tuple[str, str | None]:
    """The precision this TensorRT can build, and a note when it differs from the one asked for.

    fp16 uses BuilderFlag.FP16 (TensorRT 10.x "weak typing"). TensorRT 11 removed that flag
    (networks are strongly typed: precision comes from the graph's own types), so there the
    fp32 graph is built as fp32; requirements-gpu.txt pins 10.x for fp16 engines."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {requested!r}")
    if requested == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
        return "fp32", (f"TensorRT {trt.__version__} has no BuilderFlag.FP16 (11.x builds strongly typed networks "
                        "only): building fp32 instead; requirements-gpu.txt pins TensorRT 10.x for fp16 engines")
    return requested, None


def profile_from_onnx(onnx_path: Path | str, max_batch: int = DEFAULT_MAX_BATCH) -> dict[str, dict[str, list[int]]]:
    """Optimization profile for every graph input: fixed dims as exported; a symbolic batch
    axis (axis 0) runs 1 (min and opt: one face is the common case) to max_batch."""
    import onnx

    proto = onnx.load(str(onnx_path), load_external_data=False)
    inits = {i.name for i in proto.graph.initializer}
    profile = {}
    for inp in proto.graph.input:
        if inp.name in inits:
            continue
        lo, opt, hi = [], [], []
        for axis, d in enumerate(inp.type.tensor_type.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                dims = (d.dim_value, d.dim_value, d.dim_value)
            elif axis == 0:
                dims = (1, 1, max_batch)
            else:
                raise ValueError(f"{onnx_path}: input {inp.name} axis {axis} is dynamic; only the batch axis may be")
            for shape, n in zip((lo, opt, hi), dims):
                shape.append(n)
        profile[inp.name] = {"min": lo, "opt": opt, "max": hi}
    return profile


def _atomic_write(path: Path, data) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def timing_cache_path(folder: Path, env: dict) -> Path:
    """One timing cache per TensorRT version and GPU: it is only valid for those."""
    tag = f"trt{env['tensorrt_version']}_sm{env['compute_capability'].replace('.', '')}"
    return Path(folder) / f"timing_{tag}.cache"


def build_engine(onnx_path: Path | str, precision: str = "fp16", max_batch: int = DEFAULT_MAX_BATCH,
                 workspace_mb: int = 1024, progress: Callable[[str], None] | None = None) -> tuple[Path, dict]:
    """Build and serialize a TensorRT engine for onnx_path; write NAME.<precision>.engine and its
    manifest beside it. Returns (engine path, manifest)."""
    trt = import_tensorrt()
    say = progress or (lambda msg: log.info(msg))
    precision, note = resolve_precision(trt, precision)
    if note:
        say(note)
    onnx_path = Path(onnx_path)
    engine_path, manifest_path = engine_paths(onnx_path, precision)
    env = current_environment(trt)
    profile = profile_from_onnx(onnx_path, max_batch)

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(str(trt.__version__).split(".")[0])
    # TensorRT 10 networks are always explicit-batch (the flag is deprecated); 8.x needs it set.
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {onnx_path.name}")
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
    opt_profile = builder.create_optimization_profile()
    for name, shapes in profile.items():
        opt_profile.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(opt_profile)

    cache_file = timing_cache_path(onnx_path.parent, env)
    blob = b""
    if cache_file.is_file():
        blob = cache_file.read_bytes()
    try:
        cache = config.create_timing_cache(blob)
        usable = cache is not None and config.set_timing_cache(cache, ignore_mismatch=False) is not False
    except Exception:  # noqa: BLE001 - a corrupt cache file only costs build time
        usable = False
    if not usable:
        say(f"timing cache {cache_file.name} unusable, starting an empty one")
        config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)

    say(f"building {precision} engine for {env['gpu_name']} (sm {env['compute_capability']}), "
        f"TensorRT {env['tensorrt_version']}")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {onnx_path} (see the log above)")
    _atomic_write(engine_path, memoryview(serialized))
    _atomic_write(cache_file, memoryview(config.get_timing_cache().serialize()))

    manifest = make_manifest(onnx_path=str(onnx_path), onnx_sha256=sha256_file(onnx_path), precision=precision,
                             profile=profile, engine_file=engine_path.name, timing_cache=cache_file.name,
                             workspace_mb=workspace_mb, **env)
    write_manifest(manifest_path, manifest)
    return engine_path, manifest


def wanted(onnx_path: Path | str, precision: str, max_batch: int, env: dict) -> dict:
    """What an engine for this ONNX file must have been built from, as manifest keys."""
    return {"manifest_version": MANIFEST_VERSION, "onnx_sha256": sha256_file(onnx_path), "precision": precision,
            "profile": profile_from_onnx(onnx_path, max_batch), **env}


def engine_status(onnx_path: Path | str, precision: str, max_batch: int, env: dict) -> str:
    """"ok" or "stale: <why>" for the engine beside onnx_path (pure, given env)."""
    engine_path, manifest_path = engine_paths(onnx_path, precision)
    if not engine_path.is_file():
        return "stale: no engine file"
    return manifest_status(read_manifest(manifest_path), wanted(onnx_path, precision, max_batch, env))


def ensure_engine(onnx_path: Path | str, precision: str = "fp16", max_batch: int = DEFAULT_MAX_BATCH,
                  force: bool = False, progress: Callable[[str], None] | None = None) -> tuple[Path, dict, str]:
    """The engine for onnx_path, rebuilt when missing, stale or foreign.
    Returns (engine path, manifest, status before: "ok" or "stale: <why>")."""
    trt = import_tensorrt()
    precision, note = resolve_precision(trt, precision)
    if note:
        (progress or log.warning)(note)
    env = current_environment(trt)
    status = "stale: rebuild forced" if force else engine_status(onnx_path, precision, max_batch, env)
    if status == "ok":
        engine_path, manifest_path = engine_paths(onnx_path, precision)
        return engine_path, read_manifest(manifest_path), status
    (progress or log.warning)(f"TensorRT engine for {Path(onnx_path).name} ({precision}) {status}; building it")
    engine_path, manifest = build_engine(onnx_path, precision, max_batch, progress=progress)
    return engine_path, manifest, status
