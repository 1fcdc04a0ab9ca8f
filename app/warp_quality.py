"""How the final sampling map looks to a viewer: folds, extreme stretch, duplication and pops.

Measured on the very map handed to `cv2.remap` (crop pixels, output pixel -> avatar pixel), after
every correction the renderer makes to it, because that map is what produces the pixels: a
measure on the landmark mesh misses whatever happens between the landmarks, in the upsampling
and in the lid sharpening.

- fold: the map's Jacobian determinant is <= 0 (the output shows the portrait mirrored: a tear),
  by central differences or on any pixel cell (`cell_folds`: a crease one pixel wide);
- stretch: the local area ratio is above 4 or below 1/4 (smears and squeezes);
- duplication: one piece of the portrait shows in two places of the output far apart;
- pop: the map jumps between frames much further than the posed landmarks moved.

Openings (the mouth interior, which the renderer paints, and the eyes, which shut) are left out
of all three: a 2-D warp may squeeze a shutting eye to a line and stretch the lips apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import landmarks as lm
from .eyes import eye_contour

MOVED_PX = 0.5  # a pixel whose map moved less than this from the identity is not animated
STRETCH_LIMIT = 4.0
DUPLICATE_CELL = 2.0  # source pixels per cell when looking for content shown twice
DUPLICATE_MIN_PX = 4.0  # output pixels apart below which two copies are one (blur, rounding)


@dataclass(frozen=True)
class WarpQuality:
    """Shares are percentages of the animated pixels (0 where nothing moves)."""

    animated_pixels: int
    fold_pct: float
    stretch_pct: float
    duplicated_pct: float

    def as_dict(self) -> dict[str, float]:
        return {"animated_pixels": float(self.animated_pixels), "fold_pct": self.fold_pct,
                "stretch_pct": self.stretch_pct, "duplicated_pct": self.duplicated_pct}


@dataclass(frozen=True)
class QualityMaps:
    """Per-pixel flags, for contact sheets that show what the numbers count."""

    animated: np.ndarray
    fold: np.ndarray
    stretch: np.ndarray
    duplicated: np.ndarray


def jacobian(mx: np.ndarray, my: np.ndarray) -> tuple[np.ndarray, ...]:
    """d(mx, my)/d(x, y) by central differences (one-sided at the edges)."""
    mxy, mxx = np.gradient(mx.astype(np.float64))
    myy, myx = np.gradient(my.astype(np.float64))
    return mxx, mxy, myx, myy


def cell_folds(mx: np.ndarray, my: np.ndarray) -> np.ndarray:
    """Pixels whose cell (the pixel and its right and lower neighbours) the map turns over at
    any of its corners. Central differences span two pixels and step over a crease one pixel
    wide: a rolled, shifted head showed 45 such pixels at the crown that they rated fold-free."""
    mx, my = mx.astype(np.float64), my.astype(np.float64)
    ax, ay = np.diff(mx, axis=1), np.diff(my, axis=1)  # along x: (H, W-1)
    dx, dy = np.diff(mx, axis=0), np.diff(my, axis=0)  # along y: (H-1, W)
    worst = np.full((mx.shape[0] - 1, mx.shape[1] - 1), np.inf)
    for hx, hy in ((ax[:-1], ay[:-1]), (ax[1:], ay[1:])):
        for vx, vy in ((dx[:, :-1], dy[:, :-1]), (dx[:, 1:], dy[:, 1:])):
            worst = np.minimum(worst, hx * vy - hy * vx)
    out = np.zeros(mx.shape, bool)
    out[:-1, :-1] = worst <= 0
    return out


def openings_mask(shape: tuple[int, int], mx: np.ndarray, my: np.ndarray,
                  posed: np.ndarray | None, rest: np.ndarray | None) -> np.ndarray:
    """Output pixels that belong to an opening: inside the posed inner lips (the renderer paints
    the mouth interior there) or the posed eyes, or sampling the avatar's own eyes or inner lips
    at rest.
    `posed`, `rest`: (478, 2+) landmarks in crop pixels."""
    h, w = shape
    out = np.zeros((h, w), bool)
    if posed is None or rest is None:
        return out
    # Output side: between the posed lips (painted over) and between the posed lids, where a
    # shutting eye's map jumps from one lid's margin to the other's.
    mouth = np.zeros((h, w), np.uint8)
    for ring in (posed[list(lm.INNER_LIPS), :2], eye_contour(posed, 0), eye_contour(posed, 1)):
        cv2.fillPoly(mouth, [np.round(ring).astype(np.int32)], 1)
    # Source side: rasterise the rest openings, then look up where each output pixel samples.
    x0, y0 = np.floor(rest[:, :2].min(axis=0)).astype(int) - 4
    x1, y1 = np.ceil(rest[:, :2].max(axis=0)).astype(int) + 4
    src = np.zeros((y1 - y0, x1 - x0), np.uint8)
    size = max(float(np.ptp(rest[list(lm.FACE_OVAL), 0])), 1.0)
    pad = max(1, int(round(0.01 * size)))
    for ring in (eye_contour(rest, 0), eye_contour(rest, 1), rest[list(lm.INNER_LIPS), :2]):
        cv2.fillPoly(src, [np.round(ring - (x0, y0)).astype(np.int32)], 1)
    src = cv2.dilate(src, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8))
    ix = np.clip(np.round(mx).astype(np.int64) - x0, 0, src.shape[1] - 1)
    iy = np.clip(np.round(my).astype(np.int64) - y0, 0, src.shape[0] - 1)
    inside = (mx >= x0) & (mx < x1) & (my >= y0) & (my < y1)
    out |= inside & (src[iy, ix] > 0)
    out |= cv2.dilate(mouth, np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)) > 0
    return out


def analyse_map(mx: np.ndarray, my: np.ndarray, openings: np.ndarray | None = None,
                flags: bool = False) -> WarpQuality | tuple[WarpQuality, QualityMaps]:
    """Fold, stretch and duplication shares of one backward map (crop pixels)."""
    h, w = mx.shape
    ys, xs = np.mgrid[0:h, 0:w]
    moved = np.hypot(mx - xs, my - ys) > MOVED_PX
    # A moved pixel's neighbours take part in its finite differences: count them too.
    animated = cv2.dilate(moved.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    openings = np.zeros_like(animated) if openings is None else openings
    mxx, mxy, myx, myy = jacobian(mx, my)
    det = mxx * myy - mxy * myx
    judged = animated & ~openings
    fold = judged & ((det <= 0) | cell_folds(mx, my))
    stretch = judged & (det > 0) & ((det > STRETCH_LIMIT) | (det < 1.0 / STRETCH_LIMIT))
    duplicated = _duplicated(mx, my, xs, ys, animated, (mxx, mxy, myx, myy)) & judged
    n = int(animated.sum())

    def pct(mask: np.ndarray) -> float:
        return 100.0 * float(mask.sum()) / n if n else 0.0

    quality = WarpQuality(n, pct(fold), pct(stretch), pct(duplicated))
    if flags:
        return quality, QualityMaps(animated, fold, stretch, duplicated)
    return quality


def _duplicated(mx, my, xs, ys, animated, jac) -> np.ndarray:
    """Output pixels whose source is also reached from somewhere else far away.

    The output pixels are grouped by the source cell they sample; a cell reached from one place
    has all its pixels near their mean output position, within what the local Jacobian says a
    cell spans in the output; a cell reached from two places far apart has its mean between
    them, far from both.
    """
    sel = np.nonzero(animated.ravel())[0]
    if len(sel) == 0:
        return np.zeros_like(animated)
    sx, sy = mx.ravel()[sel], my.ravel()[sel]
    cx = np.floor(sx / DUPLICATE_CELL).astype(np.int64)
    cy = np.floor(sy / DUPLICATE_CELL).astype(np.int64)
    cx -= cx.min()
    cy -= cy.min()
    key = cy * (cx.max() + 1) + cx
    _, cell = np.unique(key, return_inverse=True)
    count = np.bincount(cell)
    ox, oy = xs.ravel()[sel].astype(np.float64), ys.ravel()[sel].astype(np.float64)
    mean_x = np.bincount(cell, ox) / count
    mean_y = np.bincount(cell, oy) / count
    off = np.hypot(ox - mean_x[cell], oy - mean_y[cell])
    mxx, mxy, myx, myy = (j.ravel()[sel] for j in jac)
    # Largest singular value of the inverse Jacobian: how far one source step reaches in the
    # output. Where the map is singular (a fold's crease) it is capped; folds are counted apart.
    det = np.abs(mxx * myy - mxy * myx)
    frob = mxx ** 2 + mxy ** 2 + myx ** 2 + myy ** 2
    smin = np.sqrt(np.maximum(frob / 2 - np.sqrt(np.maximum(frob ** 2 / 4 - det ** 2, 0.0)), 1e-6))
    reach = np.minimum(DUPLICATE_CELL / smin, 50.0)
    flagged = off > np.maximum(DUPLICATE_MIN_PX, 2.0 * reach)
    out = np.zeros(animated.size, bool)
    out[sel] = flagged
    return out.reshape(animated.shape)


def pop(prev: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray],
        landmark_motion_px: float, openings: np.ndarray | None = None) -> float:
    """How far the map jumped between two frames (99th percentile over the pixels that moved,
    output pixels) for each pixel the posed landmarks moved (their largest motion, plus one
    pixel so a still face does not divide by zero). About 1 or less for a smooth map; a patch
    that pops in or out reads several times that. `openings`: pixels left out (the mouth
    interior and the eyes in either frame: a mouth that starts to open shows its whole
    interior at once, by design, and it is painted over)."""
    jump = np.hypot(cur[0] - prev[0], cur[1] - prev[1])
    moved = jump > 0.05
    if openings is not None:
        moved &= ~openings
    if not moved.any():
        return 0.0
    return float(np.percentile(jump[moved], 99) / (landmark_motion_px + 1.0))
