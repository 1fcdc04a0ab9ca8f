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
from functools import cached_property

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
# Untangler (see there): 16 steps leave no fold on the evaluation footage and cost ~1-3 ms on
# the frames that fold (none on those that do not).
UNTANGLE_STEPS = 16
UNTANGLE_SHAPE = 0.6  # per step, how much of its rest offset from its neighbours a point keeps
UNTANGLE_OVERSHOOT = 0.1  # of the way to the target, beyond what the worst fold needs
RING_GIVE = 0.5  # share of its motion a ring point keeps when it runs into the still band


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
        ring = self.source_points[n:n + RING_POINTS]
        # Ring points pulled onto the crop border (the image edge clipped the crop) stay still
        # with it: the warp is the identity all round the border.
        on_border = ~self._movable[n:n + RING_POINTS]
        dst[n:n + RING_POINTS] = np.where(on_border[:, None], ring, ring_shift(self.inner_ring) - (self.crop.x0, self.crop.y0))
        dst = self._untangler(dst)
        scale = np.array([2.0 / max(self.crop.width - 1, 1), 2.0 / max(self.crop.height - 1, 1)])
        return ((dst - self.source_points) * scale).astype(np.float32)

    def head_room(self) -> np.ndarray:
        """How far (pixels) the moving head ring can shift left, right, up and down before it
        meets the still outer ring or the crop border: the band it would squeeze."""
        n = lm.NUM_LANDMARKS
        inner = self.source_points[n:n + RING_POINTS]
        outer = self.source_points[n + RING_POINTS:n + 2 * RING_POINTS]
        lo_i, hi_i = inner.min(axis=0), inner.max(axis=0)
        lo_o, hi_o = outer.min(axis=0), outer.max(axis=0)
        return np.array([lo_i[0] - lo_o[0], hi_o[0] - hi_i[0], lo_i[1] - lo_o[1], hi_o[1] - hi_i[1]])

    @cached_property
    def _movable(self) -> np.ndarray:
        """Landmarks and the inner ring move; the outer ring and the border stay, and so do ring
        points pulled onto the crop border (the image edge clipped the crop): the warp is the
        identity all round the border."""
        n = lm.NUM_LANDMARKS
        movable = np.arange(len(self.source_points)) < n + RING_POINTS
        ring = self.source_points[n:n + RING_POINTS]
        movable[n:n + RING_POINTS] &= ~np.any((ring <= 0) | (ring >= (self.crop.width - 1, self.crop.height - 1)), axis=1)
        return movable

    @cached_property
    def _untangler(self) -> "Untangler":
        return Untangler(self.source_points, self.triangles, self._movable)


