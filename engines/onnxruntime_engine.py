"""The WarpField model run by ONNX Runtime: CUDA provider when available, else CPU.

The ONNX file comes from the user cache (`python -m export`); when it is missing or was
exported from other model code, it is exported on first use (quietly, a few seconds, once).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .base import EngineLifecycle
from .errors import EngineUnavailable
from .needs import cuda_provider_available, needs_onnxruntime, needs_onnxruntime_cuda
from .registry import register_engine
from .rig_cache import RigCache

# See torch_engine.TORCH_CPU_MS: measured the same way, ONNX Runtime is the slower CPU backend,
# so it ranks after torch-cpu for auto.
ORT_CPU_MS = 13.1

# Measured with `python -m app.engine_bench --threads-sweep` (WarpField 96x96, 3 Newton steps, real
# footage): on the 2-core dev/CI machine 1 intra-op thread ~11 ms per frame, 2 threads ~7 ms;
# on a 16-core box 1 / 2 / 16 threads 6.8 / 4.8 / 3.4 ms. Spinning worker threads bought nothing
# measurable on 2 cores and would burn the core that capture and MediaPipe tracking need, so
# spinning is off; the cap leaves cores to the rest of the pipeline on big machines.
CPU_THREADS_CAP = 4


def default_cpu_threads() -> int:
    return max(1, min(CPU_THREADS_CAP, os.cpu_count() or 1))


def session_options(device: str, threads: int | None = None, spinning: bool = False):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL  # one chain of ops: no inter-op parallelism to win
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    if device == "cpu":
        opts.intra_op_num_threads = threads or default_cpu_threads()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return opts


@register_engine("onnxruntime-cuda", needs=needs_onnxruntime_cuda, auto_rank=20, aliases=("onnxruntime", "ort"),
                 device="cuda")
@register_engine("onnxruntime-cpu", needs=needs_onnxruntime, auto_rank=50, aliases=("onnxruntime", "ort"),
                 measured_cpu_ms=ORT_CPU_MS, device="cpu")
class OnnxRuntimeFieldEngine(EngineLifecycle):
    """FieldEngine on ONNX Runtime. device: "auto" (CUDA if the provider is there), "cpu", "cuda"."""

    max_batch = None  # the batch axis is dynamic

    def __init__(self, grid_size: int | None = None, device: str = "auto",
                 fit_steps: int | None = None, onnx_path: Path | str | None = None,
                 cache_dir: Path | str | None = None, threads: int | None = None, opset: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise EngineUnavailable("onnxruntime", "onnxruntime is not installed",
                                    "pip install -r requirements.txt (CPU) or requirements-gpu.txt (CUDA)") from None
        from export import ensure_onnx
        from export.registry import DEFAULT_OPSET, ModelConfig
        from models.warp_field import DEFAULT_FIT_STEPS, DEFAULT_GRID_SIZE

        if device == "auto":
            device = "cuda" if cuda_provider_available() else "cpu"
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, not {device!r}")
        if device == "cuda" and not cuda_provider_available():
            raise EngineUnavailable("onnxruntime-cuda", f"onnxruntime {ort.__version__} has no CUDAExecutionProvider "
                                    "(a CPU-only build)", "pip install -r requirements-gpu.txt (onnxruntime-gpu)")
        config = ModelConfig(grid_size or DEFAULT_GRID_SIZE, fit_steps or DEFAULT_FIT_STEPS, opset or DEFAULT_OPSET)
        self.onnx_path = Path(onnx_path) if onnx_path else ensure_onnx("warp_field", config, cache_dir)
        providers = ([("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"] if device == "cuda"
                     else ["CPUExecutionProvider"])
        self.session = ort.InferenceSession(str(self.onnx_path), session_options(device, threads), providers=providers)
        if device == "cuda" and self.session.get_providers()[0] != "CUDAExecutionProvider":
            # The provider is compiled in but could not load (CUDA/cuDNN libraries missing).
            raise EngineUnavailable("onnxruntime-cuda", "the CUDA provider failed to load (CUDA or cuDNN libraries "
                                    "missing or mismatched)", "see docs/engines.md, or use --engine auto")
        self.device = device
        self.name = f"onnxruntime-{device}"
        self.threads = (threads or default_cpu_threads()) if device == "cpu" else None
        self._output = self.session.get_outputs()[0].name
        self._ort = ort
        self._rigs = RigCache(self._upload)

    def _upload(self, tri_index: np.ndarray, tri_weight: np.ndarray) -> tuple:
        ov = self._ort.OrtValue.ortvalue_from_numpy
        return (ov(np.ascontiguousarray(tri_index, dtype=np.int64), "cuda", 0),
                ov(np.ascontiguousarray(tri_weight, dtype=np.float32), "cuda", 0))

    def __call__(self, tri_index: np.ndarray, tri_weight: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        displacement = np.ascontiguousarray(displacement, dtype=np.float32)
        if self.device == "cpu":
            return self.session.run([self._output], {
                "tri_index": np.ascontiguousarray(tri_index, dtype=np.int64),
                "tri_weight": np.ascontiguousarray(tri_weight, dtype=np.float32),
                "displacement": displacement,
            })[0]
        # CUDA: the rig tensors are constant per avatar, so they stay on the GPU; per frame only
        # the displacement goes up and the grid comes back.
        idx, wgt = self._rigs.get(tri_index, tri_weight)
        binding = self.session.io_binding()
        binding.bind_ortvalue_input("tri_index", idx)
        binding.bind_ortvalue_input("tri_weight", wgt)
        binding.bind_cpu_input("displacement", displacement)
        binding.bind_output(self._output, "cpu")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def close(self) -> None:
        """Drops the session (its arena and, on CUDA, its device memory) and the uploaded rigs."""
        self._rigs.clear()
        self.session = None
