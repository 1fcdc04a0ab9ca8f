"""The WarpField model run by torch itself (CPU or CUDA)."""

from __future__ import annotations

import os

import numpy as np

from models.warp_field import DEFAULT_FIT_STEPS, DEFAULT_GRID_SIZE


class TorchFieldEngine:
    """The WarpField model run by torch itself (CPU or CUDA)."""

    def __init__(self, grid_size: int = DEFAULT_GRID_SIZE, device: str = "cpu",
                 fit_steps: int = DEFAULT_FIT_STEPS, cpu_threads: int | None = None) -> None:
        import torch

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

        from models.warp_field import WarpField

        self.name = f"torch-{device}"
        self._torch = torch
        self.device = torch.device(device)
        self.model = WarpField(grid_size, fit_steps).to(self.device).eval()
        self._cache: dict[int, tuple] = {}

    def __call__(self, tri_index, tri_weight, displacement):
        torch = self._torch
        # Rig tensors are constant per avatar: upload them once, not every frame.
        key = id(tri_index)
        if key not in self._cache:
            self._cache = {key: (torch.from_numpy(tri_index).to(self.device),
                                 torch.from_numpy(tri_weight).to(self.device), tri_index)}
        idx, wgt, _ = self._cache[key]
        with torch.inference_mode():
            out = self.model(idx, wgt, torch.from_numpy(displacement).to(self.device))
        return out.cpu().numpy()
