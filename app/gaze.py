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
    image: np.ndarray  # BGR, square, about the painted iris
    alpha: np.ndarray  # float32 0..1, the iris disc (anti-aliased)
    pivot: np.ndarray  # (2,) the painted iris's centre in the patch's pixels
    offset: np.ndarray  # (2,) the painted centre less the landmarks' iris centre, rest crop pixels
    radius: float


def _disc(size: int, radius: float, centre: np.ndarray) -> np.ndarray:
    cx, cy = centre
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return np.clip(radius + 0.5 - np.hypot(xs - cx, ys - cy), 0.0, 1.0)


class GazeLayer:
    """Per-avatar eye parts (built once) and the per-frame iris placement."""

    def __init__(self, crop_image: np.ndarray, rest: np.ndarray) -> None:
        """`crop_image`: the avatar's rig crop, BGR; `rest`: its landmarks in crop pixels."""
        h, w = crop_image.shape[:2]
        self.rest = rest
        self.patches: list[IrisPatch | None] = []
        paint_out = np.zeros((h, w), np.uint8)
        # Iris painted beyond the lid landmarks (their eye is smaller than the painted one):
        # the layer shows the eye there too, or the iris's rest place stayed on every glance.
        self.beyond = np.zeros((h, w), np.uint8)
        openings, lid_edges = [], []
        for eye in (0, 1):  # the per-eye masks are joined; each eye's sclera is sampled apart
            centre = rest[_IRIS[eye][0], :2]
            radius = IRIS_SCALE * float(np.linalg.norm(rest[list(_IRIS[eye][1:]), :2] - centre, axis=1).mean())
            opening = np.zeros((h, w), np.uint8)
            cv2.fillPoly(opening, [np.round(eye_contour(rest, eye) * 4).astype(np.int32)], 255, shift=2)
            painted, radius = iris_extent(crop_image, opening, centre, radius)
            beyond = iris_beyond_lids(crop_image, opening, painted, radius)
            self.beyond |= beyond
            opening |= beyond
            openings.append(opening)
            lid_edges.append(cv2.dilate(beyond, np.ones((3, 3), np.uint8)) & ~opening)
            half = int(np.ceil(radius)) + 2
            x0, y0 = np.round(painted).astype(int) - half
            if radius < MIN_IRIS_RADIUS or x0 < 0 or y0 < 0 or x0 + 2 * half + 1 > w or y0 + 2 * half + 1 > h:
                self.patches.append(None)
                continue
            box = (slice(y0, y0 + 2 * half + 1), slice(x0, x0 + 2 * half + 1))
            pivot = painted - (x0, y0)
            disc = _disc(2 * half + 1, radius, pivot)
            seen = (opening[box] > 0) & (disc > 0.5)
            patch = _complete_iris(crop_image[box].copy(), seen, pivot)
            self.patches.append(IrisPatch(patch, disc, pivot, painted - centre, radius))
            # The iris and its dark rim (a pixel past its painted radius) are painted out.
            ring = (_disc(2 * half + 1, radius + 1.0, pivot) > 0.05).astype(np.uint8) * 255
            paint_out[box] = np.maximum(paint_out[box], ring & opening[box])
        self.plate = _sclera_plate(crop_image, openings, paint_out, lid_edges)
        self._any_beyond = bool(self.beyond.any())  # most portraits have none: no per-frame remap

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
            # Iris patch -> canvas: the head's rotation and scale about the painted iris's
            # centre, then to the posed iris centre (and the painted centre's own offset from it).
            m = np.zeros((2, 3))
            m[:, :2] = rotation[:2, :2] * scale
            m[:, 2] = posed[_IRIS[eye][0], :2] + m[:, :2] @ patch.offset - (x0, y0) - m[:, :2] @ patch.pivot
            iris = cv2.warpAffine(patch.image, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
            ia = cv2.warpAffine(patch.alpha, m, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR)[..., None]
            opening = np.zeros((y1 - y0, x1 - x0), np.uint8)
            cv2.fillPoly(opening, [np.round((contour - (x0, y0)) * 4).astype(np.int32)], 255,
                         lineType=cv2.LINE_AA, shift=2)
            if self._any_beyond:  # carried by the warp, as the plate is
                beyond = cv2.remap(self.beyond, mx[y0:y1, x0:x1], my[y0:y1, x0:x1], cv2.INTER_LINEAR)
                opening = np.maximum(opening, beyond)
            # The lids' own anti-aliased edge, no more: an eroded, blurred one cut a pixel off
            # the top and bottom of an iris in a 6-px-tall eye, and left the rest iris there.
            oa = opening
            oa = (oa.astype(np.float32) / 255.0)[..., None] * float(np.clip((k - SHUT_BELOW) / 0.2, 0.0, 1.0)) * fade
            eye_img = sclera * (1.0 - ia) + iris * ia
            region = canvas[y0:y1, x0:x1]
            region[:] = (eye_img * oa + region.astype(np.float32) * (1.0 - oa)).astype(np.uint8)


# Widest an iris's painted disc is taken to be, in MediaPipe iris radii: the model knows the
# human iris's size, and a cartoon's (lp_s7) is about a third wider.
IRIS_WIDEST = 1.45
IRIS_WIDER_FROM = 1.1  # a painted iris less than this much wider is left at the landmarks' size
IRIS_OFF_CENTRE = 0.25  # iris radii the painted iris's centre may lie beside the landmarks'
IRIS_MIN_CONTRAST = 40.0  # Lab units between the iris's rim and the eye's white: under it, no edge to find


def iris_extent(image: np.ndarray, opening: np.ndarray, centre: np.ndarray, radius: float) -> tuple[np.ndarray, float]:
    """The iris as painted: its centre and radius (crop pixels), from the landmarks' `centre`
    and `radius`. Along rows through the iris's middle, inward from the farthest it may reach,
    over the eye's white (nearer its colour than the iris rim's) to the iris's first pixel, so
    that a light reflection inside a cartoon's iris never stops a row short; a row that
    meets the lids or no white says nothing. Left at the landmarks' unless white shows on
    both sides of the iris and the painted disc is wider.

    MediaPipe's iris model puts a human-sized iris in any eye, and its centre can sit a pixel
    or two off a painted one. On a cartoon whose iris is a third wider, the iris patch left a
    blue ring behind on every glance (a doubled iris, and a glance that MediaPipe read a third
    as big); taken about the landmarks' centre, a crescent of its rim on the far side. Written
    by hand: OpenCV's circle finders need more of the rim than an eye shows between its lids."""
    h, w = image.shape[:2]
    cx, cy = float(centre[0]), float(centre[1])
    widest = IRIS_WIDEST * radius + IRIS_OFF_CENTRE * radius
    reach = widest + 4
    x0, x1 = int(max(np.floor(cx - reach), 0)), int(min(np.ceil(cx + reach) + 1, w))
    y0, y1 = int(max(np.floor(cy - reach), 0)), int(min(np.ceil(cy + reach) + 1, h))
    unchanged = (np.asarray(centre, np.float64).copy(), radius)
    lab = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2LAB).astype(np.float32)
    inside = opening[y0:y1, x0:x1] > 0
    ys, xs = np.mgrid[y0:y1, x0:x1]
    r = np.hypot(xs - cx, ys - cy)
    rim, white_side = lab[inside & (r >= 0.7 * radius) & (r <= radius)], lab[inside & (r > 1.2 * radius)]
    if len(rim) < 4 or len(white_side) < 6:
        return unchanged
    white = np.median(white_side[white_side[:, 0] >= np.quantile(white_side[:, 0], 0.7)], axis=0)
    rim_c = np.median(rim, axis=0)
    if float(np.linalg.norm(rim_c - white)) < IRIS_MIN_CONTRAST:
        return unchanged
    whiter = np.linalg.norm(lab - white, axis=2) < np.linalg.norm(lab - rim_c, axis=2)
    edges: dict[int, list[float]] = {-1: [], 1: []}
    for y in range(max(int(np.ceil(cy - 0.4 * radius)), y0), min(int(np.floor(cy + 0.4 * radius)), y1 - 1) + 1):
        for step in (-1, 1):
            # Inward from the farthest the iris may reach: past the eye's white to the first
            # pixel of the iris (a reflection inside it is never reached).
            xs_in = np.round(cx + step * np.arange(widest, 0.6 * radius, -1.0)).astype(int) - x0
            xs_in = xs_in[(xs_in >= 0) & (xs_in < x1 - x0)]
            i = _first_after_white(whiter[y - y0, xs_in], inside[y - y0, xs_in])
            if i is not None:
                edges[step].append(float(xs_in[i] + x0) + step * 0.5)  # between it and the white
    found = {k: float(np.median(v)) for k, v in edges.items() if len(v) >= 3}
    if len(found) < 2:
        return unchanged
    painted = np.array([(found[-1] + found[1]) / 2, cy])
    wide = (found[1] - found[-1]) / 2
    if abs(painted[0] - cx) > IRIS_OFF_CENTRE * radius or wide < IRIS_WIDER_FROM * radius:
        return unchanged
    return painted, min(wide, IRIS_WIDEST * radius)


