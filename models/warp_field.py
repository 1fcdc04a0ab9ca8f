"""The renderer's model: control-point motion -> dense backward sampling grid, fold-free by
construction.

A plain `torch.nn.Module` of gathers, element-wise maths and 4-D `grid_sample`, so it exports
to ONNX and compiles to TensorRT with no plugin. Shapes are fixed by the grid size and the
number of control points, not by the avatar: one exported model serves every avatar.

How it works. The landmarks ask for a forward displacement `D` (avatar -> posed), piecewise
affine over the avatar's triangulation; each grid point's triangle and barycentric weights are
fixed per avatar (see rig.py), so `D` on the grid is one gather. Inverting `D` directly (Newton,
as before) gives a map that folds wherever `D` does: on a head turn the far cheek's landmarks
pass behind the nose, and the output shows a tear. Instead the warp is the *flow* of a smooth
velocity field `v` for unit time, `exp(v)`: a flow never folds (trajectories cannot cross), its
inverse is simply `exp(-v)`, and both come from scaling and squaring (2^-N of the field, then
composed with itself N times, each a `grid_sample`), as in diffeomorphic image registration
(Arsigny et al. 2006; VoxelMorph). `v` is fitted so that `exp(v)` lands where `D` asks: a few
fixed-point steps `v += D - (exp(v) - id)`. Where the landmarks ask for the impossible (a fold),
the fit cannot reach it and the flow squeezes the region instead, which is what an occluding edge
looks like in 2-D.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_GRID_SIZE = 96
# 2^7 sub-steps: the first is injective while the field's gradient is under 128 grid cells per
# cell, far beyond any face motion (a mouth opening stretches about 20x).
DEFAULT_SQUARINGS = 7
DEFAULT_FIT_STEPS = 3

# The control points the model is exported for: the exported graph's displacement input is
# (B, NUM_CONTROL_POINTS, 2), so the count belongs to the model, and the app's rig (app/rig.py)
# lays its points out to match: MediaPipe's face-mesh landmarks, an inner and an outer ring,
# and points on the crop border.
NUM_LANDMARKS = 478
RING_POINTS = 32
BORDER_POINTS_PER_SIDE = 8
NUM_CONTROL_POINTS = NUM_LANDMARKS + 2 * RING_POINTS + 4 * BORDER_POINTS_PER_SIDE


class WarpField(nn.Module):
    def __init__(self, grid_size: int = DEFAULT_GRID_SIZE, fit_steps: int = DEFAULT_FIT_STEPS,
                 squarings: int = DEFAULT_SQUARINGS) -> None:
        super().__init__()
        self.grid_size = grid_size
        self.fit_steps = fit_steps
        self.squarings = squarings
        lin = torch.linspace(-1.0, 1.0, grid_size)
        gy, gx = torch.meshgrid(lin, lin, indexing="ij")
        self.register_buffer("identity", torch.stack([gx, gy], dim=-1).unsqueeze(0), persistent=False)
        # The velocity is zero on the grid's outer ring: the flow then keeps the crop border in
        # place exactly (the animated crop pastes back with no seam) and nothing leaves the crop.
        inside = torch.zeros(1, grid_size, grid_size, 1)
        inside[:, 1:-1, 1:-1] = 1.0
        self.register_buffer("inside", inside, persistent=False)

    def forward(self, tri_index: torch.Tensor, tri_weight: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
        """tri_index (B, G*G, 3) int64, tri_weight (B, G*G, 3), displacement (B, V, 2) in
        normalised crop units -> sampling grid (B, G, G, 2) in [-1, 1], align_corners=True."""
        b = displacement.shape[0]
        g = self.grid_size
        flat = tri_index.reshape(b, -1, 1).expand(-1, -1, 2)
        corners = torch.gather(displacement, 1, flat).reshape(b, g * g, 3, 2)
        target = (corners * tri_weight.unsqueeze(-1)).sum(dim=2).reshape(b, g, g, 2)
        velocity = target * self.inside
        for _ in range(self.fit_steps):
            velocity = self._smooth(velocity + (target - self.exp(velocity))) * self.inside
        return self.identity + self.exp(-velocity)

    @staticmethod
    def _smooth(velocity: torch.Tensor) -> torch.Tensor:
        """A 3x3 box filter: the fit's corrections pile up where the landmarks ask for more than
        a grid cell can hold (a band squeezed against the crop border, lips parting); unsmoothed,
        the field's gradient there outgrows what bilinear composition keeps injective.
        Written as shifted sums (two 1-D passes, zero beyond the edge, where the velocity is
        zero anyway): on a CPU, torch's pooling costs several times as much at this size."""
        v = F.pad(velocity, (0, 0, 1, 1, 1, 1))  # (B, G+2, G+2, 2)
        v = v[:, :, :-2] + v[:, :, 1:-1] + v[:, :, 2:]
        return (v[:, :-2] + v[:, 1:-1] + v[:, 2:]) * (1.0 / 9.0)

    def exp(self, velocity: torch.Tensor) -> torch.Tensor:
        """Displacement (B, G, G, 2) of the unit-time flow of `velocity` (B, G, G, 2)."""
        disp = velocity * (0.5 ** self.squarings)
        for _ in range(self.squarings):
            # disp(x) <- disp(x) + disp(x + disp(x)): the map composed with itself.
            field = disp.permute(0, 3, 1, 2)
            disp = disp + F.grid_sample(field, self.identity + disp, mode="bilinear", padding_mode="border",
                                        align_corners=True).permute(0, 2, 3, 1)
        return disp
