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

from models.warp_field import BORDER_POINTS_PER_SIDE, DEFAULT_GRID_SIZE, NUM_CONTROL_POINTS, RING_POINTS

from . import landmarks as lm

# The exported model fixes the control-point count and the rig lays out its own: landmarks,
# two rings, the border. Landmarks of another count would feed the model the wrong shape, so
# fail at import rather than at the first frame.
assert lm.NUM_LANDMARKS + 2 * RING_POINTS + 4 * BORDER_POINTS_PER_SIDE == NUM_CONTROL_POINTS, lm.NUM_LANDMARKS

BORDER_CELLS = 2.0  # grid cells from the crop border within which points stay still, and over which they are freed
BORDER_SQUEEZE = 0.5  # share of its distance to the crop border a point always keeps


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
    # (N, 2) pixels: where each landmark's control point lies from the landmark itself, at rest
    # and posed alike (`jaw_offsets`: the jaw's, a little outside it, on the face's edge).
    landmark_offset: np.ndarray | None = None

    def displacement(self, posed_landmarks: np.ndarray, ring_shift) -> np.ndarray:
        """(V, 2) control-point displacement in normalised crop units ([-1, 1] spans the crop)."""
        dst = self.source_points.copy()
        n = lm.NUM_LANDMARKS
        dst[:n] = posed_landmarks[:, :2] - (self.crop.x0, self.crop.y0)
        if self.landmark_offset is not None:
            dst[:n] += self.landmark_offset
        ring = self.source_points[n:n + RING_POINTS]
        # Ring points pulled onto the crop border (the image edge clipped the crop) stay still
        # with it: the warp is the identity all round the border.
        on_border = ~self._movable[n:n + RING_POINTS]
        dst[n:n + RING_POINTS] = np.where(on_border[:, None], ring, ring_shift(self.inner_ring) - (self.crop.x0, self.crop.y0))
        dst = self._keep_off_border(dst)
        dst[n:n + RING_POINTS] = ring + (dst[n:n + RING_POINTS] - ring) * self._ring_share[:, None]
        scale = np.array([2.0 / max(self.crop.width - 1, 1), 2.0 / max(self.crop.height - 1, 1)])
        return ((dst - self.source_points) * scale).astype(np.float32)

    def _keep_off_border(self, dst: np.ndarray) -> np.ndarray:
        """Points near the still crop border move less, and never squeeze their band to the
        border to under half its width: a band only a few grid cells wide cannot hold a strong
        squeeze or stretch, and the flow folds there numerically (a face or a ring crowding an
        image edge)."""
        src = self.source_points
        size = np.array([self.crop.width - 1, self.crop.height - 1], np.float64)
        out = src + (dst - src) * self._border_weight()[:, None]
        out = np.clip(out, src * BORDER_SQUEEZE, size - (size - src) * BORDER_SQUEEZE)
        return np.where(self._movable[:, None], out, src)

    def _border_weight(self) -> np.ndarray:
        """(V,) share of its asked-for move each control point is given: none within
        BORDER_CELLS grid cells of the crop border (or past it), all of it from twice that."""
        src = self.source_points
        size = np.array([self.crop.width - 1, self.crop.height - 1], np.float64)
        cell = _grid_cell(size, self.grid_size)
        near = np.minimum(src, size - src).min(axis=1)
        return np.clip((near - BORDER_CELLS * cell) / (BORDER_CELLS * cell), 0.0, 1.0)

    def crown_share(self) -> float:
        """The share of the head's move that the ring over the hair follows, all of it alike:
        that of its most held point (`_border_weight`; 0 where the image edge pinned one).
        Held point by point, a crown near the picture's top stayed there while the ring's sides
        followed a shift, and the hair between was drawn up into a cone."""
        n = lm.NUM_LANDMARKS
        ring = self.source_points[n:n + RING_POINTS]
        held = np.where(self._movable[n:n + RING_POINTS], self._border_weight()[n:n + RING_POINTS], 0.0)
        # The crown: the ring's top third (within 60 degrees of straight up). Held at its sides
        # the ring only stretches the hair beside the face, as any band round a moving head.
        mid, top = ring[:, 1].mean(), ring[:, 1].min()
        return float(held[ring[:, 1] <= mid - 0.5 * (mid - top)].min())

    @cached_property
    def _ring_share(self) -> np.ndarray:
        """(R,) share of its move each moving-ring point is given on top of its own border
        hold: the crown's (`crown_share`) over the top third, easing to all of it by the
        ring's middle (beside the face and over the neck a point-by-point hold only stretches
        the band round the head)."""
        n = lm.NUM_LANDMARKS
        ring = self.source_points[n:n + RING_POINTS]
        mid, top = ring[:, 1].mean(), ring[:, 1].min()
        down = np.clip((ring[:, 1] - (mid - 0.5 * (mid - top))) / max(0.5 * (mid - top), 1e-6), 0.0, 1.0)
        own = np.maximum(self._border_weight()[n:n + RING_POINTS], 1e-6)
        crown = self.crown_share()
        # The border hold is already applied: the share on top brings the upper points down to
        # the crown's (never above their own).
        target = np.minimum(own, crown + (own - crown) * down)
        return np.clip(target / own, 0.0, 1.0)

    def landmark_reach(self) -> np.ndarray:
        """(478,) share of each landmark's motion that reaches the warp: all of it in the open,
        less within a few grid cells of the crop border, none on or past it (where the picture
        cuts the face off, the landmark drives nothing)."""
        return self._border_weight()[:lm.NUM_LANDMARKS]

    def head_room(self) -> np.ndarray:
        """How far (pixels) the moving head ring can shift left, right, up and down before it
        meets the still outer ring or the crop border: the band it would squeeze."""
        n = lm.NUM_LANDMARKS
        inner = self.source_points[n:n + RING_POINTS]
        outer = self.source_points[n + RING_POINTS:n + 2 * RING_POINTS]
        lo_i, hi_i = inner.min(axis=0), inner.max(axis=0)
        lo_o, hi_o = outer.min(axis=0), outer.max(axis=0)
        return np.array([lo_i[0] - lo_o[0], hi_o[0] - hi_i[0], lo_i[1] - lo_o[1], hi_o[1] - hi_i[1]])

    def face_margin(self) -> np.ndarray:
        """How far (pixels) the face's landmarks lie inside the still outer ring (or the crop
        border) on the left, right, top and bottom, 0 where the crop cuts the face off: the
        band that a head shift the other way stretches to fill the gap the face leaves."""
        face = self.source_points[:lm.NUM_LANDMARKS]
        if self.landmark_offset is not None:  # the landmarks', not their control points' (`jaw_offsets`)
            face = face - self.landmark_offset
        still = self.source_points[lm.NUM_LANDMARKS + RING_POINTS:lm.NUM_LANDMARKS + 2 * RING_POINTS]
        lo_f, hi_f = face.min(axis=0), face.max(axis=0)
        lo_s, hi_s = still.min(axis=0), still.max(axis=0)
        return np.maximum([lo_f[0] - lo_s[0], hi_s[0] - hi_f[0], lo_f[1] - lo_s[1], hi_s[1] - hi_f[1]], 0.0)

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
    offset = _within_room(jaw_offsets(landmarks), landmarks[:, :2] - origin, (crop.width - 1, crop.height - 1), grid_size)
    pts = np.concatenate([landmarks[:, :2] + offset - origin, inner - origin, outer - origin, border]).astype(np.float64)
    # Rings may overhang a crop that the image border clipped: pull them inside, they still
    # bound the face there.
    pts[lm.NUM_LANDMARKS:] = np.clip(pts[lm.NUM_LANDMARKS:], [0, 0], [cw, ch])

    # The ring moves from where it was pulled in to, or the image would warp even at rest.
    inner = pts[lm.NUM_LANDMARKS:lm.NUM_LANDMARKS + RING_POINTS] + origin

    triangles = _delaunay(pts, (cw, ch))
    tri_index, tri_weight = _rasterise(pts, triangles, (cw, ch), grid_size)
    return WarpRig(crop, grid_size, pts, inner, triangles, tri_index, tri_weight, offset)


