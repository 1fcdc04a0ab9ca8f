"""The avatar's warp rig, built once per avatar: control points, triangulation and the
barycentric coordinates of every warp-grid point.

Control points are the 478 face landmarks plus three sets of anchors:
- an inner ring around head and hair, which moves rigidly with the head (hair and ears follow);
- an outer ring, which stays still: between the two rings the neck and the edge of the
  background stretch smoothly; beyond it nothing moves;
- points on the crop border, also still, so the warp is exactly the identity at the crop edge
  and the animated crop pastes back with no seam.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import landmarks as lm

RING_POINTS = 32
BORDER_POINTS_PER_SIDE = 8
NUM_CONTROL_POINTS = lm.NUM_LANDMARKS + 2 * RING_POINTS + 4 * BORDER_POINTS_PER_SIDE
# 96x96 with 3 Newton steps keeps the warp error under a pixel at 512x512 output and runs the
# model in ~3 ms on a 2-core CPU (measured: 128x128 with 4 steps costs 6 ms).
DEFAULT_GRID_SIZE = 96
DEFAULT_NEWTON_STEPS = 3


@dataclass(frozen=True)
class CropBox:
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


@dataclass(frozen=True)
class WarpRig:
    crop: CropBox
    grid_size: int
    source_points: np.ndarray  # (V, 2) crop pixels
    inner_ring: np.ndarray  # (R, 2) image pixels, neutral positions of the moving ring
    triangles: np.ndarray  # (T, 3) int
    tri_index: np.ndarray  # (G*G, 3) int64: control points of the triangle holding each grid point
    tri_weight: np.ndarray  # (G*G, 3) float32: barycentric weights

    def displacement(self, posed_landmarks: np.ndarray, ring_shift) -> np.ndarray:
        """(V, 2) control-point displacement in normalised crop units ([-1, 1] spans the crop)."""
        dst = self.source_points.copy()
        n = lm.NUM_LANDMARKS
        dst[:n] = posed_landmarks[:, :2] - (self.crop.x0, self.crop.y0)
        dst[n:n + RING_POINTS] = ring_shift(self.inner_ring) - (self.crop.x0, self.crop.y0)
        scale = np.array([2.0 / max(self.crop.width - 1, 1), 2.0 / max(self.crop.height - 1, 1)])
        return ((dst - self.source_points) * scale).astype(np.float32)


def _ellipse(center: np.ndarray, radii: np.ndarray, count: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack([center[0] + radii[0] * np.cos(t), center[1] + radii[1] * np.sin(t)], axis=1)


def build_rig(landmarks: np.ndarray, image_size: tuple[int, int], grid_size: int = DEFAULT_GRID_SIZE) -> WarpRig:
    w, h = image_size
    oval = landmarks[list(lm.FACE_OVAL), :2]
    lo, hi = oval.min(axis=0), oval.max(axis=0)
    centre = (lo + hi) / 2
    half = (hi - lo) / 2
    # The face oval stops at the hairline: the ring reaches up over the hair and out past the
    # ears; the outer ring leaves a band wide enough for the neck to stretch without creasing.
    inner_c = centre + np.array([0.0, -0.15 * half[1]])
    inner_r = half * np.array([1.5, 1.6])
    outer_r = inner_r * 1.5
    side = 2 * max(outer_r) * 1.08
    x0 = int(np.clip(np.floor(inner_c[0] - side / 2), 0, w - 2))
    y0 = int(np.clip(np.floor(inner_c[1] - side / 2), 0, h - 2))
    x1 = int(np.clip(np.ceil(inner_c[0] + side / 2), x0 + 2, w))
    y1 = int(np.clip(np.ceil(inner_c[1] + side / 2), y0 + 2, h))
    crop = CropBox(x0, y0, x1, y1)
    origin = np.array([x0, y0], dtype=np.float64)

    inner = _ellipse(inner_c, inner_r, RING_POINTS)
    outer = _ellipse(inner_c, outer_r, RING_POINTS)
    # Edge points sit exactly on the crop border (corners included once per side).
    tb = np.linspace(0, 1, BORDER_POINTS_PER_SIDE, endpoint=False)
    cw, ch = crop.width - 1, crop.height - 1
    border = np.concatenate([
        np.stack([tb * cw, np.zeros_like(tb)], 1), np.stack([np.full_like(tb, cw), tb * ch], 1),
        np.stack([cw - tb * cw, np.full_like(tb, ch)], 1), np.stack([np.zeros_like(tb), ch - tb * ch], 1),
    ])
    pts = np.concatenate([landmarks[:, :2] - origin, inner - origin, outer - origin, border]).astype(np.float64)
    # Rings may overhang a crop that the image border clipped: pull them inside, they still
    # bound the face there.
    pts[lm.NUM_LANDMARKS:] = np.clip(pts[lm.NUM_LANDMARKS:], [0, 0], [cw, ch])

    triangles = _delaunay(pts, (cw, ch))
    tri_index, tri_weight = _rasterise(pts, triangles, (cw, ch), grid_size)
    return WarpRig(crop, grid_size, pts, inner, triangles, tri_index, tri_weight)


def _delaunay(pts: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    margin = 10.0
    subdiv = cv2.Subdiv2D((int(-margin), int(-margin), int(size[0] + 2 * margin + 1), int(size[1] + 2 * margin + 1)))
    # Subdiv2D merges coincident points (closed lips, iris): jitter-free ids come from
    # inserting one by one and looking the vertices up afterwards.
    for p in pts:
        subdiv.insert((float(p[0]), float(p[1])))
    tri = subdiv.getTriangleList().reshape(-1, 3, 2)
    keep = np.all((tri[..., 0] >= -1e-3) & (tri[..., 0] <= size[0] + 1e-3)
                  & (tri[..., 1] >= -1e-3) & (tri[..., 1] <= size[1] + 1e-3), axis=1)
    tri = tri[keep]
    d = np.linalg.norm(tri[:, :, None, :] - pts[None, None, :, :], axis=-1)
    ids = d.argmin(axis=-1)
    ids = ids[(ids[:, 0] != ids[:, 1]) & (ids[:, 1] != ids[:, 2]) & (ids[:, 0] != ids[:, 2])]
    return ids.astype(np.int64)


def _rasterise(pts: np.ndarray, triangles: np.ndarray, size: tuple[float, float], g: int):
    """Which triangle holds each grid point, and its barycentric weights there."""
    scale = np.array([(g - 1) / max(size[0], 1), (g - 1) / max(size[1], 1)])
    grid_pts = pts * scale
    label = np.full((g, g), -1, dtype=np.int32)
    # Draw with 4 bits of sub-pixel precision so thin triangles still claim their grid points.
    for i, t in enumerate(triangles):
        poly = np.round(grid_pts[t] * 16).astype(np.int32)
        cv2.fillConvexPoly(label, poly, int(i), lineType=cv2.LINE_8, shift=4)
    missing = label < 0
    if missing.any():
        # Points on no triangle (slivers the raster skipped) borrow their nearest neighbour's.
        _, nearest = cv2.distanceTransformWithLabels(missing.astype(np.uint8), cv2.DIST_L2, 5,
                                                     labelType=cv2.DIST_LABEL_PIXEL)
        ys, xs = np.nonzero(~missing)
        lut = np.zeros(nearest.max() + 1, dtype=np.int32)
        lut[nearest[ys, xs]] = label[ys, xs]
        label = np.where(missing, lut[nearest], label)
    yy, xx = np.mgrid[0:g, 0:g]
    q = np.stack([xx.ravel(), yy.ravel()], 1).astype(np.float64)
    label = label.ravel().copy()
    weights = _barycentric(grid_pts, triangles[label], q)
    # The raster rounds: a point just outside a sliver triangle (closed lips) would extrapolate
    # with huge weights. Such points take the triangle that holds them best instead.
    bad = np.nonzero(weights.min(axis=1) < -1e-3)[0]
    for chunk in np.array_split(bad, max(1, len(bad) // 256)):
        if len(chunk) == 0:
            continue
        w_all = _barycentric(grid_pts, triangles[None, :, :].repeat(len(chunk), 0).reshape(-1, 3),
                             q[chunk].repeat(len(triangles), 0)).reshape(len(chunk), len(triangles), 3)
        label[chunk] = w_all.min(axis=2).argmax(axis=1)
    tri = triangles[label]
    weights = _barycentric(grid_pts, tri, q)
    return tri.astype(np.int64), weights.astype(np.float32)


def _barycentric(pts: np.ndarray, tri: np.ndarray, q: np.ndarray) -> np.ndarray:
    a, b, c = pts[tri[:, 0]], pts[tri[:, 1]], pts[tri[:, 2]]
    v0, v1, v2 = b - a, c - a, q - a
    den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
    den = np.where(np.abs(den) < 1e-9, 1e-9, den)
    wb = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
    wc = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
    return np.stack([1 - wb - wc, wb, wc], 1)
