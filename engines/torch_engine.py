"""The WarpField model run by torch itself (CPU or CUDA)."""

from __future__ import annotations

import os

import numpy as np

from .base import EngineLifecycle
from .needs import needs_torch, needs_torch_cuda
from .registry import register_engine
from .rig_cache import RigCache

# On CPUs, which of the two CPU backends auto prefers, measured with `python -m app.engine_bench`
# (WarpField 96x96, 3 Newton steps, real footage, batch 1): on the 2-core dev/CI machine, with
# torch on one intra-op thread, torch 4.0 ms per frame, ONNX Runtime 13.1 ms (2026-11-22; its
# GridSample kernel alone costs more than torch's whole model); on a 16-core box 2.1 vs 6.4 ms.
# The numbers go into auto's reasons, so the user sees why (see onnxruntime_engine.py's rank).
TORCH_CPU_MS = 4.0


@register_engine("torch-cuda", needs=needs_torch_cuda, auto_rank=30, aliases=("cuda",), device="cuda")
@register_engine("torch-cpu", needs=needs_torch, auto_rank=40, aliases=("torch", "cpu"),
                 measured_cpu_ms=TORCH_CPU_MS, device="cpu")
class TorchFieldEngine(EngineLifecycle):
    """The WarpField model run by torch itself (CPU or CUDA)."""

    max_batch = None

    def __init__(self, grid_size: int | None = None, device: str = "cpu",
                 fit_steps: int | None = None, cpu_threads: int | None = None) -> None:
        import torch

        from models.warp_field import DEFAULT_FIT_STEPS, DEFAULT_GRID_SIZE, WarpField

        if device == "cpu":
            # Intra-op threads: half the cores, at most 4 (a process-wide torch setting; this
            # engine is torch's only user in the app). The model's tensors are small, so every
            # op of a threaded batch waits at a barrier for each of its threads: where MediaPipe,
            # capture or another process holds a core, that wait is the whole frame. Measured on
            # the 2-core machine with the other core busy: a 4-face batch took 150-340 ms with 2
            # threads and 17 ms with 1 (quiet: 6.8 ms with 2). Half the cores leaves the other
            # half to tracking and capture.
            cpu_threads = cpu_threads or max(1, min(4, (os.cpu_count() or 1) // 2))
            torch.set_num_threads(cpu_threads)

        self.name = f"torch-{device}"
        self._torch = torch
        self.device = torch.device(device)
        self.model = WarpField(grid_size or DEFAULT_GRID_SIZE, fit_steps or DEFAULT_FIT_STEPS).to(self.device).eval()
        self._rigs = RigCache(self._upload)

    def _upload(self, tri_index: np.ndarray, tri_weight: np.ndarray) -> tuple:
        torch = self._torch
        return torch.from_numpy(tri_index).to(self.device), torch.from_numpy(tri_weight).to(self.device)

    def __call__(self, tri_index, tri_weight, displacement):
        torch = self._torch
        idx, wgt = self._rigs.get(tri_index, tri_weight)
        with torch.inference_mode():
            out = self.model(idx, wgt, torch.from_numpy(displacement).to(self.device))
        return out.cpu().numpy()

    def close(self) -> None:
        """Drops the model and the uploaded rigs; on CUDA hands the cached blocks back."""
        self._rigs.clear()
        if getattr(self, "model", None) is None:
            return
        self.model = None
        if self.device.type == "cuda":
            self._torch.cuda.empty_cache()
