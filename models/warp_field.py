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
looks like in 2-D. The head's shift (the inner ring's mean move) is a flow of its own, applied
after the fitted one: a field that carried both made every point travel across the field of the
face's own turn and expression, and the fit fell short on large moves.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_GRID_SIZE = 96
# 2^7 sub-steps: the first is injective while the field's gradient is under 128 grid cells per
# cell, far beyond any face motion (a mouth opening stretches about 20x).
DEFAULT_SQUARINGS = 7
DEFAULT_FIT_STEPS = 2
# The head's shift is one translation eased out across the band between the rings: its gradient
# is a fraction of a grid cell per cell, so 2^4 sub-steps keep every one of them injective.
SHIFT_SQUARINGS = 4
SHIFT_SMOOTHING = 3
# The fold repair of the composed map (`WarpField._unfold`): passes (each finds the cells still
# turned over), how many box filters spread a folded cell's mark into a soft blending weight (a
# hard-edged weight creased the map at its edge), and the gain that makes that weight 1 over the
# cell itself and its neighbours.
UNFOLD_PASSES = 6
UNFOLD_REACH = 3
UNFOLD_GAIN = 9.0

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
        self.register_buffer("unfold_kernel", _unfold_kernel(UNFOLD_REACH), persistent=False)

    def forward(self, tri_index: torch.Tensor, tri_weight: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
        """tri_index (B, G*G, 3) int64, tri_weight (B, G*G, 3), displacement (B, V, 2) in
        normalised crop units -> sampling grid (B, G, G, 2) in [-1, 1], align_corners=True.

        The head's shift is a flow of its own, composed with the flow of the rest: a point of a
        stationary field travels along the field, so a face shifted by a tenth of the crop and
        turned at once passed over the field of its own turn on the way, and the fit did not
        catch up (landmarks landed pixels off, and a crease ran across a laughing cheek)."""
        b = displacement.shape[0]
        g = self.grid_size
        flat = tri_index.reshape(b, -1, 1).expand(-1, -1, 2)

        def on_grid(control: torch.Tensor) -> torch.Tensor:
            corners = torch.gather(control, 1, flat).reshape(b, g * g, 3, 2)
            return (corners * tri_weight.unsqueeze(-1)).sum(dim=2).reshape(b, g, g, 2)

        target = on_grid(displacement)
        # Eased across the band as the single field used to be (one box filter per fit step):
        # unsmoothed, the band under a head that rises is stretched over a few cells.
        shift = on_grid(self._head_shift(displacement)) * self.inside
        for _ in range(SHIFT_SMOOTHING):
            shift = self._smooth(shift) * self.inside
        unshift = self.exp(-shift, SHIFT_SQUARINGS)
        # What is left for the second flow: from each point to where the first flow must start
        # from to land where the landmarks ask (x + D(x), moved back by the shift's inverse).
        rest = target + _sample(unshift, self.identity + target)
        velocity = rest * self.inside
        for _ in range(self.fit_steps):
            velocity = self._smooth(velocity + (rest - self.exp(velocity))) * self.inside
        # The inverse of (shift after rest) is (rest's inverse after the shift's).
        moved = self.identity + unshift
        return self._unfold(moved + _sample(self.exp(-velocity), moved))

    def _unfold(self, grid: torch.Tensor) -> torch.Tensor:
        """Each flow is fold-free, but their composition is read off a 96-cell grid by bilinear
        sampling: where a rolled, shifted head squeezes the band against the crop border, a cell
        or two of the composed map turn over (a 1-2 px tear at the crown). Only such cells, and
        a few round them, are smoothed, with a weight that fades out (a hard-edged one creased
        the map at its edge); a pass over the whole map moved every landmark too (a shifted
        head's landing error rose past half a pixel)."""
        disp = grid - self.identity
        exporting = torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
        for _ in range(UNFOLD_PASSES):
            folded = _folded_cells(self.identity + disp)  # (B, 1, G-1, G-1)
            if not exporting and not bool(folded.any()):
                break  # the rest would change nothing (zero weight); an exported graph runs them all
            reach = self.unfold_kernel.shape[-1] // 2
            weight = F.conv2d(F.pad(folded, (reach, reach, reach, reach)), self.unfold_kernel)
            weight = (weight * UNFOLD_GAIN).clamp(max=1.0).permute(0, 2, 3, 1)  # (B, G, G, 1)
            disp = disp + weight * (self._smooth(disp) * self.inside - disp)
        return self.identity + disp

    @staticmethod
    def _head_shift(displacement: torch.Tensor) -> torch.Tensor:
        """Control displacements (B, V, 2) of the head's shift alone: the mean move of the
        inner ring points that move (a ring point held on the crop border stays), given to the
        landmarks and those ring points; the outer ring and the border stay."""
        ring = displacement[:, NUM_LANDMARKS:NUM_LANDMARKS + RING_POINTS]
        moving = (ring.abs().sum(dim=2, keepdim=True) > 0).to(ring.dtype)
        mean = (ring * moving).sum(dim=1, keepdim=True) / moving.sum(dim=1, keepdim=True).clamp(min=1.0)
        head = torch.cat([torch.ones_like(displacement[:, :NUM_LANDMARKS, :1]), moving,
                          torch.zeros_like(displacement[:, NUM_LANDMARKS + RING_POINTS:, :1])], dim=1)
        return mean * head

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

    def exp(self, velocity: torch.Tensor, squarings: int | None = None) -> torch.Tensor:
        """Displacement (B, G, G, 2) of the unit-time flow of `velocity` (B, G, G, 2)."""
        squarings = self.squarings if squarings is None else squarings
        disp = velocity * (0.5 ** squarings)
        for _ in range(squarings):
            # disp(x) <- disp(x) + disp(x + disp(x)): the map composed with itself.
            disp = disp + _sample(disp, self.identity + disp)
        return disp


def _folded_cells(grid: torch.Tensor) -> torch.Tensor:
    """(B, 1, G-1, G-1): 1 for each cell of `grid` (B, G, G, 2) that its bilinear map turns
    over anywhere, else 0. A bilinear cell's Jacobian determinant is linear along each side, so
    it is positive throughout exactly when it is at the four corners, where it is the cross
    product of the two sides that meet there."""
    across = grid[:, :, 1:] - grid[:, :, :-1]  # (B, G, G-1, 2)
    down = grid[:, 1:] - grid[:, :-1]  # (B, G-1, G, 2)
    worst = None
    for h in (across[:, :-1], across[:, 1:]):  # a cell's top and bottom sides
        for v in (down[:, :, :-1], down[:, :, 1:]):  # its left and right sides
            cross = h[..., 0] * v[..., 1] - h[..., 1] * v[..., 0]
            worst = cross if worst is None else torch.minimum(worst, cross)
    return (worst <= 0).to(grid.dtype).unsqueeze(1)


def _unfold_kernel(reach: int) -> torch.Tensor:
    """(1, 1, K, K), K = 2 * reach + 2: a folded cell's mark on its four corner points (a 2x2
    box), spread by `reach` 3x3 box filters, as one convolution (one op, not a dozen)."""
    kernel = torch.ones(1, 1, 2, 2)
    box = torch.full((1, 1, 3, 3), 1.0 / 9.0)
    for _ in range(reach):
        kernel = F.conv2d(F.pad(kernel, (2, 2, 2, 2)), box)
    return kernel


def _sample(field: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """`field` (B, G, G, 2) read at `positions` (B, G, G, 2), bilinear, clamped at the border."""
    return F.grid_sample(field.permute(0, 3, 1, 2), positions, mode="bilinear", padding_mode="border",
                         align_corners=True).permute(0, 2, 3, 1)
