"""The renderer's model: control-point motion -> dense backward sampling grid.

A plain `torch.nn.Module` of gathers, element-wise maths and 4-D `grid_sample`, so it exports
to ONNX and compiles to TensorRT with no plugin. Shapes are fixed by the grid size and the
number of control points, not by the avatar: one exported model serves every avatar.

How it works: the piecewise-affine *forward* warp (avatar -> posed) is cheap to evaluate on
the avatar's own grid, because each grid point's triangle and barycentric weights are fixed per
avatar (see rig.py). Sampling needs the *backward* map (output pixel -> avatar pixel), i.e. the
inverse of the forward warp, which a few Newton steps find: the forward warp is piecewise
affine, so its Jacobian is known in closed form on the grid and Newton converges in 2-3 steps
where a plain fixed-point iteration would diverge wherever the face stretches more than 2x
(an opening mouth).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class WarpField(nn.Module):
    def __init__(self, grid_size: int, newton_steps: int = 4, min_det: float = 0.05) -> None:
        super().__init__()
        self.grid_size = grid_size
        self.newton_steps = newton_steps
        self.min_det = min_det
        lin = torch.linspace(-1.0, 1.0, grid_size)
        gy, gx = torch.meshgrid(lin, lin, indexing="ij")
        self.register_buffer("identity", torch.stack([gx, gy], dim=-1).unsqueeze(0), persistent=False)

    def forward(self, tri_index: torch.Tensor, tri_weight: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
        """tri_index (B, G*G, 3) int64, tri_weight (B, G*G, 3), displacement (B, V, 2) in
        normalised crop units -> sampling grid (B, G, G, 2) in [-1, 1], align_corners=True."""
        b = displacement.shape[0]
        g = self.grid_size
        # Gather the three control points of each grid point's triangle, batch by batch.
        flat = tri_index.reshape(b, -1, 1).expand(-1, -1, 2)
        corners = torch.gather(displacement, 1, flat).reshape(b, g * g, 3, 2)
        fwd = (corners * tri_weight.unsqueeze(-1)).sum(dim=2)  # (B, G*G, 2)
        d = fwd.reshape(b, g, g, 2).permute(0, 3, 1, 2)  # (B, 2, G, G)

        step = 2.0 / (g - 1)
        ddx = _central_difference(d, dim=3) / step
        ddy = _central_difference(d, dim=2) / step
        field = torch.cat([d, ddx, ddy], dim=1)  # (B, 6, G, G): D, dD/dx, dD/dy

        target = self.identity.expand(b, -1, -1, -1)
        x = target - d.permute(0, 2, 3, 1)
        for _ in range(self.newton_steps):
            s = F.grid_sample(field, x, mode="bilinear", padding_mode="border", align_corners=True)
            s = s.permute(0, 2, 3, 1)  # (B, G, G, 6)
            r = target - x - s[..., 0:2]
            j00 = 1.0 + s[..., 2]  # d(x + Dx)/dx
            j10 = s[..., 3]  # dDy/dx
            j01 = s[..., 4]  # dDx/dy
            j11 = 1.0 + s[..., 5]
            # A collapsing region (a closing eye) has a near-singular Jacobian: clamping its
            # determinant keeps the step finite; a fold (negative determinant) is treated alike.
            det = torch.clamp(j00 * j11 - j01 * j10, min=self.min_det)
            dx = (j11 * r[..., 0] - j01 * r[..., 1]) / det
            dy = (j00 * r[..., 1] - j10 * r[..., 0]) / det
            x = x + torch.clamp(torch.stack([dx, dy], dim=-1), -0.25, 0.25)
        return x


def _central_difference(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Central differences with one-sided ones at the edges; slicing only, for a clean export."""
    n = t.shape[dim]
    first = t.narrow(dim, 1, 1) - t.narrow(dim, 0, 1)
    last = t.narrow(dim, n - 1, 1) - t.narrow(dim, n - 2, 1)
    mid = (t.narrow(dim, 2, n - 2) - t.narrow(dim, 0, n - 2)) * 0.5
    return torch.cat([first, mid, last], dim=dim)
