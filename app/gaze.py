"""Gaze: the avatar's own iris, moved inside its eye opening to where the pose puts it.

The warp alone cannot move an iris: its triangles join the iris to the lids, so a glance
smears iris, sclera and lid together and MediaPipe on the output barely saw the iris move
(gaze correlation about 0 on lp_d3). Here, once per avatar, each eye is split into an iris
patch (its own colours and catchlight) and a clean plate with the iris painted out (its own
sclera and lid shadows). Per frame the plate is sampled through the warp's own maps (so the
sclera follows the lids and the head) and the iris is laid over it at its posed place, clipped
to the posed lids, so lids cover it on blinks and whatever it uncovers is the avatar's sclera.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import landmarks as lm
from .eyes import eye_contour, openness

_IRIS = (lm.RIGHT_IRIS, lm.LEFT_IRIS)
SHUT_BELOW = 0.3  # relative openness under which the eye is left to the lids (eyes.py)
MIN_IRIS_RADIUS = 2.0
IRIS_SCALE = 1.0  # pixels: smaller irises are left to the warp


@dataclass(frozen=True)
class IrisPatch:
    image: np.ndarray  # BGR, square, iris centred
    alpha: np.ndarray  # float32 0..1, the iris disc (anti-aliased)
    centre: np.ndarray  # (2,) rest centre, crop pixels
    radius: float


def _disc(size: int, radius: float) -> np.ndarray:
    c = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.clip(radius + 0.5 - np.hypot(xs - c, ys - c), 0.0, 1.0)


class GazeLayer:
    """Per-avatar eye parts (built once) and the per-frame iris placement."""

    def __init__(self, crop_image: np.ndarray, rest: np.ndarray) -> None:
        """`crop_image`: the avatar's rig crop, BGR; `rest`: its landmarks in crop pixels."""
        h, w = crop_image.shape[:2]
        self.rest = rest
        self.patches: list[IrisPatch | None] = []
        paint_out = np.zeros((h, w), np.uint8)
        for eye in (0, 1):  # the per-eye masks are joined; each eye's sclera is sampled apart
            centre = rest[_IRIS[eye][0], :2]
            radius = IRIS_SCALE * float(np.linalg.norm(rest[list(_IRIS[eye][1:]), :2] - centre, axis=1).mean())
            opening = np.zeros((h, w), np.uint8)
            cv2.fillPoly(opening, [np.round(eye_contour(rest, eye) * 4).astype(np.int32)], 255, shift=2)
            half = int(np.ceil(radius)) + 2
            x0, y0 = np.round(centre).astype(int) - half
            if radius < MIN_IRIS_RADIUS or x0 < 0 or y0 < 0 or x0 + 2 * half + 1 > w or y0 + 2 * half + 1 > h:
                self.patches.append(None)
                continue
            box = (slice(y0, y0 + 2 * half + 1), slice(x0, x0 + 2 * half + 1))
            disc = _disc(2 * half + 1, radius)
            seen = (opening[box] > 0) & (disc > 0.5)
            patch = _complete_iris(crop_image[box].copy(), seen)
            self.patches.append(IrisPatch(patch, disc, centre.copy(), radius))
            # The iris and its dark rim (a pixel past its landmark radius) are painted out.
            ring = (_disc(2 * half + 1, radius + 1.0) > 0.05).astype(np.uint8) * 255
            paint_out[box] = np.maximum(paint_out[box], ring & opening[box])
        self.plate = _sclera_plate(crop_image, rest, paint_out)

    def apply(self, canvas: np.ndarray, mx: np.ndarray, my: np.ndarray, posed: np.ndarray,
              neutral_in_pose: np.ndarray, scale: float, rotation: np.ndarray) -> None:
        """Lay each posed iris into `canvas` (the warped crop, in place). `mx`, `my`: the warp's
        backward maps; `posed`: landmarks in crop pixels; `scale`, `rotation` (2x2): the head's
        2-D similarity, which the iris patch follows; `neutral_in_pose`: the rest landmarks
        moved with it. An iris where the head alone puts it is the warp's (a still portrait
        stays pixel-identical); the layer fades in over a fifth of a pixel of gaze (over a
        whole pixel, a small eye's glances were half the warp's unmoved iris: a ghost)."""
        h, w = canvas.shape[:2]
        for eye, patch in enumerate(self.patches):
            if patch is None:
                continue
            k = openness(posed, eye) / max(openness(self.rest, eye), 1e-6)
            gaze = float(np.linalg.norm(posed[_IRIS[eye][0], :2] - neutral_in_pose[_IRIS[eye][0], :2]))
            fade = float(np.clip((gaze - 0.02) / 0.2, 0.0, 1.0))
            if k < SHUT_BELOW or fade <= 0.0:
                continue
            contour = eye_contour(posed, eye)
            r = patch.radius * scale
            x0, y0 = np.maximum(np.floor(contour.min(axis=0) - r).astype(int) - 2, 0)
            x1, y1 = np.minimum(np.ceil(contour.max(axis=0) + r).astype(int) + 3, (w, h))
            if x1 - x0 < 3 or y1 - y0 < 3:
                continue
            sclera = cv2.remap(self.plate, mx[y0:y1, x0:x1], my[y0:y1, x0:x1], cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            # Iris patch -> canvas: the head's rotation and scale about the patch centre, then
            # to the posed iris centre.
            size = patch.image.shape[0]
            c = (size - 1) / 2
            m = np.zeros((2, 3))
            m[:, :2] = rotation[:2, :2] * scale
            m[:, 2] = posed[_IRIS[eye][0], :2] - (x0, y0) - m[:, :2] @ (c, c)
            iris = cv2.warpAffine(patch.image, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            ia = cv2.warpAffine(patch.alpha, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)[..., None]
            opening = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(opening, [np.round((contour - (x0, y0)) * 4).astype(np.int32)], 255,
                         lineType=cv2.LINE_AA, shift=2)
            # The lids' own anti-aliased edge, no more: an eroded, blurred one cut a pixel off
            # the top and bottom of an iris in a 6-px-tall eye, and left the rest iris there.
            oa = opening
            oa = (oa.astype(np.float32) / 255.0)[..., None] * float(np.clip((k - SHUT_BELOW) / 0.2, 0.0, 1.0)) * fade
            eye_img = sclera * (1.0 - ia) + iris * ia
            region = canvas[y0:y1, x0:x1]
            region[:] = (eye_img * oa + region.astype(np.float32) * (1.0 - oa)).astype(np.uint8)


def _complete_iris(patch: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """The iris patch with its part hidden under the lids at rest filled in from its mirror
    image across the iris's horizontal midline (an iris is about as dark and as textured above
    as below), and from the visible iris's median colour where both halves are hidden. A flat
    median alone showed as a grey crescent when a large iris moved down; lid skin left in the
    patch came along with the iris."""
    if seen.sum() < 5:
        return patch
    mirror = patch[::-1]
    use_mirror = ~seen & seen[::-1]
    patch[use_mirror] = mirror[use_mirror]
    patch[~seen & ~seen[::-1]] = np.median(patch[seen], axis=0).astype(np.uint8)
    return patch


def _sclera_colour(image: np.ndarray, opening: np.ndarray, iris: np.ndarray) -> np.ndarray | None:
    """The eye's own white: the median of the lightest 30% of its opening outside the iris
    (on a small eye most of the rest is lid shadow and lashes). None when too little of it shows."""
    sel = image[(opening > 0) & (iris == 0)].reshape(-1, 3).astype(np.float32)
    if len(sel) < 6:
        return None
    light = sel[sel.sum(axis=1) >= np.quantile(sel.sum(axis=1), 0.7)]
    return np.median(light, axis=0)


def _sclera_plate(image: np.ndarray, rest: np.ndarray, paint_out: np.ndarray) -> np.ndarray:
    """The crop with each iris painted out in the eye's own white.

    The painted-out disc is filled from the eye's own pixels round it inside the opening, never
    from beyond the lids: first along each row between the pixels either side of it, then
    relaxed into a smooth (harmonic) fill of its surroundings. The sclera keeps its own shading
    (darker under the upper lid, lighter at the iris's sides) and meets the rest of the eye
    with no edge. (An inpainting from the ring round the iris drew the lashes and lid shadow
    in: a grey smear that MediaPipe read as a dark eye; one flat sclera colour showed as a
    bright halo round a moved iris on a painting whose white lies in shadow.) A row with
    nothing of the eye either side starts from the eye's white (`_sclera_colour`).
    """
    if not paint_out.any():
        return image
    plate = image.astype(np.float32)
    h, w = image.shape[:2]
    for eye in (0, 1):
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(opening, [np.round(eye_contour(rest, eye) * 4).astype(np.int32)], 255, shift=2)
        region = (paint_out > 0) & (opening > 0)
        if not region.any():
            continue
        white = _sclera_colour(image, opening, paint_out)
        known = (opening > 0) & ~region
        for y in np.flatnonzero(region.any(axis=1)):
            xs = np.flatnonzero(region[y])
            ks = np.flatnonzero(known[y])
            if len(ks):
                for c in range(3):
                    plate[y, xs, c] = np.interp(xs, ks, plate[y, ks, c])
            elif white is not None:
                plate[y, xs] = white
        _smooth_inside(plate, region, opening > 0)
    return np.clip(plate + 0.5, 0, 255).astype(np.uint8)


def _smooth_inside(image: np.ndarray, region: np.ndarray, inside: np.ndarray, steps: int = 200) -> None:
    """Relax `image` (float, in place) over `region` towards the harmonic fill of its
    surroundings within `inside`: each pixel the mean of its neighbours in the eye, none from
    beyond the lids. Row-wise interpolation alone left bright streaks along the upper lid,
    where each row saw only the white far to its sides. Jacobi steps on a box a few dozen
    pixels wide, once per avatar."""
    ys, xs = np.nonzero(region)
    y0, y1, x0, x1 = ys.min() - 1, ys.max() + 2, xs.min() - 1, xs.max() + 2
    y0, x0 = max(y0, 0), max(x0, 0)
    box = image[y0:y1, x0:x1]
    fill = region[y0:y1, x0:x1]
    ok = np.pad(inside[y0:y1, x0:x1], 1).astype(np.float32)
    count = ok[:-2, 1:-1] + ok[2:, 1:-1] + ok[1:-1, :-2] + ok[1:-1, 2:]
    live = fill & (count > 0)
    for _ in range(steps):
        v = np.pad(box * ok[1:-1, 1:-1, None], ((1, 1), (1, 1), (0, 0)))
        total = v[:-2, 1:-1] + v[2:, 1:-1] + v[1:-1, :-2] + v[1:-1, 2:]
        box[live] = total[live] / count[live, None]