def _first_after_white(light: np.ndarray, inside: np.ndarray) -> int | None:
    """Index of the first pixel, along a walk, that is not `light` after at least two light
    ones in a row, all inside the eye; None if there is none."""
    run = 0
    for i, (is_light, is_in) in enumerate(zip(light, inside)):
        if is_in and not is_light and run >= 2:
            return i
        run = run + 1 if (is_in and is_light) else 0
    return None


def iris_beyond_lids(image: np.ndarray, opening: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """uint8 mask: the iris's pixels just outside the lid landmarks' `opening`, within its
    disc, joined to the opening. A painted eye is often larger than MediaPipe's: on a cartoon
    the lid landmarks lie inside the drawn lid lines, and the bands of iris beyond them stayed
    put when the iris moved (a blue crescent under a glance up, a dark cap beside a glance).

    An iris pixel is nearer the iris's own rim colour than the lid's (the darker pixels round
    the opening, beyond the iris) and the skin's. Where the iris and the lid line are alike in
    colour (a brown eye under dark lashes) nothing is added: the lashes would be painted out."""
    h, w = image.shape[:2]
    out = np.zeros((h, w), np.uint8)
    reach = int(np.ceil(radius + BEYOND_LIDS * radius)) + 2
    cx, cy = int(round(centre[0])), int(round(centre[1]))
    x0, x1 = max(cx - 2 * reach, 0), min(cx + 2 * reach + 1, w)
    y0, y1 = max(cy - 2 * reach, 0), min(cy + 2 * reach + 1, h)
    lab = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2LAB).astype(np.float32)
    inside = opening[y0:y1, x0:x1] > 0
    ys, xs = np.mgrid[y0:y1, x0:x1]
    r = np.hypot(xs - centre[0], ys - centre[1])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * int(BEYOND_LIDS * radius) + 1,) * 2)
    band = (cv2.dilate(inside.astype(np.uint8), kernel) > 0) & ~inside
    rim = lab[inside & (r >= 0.6 * radius) & (r <= radius)]
    lid = lab[band & (r > radius + 2)]
    around = cv2.dilate(inside.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (4 * reach + 1,) * 2))
    ring = lab[(around > 0) & ~band & ~inside]  # the skin round the eye
    if len(rim) < 4 or len(lid) < 6 or len(ring) < 6 or inside[:, cx - x0].sum() < radius:
        return out  # (an eye open less than the iris's radius shows no iris to speak of)
    rim_c = np.median(rim, axis=0)
    lid_c = np.median(lid[lid[:, 0] <= np.quantile(lid[:, 0], 0.33)], axis=0)
    skin_c = np.median(ring, axis=0)
    apart = float(np.linalg.norm(rim_c - lid_c))
    if apart < BEYOND_MIN_APART:
        return out
    # Above the eye the lashes and the lid's shadow lie over the iris, as dark as a photo's
    # iris: there only an iris of another hue than the lid's (a blue cartoon iris under a
    # brown lid line) is looked for, by its hue alone (its shaded top and its light rim).
    hue_apart = float(np.linalg.norm(rim_c[1:] - lid_c[1:]))
    if hue_apart >= BEYOND_MIN_HUE_APART:
        lab, rim_c, lid_c, skin_c, apart = lab[..., 1:], rim_c[1:], lid_c[1:], skin_c[1:], hue_apart
        side = np.ones_like(inside)
    else:
        side = ys > centre[1]
    d_rim = np.linalg.norm(lab - rim_c, axis=2)
    candidate = (band & side & (r <= radius + 0.5) & (d_rim < 0.5 * apart)
                 & (d_rim < np.linalg.norm(lab - lid_c, axis=2)) & (d_rim < np.linalg.norm(lab - skin_c, axis=2)))
    grown = inside.astype(np.uint8)
    allowed = (inside | candidate).astype(np.uint8)
    for _ in range(int(BEYOND_LIDS * radius) + 1):
        grown = cv2.dilate(grown, np.ones((3, 3), np.uint8)) & allowed
    out[y0:y1, x0:x1] = ((grown > 0) & ~inside).astype(np.uint8) * 255
    return out