def _signed_areas(pts: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Signed doubled areas of the triangles `tri` (ids into `pts`)."""
    return _signed_areas_of(pts[tri])


def _signed_areas_of(corners: np.ndarray) -> np.ndarray:
    """Signed doubled areas of (T, 3, 2) triangles."""
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def _padded(rows: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """(count, K) table of `values` grouped by `rows`, padded with -1."""
    order = np.argsort(rows, kind="stable")
    rows, values = rows[order], values[order]
    deg = np.bincount(rows, minlength=count)
    out = np.full((count, max(int(deg.max(initial=0)), 1)), -1, np.int64)
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    out[rows, np.arange(len(rows)) - start[rows]] = values
    return out


class Untangler:
    """Posed control points with no triangle turned over.

    A triangle whose orientation flips between the rest and the posed points is a fold: the
    backward warp shows it as a tear or a doubled strip (the far cheek passing over the nose on
    a head turn, the head ring running over the still band or the crop border, the lips
    closing past each other). Vertices of flipped triangles (the `movable` points only;
    the outer ring and the border stay pinned) move towards the mean displacement of their
    neighbours, a few times over, so the fold becomes a compression, which is what an
    occluding edge looks like in 2-D. A fold wider than one ring of neighbours does not open
    by averaging displacements (the neighbours moved alike), so the later steps lean towards
    the neighbours' centroid; head-ring points that ran into a pinned point also give up half
    of their motion, towards the still band. Points of triangles that do not fold are left
    exactly where they were asked to be.
    """

    def __init__(self, src: np.ndarray, triangles: np.ndarray, movable: np.ndarray,
                 steps: int = UNTANGLE_STEPS) -> None:
        self.src, self.triangles, self.movable, self.steps = src, triangles, movable, steps
        rest = _signed_areas(src, triangles)
        self.sign = np.sign(rest)
        self.tol = 1e-3 * np.abs(rest) + 1e-6
        v, t = len(src), len(triangles)
        e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
        e = np.unique(np.concatenate([e, e[:, ::-1]]), axis=0)
        self.neighbours = _padded(e[:, 0], e[:, 1], v)
        self.valid = (self.neighbours >= 0)[..., None]
        self.count = np.maximum(self.valid.sum(axis=1), 1)
        # Rest offset of each point from its neighbours' centroid.
        self.offset = src - (src[self.neighbours] * self.valid).sum(axis=1) / self.count
        self.incident = _padded(triangles.ravel(), np.repeat(np.arange(t), 3), v)
        self.pinned_tri = np.any(~movable[triangles], axis=1)

    def __call__(self, dst: np.ndarray) -> np.ndarray:
        tri, sign, tol = self.triangles, self.sign, self.tol
        bad = _signed_areas(dst, tri) * sign < -tol
        if not bad.any():
            return dst
        pts = dst.copy()
        v_mark = np.zeros(len(pts), bool)
        t_mark = np.zeros(len(tri) + 1, bool)  # the last one catches the -1 padding
        for step in range(self.steps):
            idx = np.nonzero(bad)[0]
            if len(idx) == 0:
                break
            v_mark[:] = False
            v_mark[tri[idx]] = True
            verts = np.nonzero(v_mark & self.movable)[0]
            if len(verts) == 0:
                break
            nb, w = self.neighbours[verts], self.valid[verts]
            mean_disp = ((pts[nb] - self.src[nb]) * w).sum(axis=1) / self.count[verts]
            disp = mean_disp + (UNTANGLE_SHAPE ** step - 1.0) * self.offset[verts]
            against = idx[self.pinned_tri[idx]]
            if len(against):
                v_mark[:] = False
                v_mark[tri[against]] = True
                disp[(verts >= lm.NUM_LANDMARKS) & v_mark[verts]] *= RING_GIVE
            # Each point moves towards that target only as far as its worst folded triangle
            # needs (plus a little), so a slight fold is undone by a slight move and the
            # warp changes continuously as a fold starts: no popping from frame to frame.
            target = self.src[verts] + disp
            slot = np.full(len(pts), -1)
            slot[verts] = np.arange(len(verts))
            need = np.zeros(len(verts))
            for k in range(3):
                v = tri[idx, k]
                ok = self.movable[v]
                if not ok.any():
                    continue
                rows, v = idx[ok], v[ok]
                corners = pts[tri[rows]]
                a0 = _signed_areas_of(corners) * sign[rows]
                corners[:, k] = target[slot[v]]
                a1 = _signed_areas_of(corners) * sign[rows]
                t = np.where(a1 > a0, (tol[rows] - a0) / np.maximum(a1 - a0, 1e-12), 1.0)
                np.maximum.at(need, slot[v], np.clip(t, 0.0, 1.0))
            need = np.minimum(need + UNTANGLE_OVERSHOOT, 1.0)[:, None]
            pts[verts] += (target - pts[verts]) * need
            t_mark[:] = False
            t_mark[self.incident[verts]] = True
            touched = np.nonzero(t_mark[:-1])[0]
            bad[touched] = _signed_areas(pts, tri[touched]) * sign[touched] < -tol[touched]
        return pts


def _ellipse(center: np.ndarray, radii: np.ndarray, count: int) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, count, endpoint=False)
    return np.stack([center[0] + radii[0] * np.cos(t), center[1] + radii[1] * np.sin(t)], axis=1)


@dataclass(frozen=True)
class RingGeometry:
    """The two ellipses around a face: the inner ring moves with the head, the outer stays."""

    centre: np.ndarray
    inner_radii: np.ndarray
    outer_radii: np.ndarray

    def outer_extent(self, direction: np.ndarray) -> float:
        """How far the outer ring reaches from the centre along a unit direction."""
        a, b = self.outer_radii
        return float(1.0 / np.hypot(direction[0] / a, direction[1] / b))


def ring_geometry(landmarks: np.ndarray, reach: float = 1.0) -> RingGeometry:
    """`reach` < 1 pulls both rings in, for faces with neighbours (group portraits)."""
    oval = landmarks[list(lm.FACE_OVAL), :2]
    lo, hi = oval.min(axis=0), oval.max(axis=0)
    centre = (lo + hi) / 2
    half = (hi - lo) / 2
    # The face oval stops at the hairline: the ring reaches up over the hair and out past the
    # ears; the outer ring leaves a band wide enough for the neck to stretch without creasing.
    inner_c = centre + np.array([0.0, -0.15 * half[1]])
    inner_r = half * np.array([1.5, 1.6]) * reach
    return RingGeometry(inner_c, inner_r, inner_r * 1.5)


def build_rig(landmarks: np.ndarray, image_size: tuple[int, int], grid_size: int = DEFAULT_GRID_SIZE,
              reach: float = 1.0) -> WarpRig:
    w, h = image_size
    rings = ring_geometry(landmarks, reach)
    inner_c, inner_r, outer_r = rings.centre, rings.inner_radii, rings.outer_radii
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

    # The ring moves from where it was pulled in to, or the image would warp even at rest.
    inner = pts[lm.NUM_LANDMARKS:lm.NUM_LANDMARKS + RING_POINTS] + origin

    triangles = _delaunay(pts, (cw, ch))
    tri_index, tri_weight = _rasterise(pts, triangles, (cw, ch), grid_size)
    return WarpRig(crop, grid_size, pts, inner, triangles, tri_index, tri_weight)


def _delaunay(pts: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    """Delaunay triangles (ids into `pts`) covering the crop [0, size[0]] x [0, size[1]].

    Only points inside the crop are triangulated. Landmarks can lie outside it where the face
    runs past the image edge (a chin or forehead cut off): they are left out, so the crop's
    corner and border points bound the triangulation, the triangles cover the crop exactly and
    the warp stays the identity on its border. Left-out landmarks drive nothing.
    """
    tol = 1e-3
    inside = np.nonzero(np.all((pts >= -tol) & (pts <= np.asarray(size) + tol), axis=1))[0]
    used = np.clip(pts[inside], 0.0, size)
    margin = 10.0
    subdiv = cv2.Subdiv2D((int(-margin), int(-margin), int(size[0] + 2 * margin + 1), int(size[1] + 2 * margin + 1)))
    # Subdiv2D merges coincident points (closed lips, iris): jitter-free ids come from
    # inserting one by one and looking the vertices up afterwards.
    for p in used:
        subdiv.insert((float(p[0]), float(p[1])))
    tri = subdiv.getTriangleList().reshape(-1, 3, 2)
    # Triangles on Subdiv2D's virtual outer vertices lie partly outside the crop: drop them.
    keep = np.all((tri[..., 0] >= -tol) & (tri[..., 0] <= size[0] + tol)
                  & (tri[..., 1] >= -tol) & (tri[..., 1] <= size[1] + tol), axis=1)
    tri = tri[keep]
    d = np.linalg.norm(tri[:, :, None, :] - used[None, None, :, :], axis=-1)
    ids = inside[d.argmin(axis=-1)]
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