# Face half-sizes beyond the jaw's landmarks at which its control points lie. MediaPipe's oval
# runs a few pixels inside the drawn or photographed jaw: the jaw's edge then lay in the long
# thin triangles between the oval and the ring round the head, each stretched its own way on a
# turn, and the edge bent at each of their seams (a jagged, notched jaw under the ear).
JAW_MARGIN = 0.05


def _grid_cell(span: np.ndarray, grid_size: int) -> float:
    """Crop pixels per step of the warp grid, for a crop `span` (width-1, height-1) pixels."""
    return float(np.max(span)) / max(grid_size - 1, 1)


def _within_room(offset: np.ndarray, points: np.ndarray, size: tuple[int, int], grid_size: int) -> np.ndarray:
    """`offset` shortened where it would carry a point into the band by the crop border where
    control points are held (`WarpRig._border_weight`): a chin pushed down there on a face
    that fills its picture moved less than its landmark, and the jaw with it."""
    span = np.asarray(size, np.float64)
    held = 2 * BORDER_CELLS * _grid_cell(span, grid_size)  # `_border_weight`'s full move starts there
    room = np.minimum(points, span - points).min(axis=1) - held  # how far it may go before the band
    length = np.linalg.norm(offset, axis=1)
    return offset * np.clip(room / np.maximum(length, 1e-9), 0.0, 1.0)[:, None]


def jaw_offsets(landmarks: np.ndarray) -> np.ndarray:
    """(N, 2) pixels: the jaw's oval landmarks' control points moved out along the oval's
    normal by JAW_MARGIN face half-sizes, easing in from the eyes' line down; zero elsewhere."""
    out = np.zeros((len(landmarks), 2))
    idx = list(lm.FACE_OVAL)
    oval = landmarks[idx, :2].astype(np.float64)
    lo, hi = oval.min(axis=0), oval.max(axis=0)
    half = float((hi - lo).mean()) / 2
    centre = (lo + hi) / 2
    tangent = np.roll(oval, -1, axis=0) - np.roll(oval, 1, axis=0)
    normal = np.stack([tangent[:, 1], -tangent[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    normal *= np.sign(np.sum(normal * (oval - centre), axis=1, keepdims=True) + 1e-12)  # outward
    eyes_y = landmarks[[*lm.RIGHT_EYE_CORNERS, *lm.LEFT_EYE_CORNERS], 1].mean()
    ease = np.clip((oval[:, 1] - eyes_y) / max(0.3 * (hi[1] - lo[1]) / 2, 1e-6), 0.0, 1.0)
    out[idx] = normal * (JAW_MARGIN * half * ease)[:, None]
    return out


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