BEYOND_LIDS = 0.4  # iris radii past the lid landmarks that the iris may still be painted
BEYOND_MIN_APART = 30.0  # Lab units between iris and lid line under which nothing is added
BEYOND_MIN_HUE_APART = 30.0  # the same in hue (a, b) under which nothing is added above the eye


def _complete_iris(patch: np.ndarray, seen: np.ndarray, pivot: np.ndarray) -> np.ndarray:
    """The iris patch with its part hidden under the lids at rest filled in from its mirror
    image across the iris's horizontal midline (an iris is about as dark and as textured above
    as below), and where both halves are hidden, from the visible iris at the same distance
    from its centre (its dark outer ring goes on round it). One flat colour there showed as a
    block with a straight top when a narrow eye's iris moved down, and lid skin left in the
    patch came along with the iris. `pivot`: the iris's centre in the patch."""
    if seen.sum() < 5:
        return patch
    mirror = patch[::-1]
    use_mirror = ~seen & seen[::-1]
    patch[use_mirror] = mirror[use_mirror]
    hidden = ~seen & ~seen[::-1]
    if hidden.any():
        ys, xs = np.mgrid[0:patch.shape[0], 0:patch.shape[1]]
        ring = np.round(np.hypot(xs - pivot[0], ys - pivot[1])).astype(int)
        known = np.unique(ring[seen])
        colours = np.array([np.median(patch[seen & (ring == k)], axis=0) for k in known])
        # Each hidden pixel takes the nearest ring (in radius) that shows.
        nearest = known[np.abs(ring[hidden][:, None] - known[None]).argmin(axis=1)]
        patch[hidden] = colours[np.searchsorted(known, nearest)].astype(np.uint8)
    return patch


