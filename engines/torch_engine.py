"""The WarpField model run by torch itself (CPU or CUDA)."""

from __future__ import annotations

import numpy as np

from app.rig import DEFAULT_GRID_SIZE, DEFAULT_NEWTON_STEPS


class TorchFieldEngine:
    """The WarpField model run by torch itself (CPU or CUDA)."""

    def __init__(self, grid_size: int = DEFAULT_GRID_SIZE, device: str = "cpu",
                 newton_steps: int = DEFAULT_NEWTON_STEPS) -> None:
        import torch

        from app.warp_field import WarpField

        self.name = f"torch-{device}"
        self._torch = torch
        self.device = torch.device(device)
        self.model = WarpField(grid_size, newton_steps).to(self.device).eval()
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
