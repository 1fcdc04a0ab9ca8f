"""Trilinear sampling of a 3-D feature volume written with 4-D (bilinear) grid sampling only.

TensorRT's GridSample layer takes rank-4 tensors, and LivePortrait samples a (C, D, H, W) volume.
Folding depth into channels turns the volume into C*D planes; one bilinear sample of all planes at
each point's (x, y) followed by a "tent" weighting over depth, max(0, 1 - |iz - k|) for slice k,
is exactly trilinear interpolation: only the two slices around iz get a non-zero weight, (1 - fz)
and fz, and slices outside the volume simply are not there, which is zero padding in z. It costs
D bilinear samples per point, but every op is native to TensorRT and no precision is lost (a
"slice atlas" that takes only two samples needs coordinates near 1000 px, where fp32 loses
~1e-4 px of precision).

Conventions are torch's grid_sample with padding_mode="zeros", align_corners=False: the grid's
last axis is (x, y, z) <-> (W, H, D) and index = ((coord + 1) * size - 1) / 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def trilinear_sample(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """volume (B, C, D, H, W), grid (B, *S, Wo, 3) -> (B, C, *S, Wo); S may be several axes
    (e.g. keypoint, depth, height), so many grids share one sampling call."""
    b, c, d, h, w = volume.shape
    out_shape = grid.shape[1:-1]
    wo = grid.shape[-2]
    pts = grid.reshape(b, -1, wo, 3)
    planes = F.grid_sample(volume.reshape(b, c * d, h, w), pts[..., :2], mode="bilinear",
                           padding_mode="zeros", align_corners=False)  # (B, C*D, P/Wo, Wo)
    iz = ((pts[..., 2] + 1.0) * d - 1.0) * 0.5  # (B, P/Wo, Wo)
    k = torch.arange(d, dtype=volume.dtype, device=volume.device).reshape(1, d, 1, 1)
    tent = torch.relu(1.0 - torch.abs(iz.unsqueeze(1) - k))  # (B, D, P/Wo, Wo)
    out = (planes.reshape(b, c, d, *planes.shape[2:]) * tent.unsqueeze(1)).sum(dim=2)
    return out.reshape(b, c, *out_shape)


def trilinear_sample_5d(volume: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Reference: torch's native 5-D grid_sample, same signature as trilinear_sample (tests only;
    it exports as a 5-D GridSample that TensorRT cannot run without a plugin)."""
    b, c = volume.shape[:2]
    out_shape = grid.shape[1:-1]
    g = grid.reshape(b, -1, grid.shape[-3], grid.shape[-2], 3)
    out = F.grid_sample(volume, g, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out.reshape(b, c, *out_shape)