def _sclera_colour(image: np.ndarray, opening: np.ndarray, iris: np.ndarray) -> np.ndarray | None:
    """The eye's own white: the median of the lightest 30% of its opening outside the iris
    (on a small eye most of the rest is lid shadow and lashes). None when too little of it shows."""
    sel = image[(opening > 0) & (iris == 0)].reshape(-1, 3).astype(np.float32)
    if len(sel) < 6:
        return None
    light = sel[sel.sum(axis=1) >= np.quantile(sel.sum(axis=1), 0.7)]
    return np.median(light, axis=0)


def _sclera_plate(image: np.ndarray, openings: list[np.ndarray], paint_out: np.ndarray,
                  lid_edges: list[np.ndarray]) -> np.ndarray:
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
    for opening, lid_edge in zip(openings, lid_edges):
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
        _soften_lid_edge(plate, region, lid_edge > 0)
    return np.clip(plate + 0.5, 0, 255).astype(np.uint8)


LID_EDGE_BLEND = 0.5  # most of the lid line's colour given to a fill pixel touching it,
LID_EDGE_FULL = 4 / 9  # where the line covers this much of its 3x3 neighbourhood


def _soften_lid_edge(plate: np.ndarray, region: np.ndarray, lid: np.ndarray) -> None:
    """Where the iris lay under a drawn lid line, past the landmarks (`iris_beyond_lids`), the
    fill's pixels touching the line take some of its colour (in place): filled from the eye
    alone, a glance down uncovered a white band with a pixel-stepped edge against the line.
    (Filled towards the line all the way, the band went a grey smudge on a sideways glance.)"""
    if not lid.any():
        return
    weight = lid.astype(np.float32)
    near = cv2.blur(weight, (3, 3))
    touching = region & (near > 0)
    lid_colour = cv2.blur(plate * weight[..., None], (3, 3)) / np.maximum(near, 1e-6)[..., None]
    # As much of the line's colour as the line covers of the pixel's 3x3 neighbourhood: a
    # fixed share traced the line's pixel steps as a row of dark teeth.
    share = np.minimum(LID_EDGE_BLEND * near[touching] / LID_EDGE_FULL, LID_EDGE_BLEND)[:, None]
    plate[touching] += share * (lid_colour[touching] - plate[touching])


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
