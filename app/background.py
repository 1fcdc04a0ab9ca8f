"""A still background plate behind the person, so head turns do not drag the background along.

The warp (see `rig`) stretches everything in the band between the moving head ring and the
still outer ring: next to the hair and the ears the background swims on every turn and nod.
Here, once per avatar, the person is segmented (MediaPipe's selfie segmentation, which ships
in the wheel and runs offline), and a plate of the rig crop is made with the person painted
out of the region the warp moves. Per frame the renderer warps the person's coverage (`alpha`)
with the same maps as the image and lays the warped person over the still plate.

The plate equals the avatar's own crop wherever `alpha` is below 255 (it only differs under
the person), so at rest the composite is exactly the avatar; outside the outer ring the warp
is the identity, so the crop border and everything beyond it are untouched.

Where the segmentation is unsure (a painting or a statue without a clear person/background
split, a mask that is tiny or fills the whole band, a soft edge, an edge with no contrast)
no plate is made, and the renderer warps the whole crop as before.
"""

from __future__ import annotations

from dataclasses import dataclass
import logging

import cv2
import numpy as np

from . import landmarks as lm
from .rig import RING_POINTS, WarpRig

log = logging.getLogger(__name__)

PERSON_THRESHOLD = 0.2  # segmentation probability counted as person (generous: hair wisps stay with the head)
MARGIN = 0.012  # of the crop size: the person layer reaches this far past the mask (at least 2 px)
FEATHER = 0.008  # of the crop size: then fades out over this (at least 2 px)
# Sureness checks (see `_unsure`), measured inside the moving region (the outer ring).
MIN_FACE_COVER = 0.9  # share of the face oval the segmenter must call person
MIN_BACKGROUND = 0.06  # share of the moving region that must be background
MIN_PERSON = 0.12  # ...and that must be person
MAX_EDGE_WIDTH = 0.03  # of the crop size: mean width of the unsure band along the person's edge
MIN_EDGE_CONTRAST = 6.0  # median over sectors of the Lab difference across the edge
DETAIL_BAND = 0.12  # of the crop size: how far into the painted-out person the mirrored background reaches


@dataclass(frozen=True)
class BackgroundPlate:
    """Per-avatar still background for the rig crop; all arrays are crop-sized or boxed."""

    plate: np.ndarray  # (h, w, 3) uint8 over `box`: the crop with the person painted out
    alpha: np.ndarray  # (H, W) uint8 over the whole crop: the person layer's coverage at rest
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in crop pixels: where the composite can differ


def build_background(image: np.ndarray, rig: WarpRig, landmarks: np.ndarray) -> BackgroundPlate | None:
    """The plate for this avatar's rig crop, or None where the person/background split is unsure."""
    c = rig.crop
    crop = np.ascontiguousarray(image[c.y0:c.y1, c.x0:c.x1])
    try:
        prob = segment_person(crop)
    except Exception as exc:  # a missing model or a MediaPipe build without it: warp as before
        log.info("person segmentation unavailable (%s): the background warps with the head", exc)
        return None
    return plate_from_mask(crop, prob, rig, landmarks)


def segment_person(crop: np.ndarray) -> np.ndarray:
    """(H, W) float32 person probability: the more generous of MediaPipe's two selfie models."""
    import mediapipe as mp

    rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    prob = None
    for model in (0, 1):
        with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=model) as seg:
            m = seg.process(rgb).segmentation_mask
        if m is None:
            continue
        m = np.asarray(m, np.float32)
        prob = m if prob is None else np.maximum(prob, m)
    if prob is None:
        raise RuntimeError("selfie segmentation returned no mask")
    return prob


def plate_from_mask(crop: np.ndarray, prob: np.ndarray, rig: WarpRig, landmarks: np.ndarray) -> BackgroundPlate | None:
    h, w = crop.shape[:2]
    size = max(h, w)
    origin = np.array([rig.crop.x0, rig.crop.y0], np.float64)
    n = lm.NUM_LANDMARKS
    outer = rig.source_points[n + RING_POINTS:n + 2 * RING_POINTS]
    moving = np.zeros((h, w), np.uint8)
    cv2.fillPoly(moving, [np.round(outer).astype(np.int32)], 1)
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(landmarks[list(lm.FACE_OVAL), :2] - origin).astype(np.int32)], 1)
    person = (prob > PERSON_THRESHOLD).astype(np.uint8)
    why = _unsure(crop, prob, person, moving.astype(bool), oval.astype(bool))
    if why:
        log.info("background plate skipped: %s", why)
        return None

    # The person layer: the mask plus a small margin at full coverage, then a short fade.
    margin = max(2, int(round(MARGIN * size)))
    feather = max(2, int(round(FEATHER * size)))
    grown = cv2.dilate(person, _disc(margin))
    dist = cv2.distanceTransform(1 - grown, cv2.DIST_L2, 3)
    alpha = np.clip(255.0 * (1.0 - dist / (feather + 1)), 0, 255).astype(np.uint8)

    # Paint the person out where the warp moves it (the outer ring, a little grown; the warp
    # is the identity beyond it, so the person there never uncovers anything), never on the
    # crop's outermost pixels. The plate differs from the crop only where alpha is 255.
    reach = cv2.dilate(moving, _disc(2 * margin + feather))
    reach[:1], reach[-1:], reach[:, :1], reach[:, -1:] = 0, 0, 0, 0
    hole = (grown & reach).astype(bool)
    if not hole.any():
        return None
    ys, xs = np.nonzero(cv2.dilate(reach, _disc(feather + 2)))
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    plate = crop.copy()
    plate[hole] = _fill_from_background(crop, grown.astype(bool))[hole]
    return BackgroundPlate(np.ascontiguousarray(plate[y0:y1, x0:x1]), alpha, (x0, y0, x1, y1))


def _unsure(crop: np.ndarray, prob: np.ndarray, person: np.ndarray, moving: np.ndarray, oval: np.ndarray) -> str:
    """Why the segmentation cannot be trusted here ('' where it can)."""
    area = max(int(moving.sum()), 1)
    in_moving = person.astype(bool) & moving
    if oval.any() and person[oval].mean() < MIN_FACE_COVER:
        return f"the face is not segmented as a person ({person[oval].mean():.0%} of it)"
    if in_moving.sum() < MIN_PERSON * area:
        return f"the person mask is tiny ({in_moving.sum() / area:.0%} of the moving region)"
    if (moving & ~in_moving).sum() < MIN_BACKGROUND * area:
        return f"no background around the head ({(moving & ~in_moving).sum() / area:.0%} of the moving region)"
    size = max(crop.shape[:2])
    edge = cv2.morphologyEx(person, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool) & moving
    length = max(int(edge.sum()) / 2.0, 1.0)
    soft = ((prob > 0.1) & (prob < 0.9) & moving).sum()
    if soft / length > MAX_EDGE_WIDTH * size:
        return f"the person's edge is soft ({soft / length:.1f} px wide)"
    contrast = _edge_contrast(crop, person, moving, size)
    if contrast < MIN_EDGE_CONTRAST:
        return f"the person's edge has no contrast (Lab difference {contrast:.1f})"
    return ""


def _edge_contrast(crop: np.ndarray, person: np.ndarray, moving: np.ndarray, size: int) -> float:
    """Median over angular sectors of the Lab distance between the strips just inside and just
    outside the person's edge: a mask that follows no visible edge scores low."""
    d = max(3, int(round(0.02 * size)))
    k = _disc(d)
    inside = (person & ~cv2.erode(person, k).astype(bool)).astype(bool) & moving
    outside = (cv2.dilate(person, k).astype(bool) & ~person.astype(bool)) & moving
    lab = cv2.cvtColor(cv2.GaussianBlur(crop, (5, 5), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
    ys, xs = np.nonzero(moving)
    cy, cx = ys.mean(), xs.mean()
    yy, xx = np.mgrid[0:crop.shape[0], 0:crop.shape[1]]
    sector = ((np.arctan2(yy - cy, xx - cx) + np.pi) / (2 * np.pi) * 16).astype(int) % 16
    scores = []
    for s in range(16):
        a, b = inside & (sector == s), outside & (sector == s)
        if a.sum() < 20 or b.sum() < 20:
            continue
        scores.append(float(np.linalg.norm(np.median(lab[a], axis=0) - np.median(lab[b], axis=0))))
    return float(np.median(scores)) if scores else 0.0


def _fill_from_background(crop: np.ndarray, person: np.ndarray) -> np.ndarray:
    """The crop with every `person` pixel filled from the background alone: along the outline,
    the background mirrored across it (`_mirrored`); deeper in, and wherever the mirror lands
    on the person again, a push-pull fill (a weighted image pyramid down to where the
    background reaches everywhere, then back up). No colour of the person's own body (a suit
    below the hole) bleeds in, and there are no streaks. The push-pull fill alone is a
    defocused average of everything round the head (a flag's stars and stripes came out
    lilac-grey), and a head moving off it showed that as a pale ghost of its own outline."""
    known = (~person).astype(np.float32)
    image = crop.astype(np.float32) * known[..., None]
    levels = []
    while min(known.shape) > 4:
        levels.append((image, known))
        image, known = cv2.pyrDown(image), cv2.pyrDown(known)
    fill = image / np.maximum(known, 1e-6)[..., None]
    for image, known in reversed(levels):
        up = cv2.pyrUp(fill, dstsize=(known.shape[1], known.shape[0]))
        have = np.clip(known, 0.0, 1.0)[..., None]
        fill = image / np.maximum(known, 1e-6)[..., None] * have + up * (1.0 - have)
    mirror, weight = _mirrored(crop, person)
    fill = fill * (1.0 - weight[..., None]) + mirror
    return np.clip(fill + 0.5, 0, 255).astype(np.uint8)


def _mirrored(crop: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The background mirrored into the hole across its nearest edge, already weighted by how
    much of it to use, and that weight (H, W): each hole pixel takes the background pixel as
    far beyond the nearest background pixel as it lies inside the hole (a reflection across
    the person's outline, as BORDER_REFLECT does at a straight edge), fading out over
    `DETAIL_BAND`, more out of focus the deeper it lies; where the reflection lands in the hole
    again or off the crop, none. Deeper in, a reflection comes from too far away to continue
    anything: the push-pull fill takes over."""
    h, w = person.shape
    out = np.zeros(crop.shape, np.float32)
    weight = np.zeros((h, w), np.float32)
    if not person.any() or person.all():
        return out, weight
    dist, labels = cv2.distanceTransformWithLabels(person.astype(np.uint8), cv2.DIST_L2, 5,
                                                   labelType=cv2.DIST_LABEL_PIXEL)
    ky, kx = np.nonzero(~person)
    lut_y = np.zeros(labels.max() + 1, np.int64)
    lut_x = np.zeros(labels.max() + 1, np.int64)
    lut_y[labels[ky, kx]], lut_x[labels[ky, kx]] = ky, kx
    py, px = np.nonzero(person)
    qy, qx = lut_y[labels[py, px]], lut_x[labels[py, px]]
    my, mx = 2 * qy - py, 2 * qx - px
    ok = (my >= 0) & (my < h) & (mx >= 0) & (mx < w)
    ok[ok] &= ~person[my[ok], mx[ok]]
    band = DETAIL_BAND * max(h, w)
    fade = np.clip(1.0 - dist[py, px] / band, 0.0, 1.0)
    across = np.zeros((len(py), 3), np.float32)
    across[ok] = crop[my[ok], mx[ok]]
    # Along the row: a shelf, a table's edge or a horizon meets the outline of a head's side
    # at an angle, and reflected across the outline it came out tilted, in steps where the
    # outline bends. Reflected along its row it goes on straight. Used where the row's way out
    # of the hole is not much longer than the shortest (the head's sides, not its crown).
    row_x, row_d = _row_reflection(person)
    rx = row_x[py, px]
    row_ok = (rx >= 0) & (rx < w)
    row_ok[row_ok] &= ~person[py[row_ok], rx[row_ok]]
    ratio = row_d[py, px] / np.maximum(dist[py, px], 1.0)
    share = np.clip((ROW_UNTIL - ratio) / (ROW_UNTIL - ROW_WHOLLY), 0.0, 1.0) * row_ok
    share[~ok] = row_ok[~ok]  # no reflection across: the row's, if any
    along = np.zeros_like(across)
    along[row_ok] = crop[py[row_ok], rx[row_ok]]
    ok |= row_ok
    weight[py[ok], px[ok]] = fade[ok]
    out[py[ok], px[ok]] = (across[ok] * (1.0 - share[ok, None]) + along[ok] * share[ok, None]) * fade[ok, None]
    # Neighbouring pixels' reflections come from places apart where the outline bends, the
    # further apart the deeper they lie: blurred more with depth (a sigma of about a third of
    # it), they read as the background out of focus rather than as spikes and grain.
    depth = np.clip(dist / band, 0.0, 1.0)
    sigmas = (0.6, 0.12 * band, 0.3 * band)
    blurred = [(cv2.GaussianBlur(out, (0, 0), s), cv2.GaussianBlur(weight, (0, 0), s)) for s in sigmas]
    at = depth * (len(sigmas) - 1)  # each pixel between two of the blurs, linearly
    mix_out = np.zeros_like(out)
    mix_w = np.zeros_like(weight)
    for k, (o, wt) in enumerate(blurred):
        share = np.clip(1.0 - np.abs(at - k), 0.0, 1.0)
        mix_out += o * share[..., None]
        mix_w += wt * share
    return mix_out, mix_w


# Reflected along the row wholly up to this ratio of the row's distance out of the hole to the
# shortest, across the outline from ROW_UNTIL on, and a blend of the two between.
ROW_WHOLLY = 1.3
ROW_UNTIL = 2.0


def _row_reflection(person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each pixel, the column of its reflection along its row across the nearer edge of
    the `person` run it lies in, and the distance to that edge ((H, W) each; -1 and inf where
    the row has no background)."""
    h, w = person.shape
    cols = np.broadcast_to(np.arange(w), (h, w))
    left = np.maximum.accumulate(np.where(person, -1, cols), axis=1)
    right = np.minimum.accumulate(np.where(person, w, cols)[:, ::-1], axis=1)[:, ::-1]
    d_left = np.where(left >= 0, cols - left, np.inf)
    d_right = np.where(right < w, right - cols, np.inf)
    use_left = d_left <= d_right
    edge = np.where(use_left, left, right)
    d = np.minimum(d_left, d_right)
    return np.where(np.isfinite(d), 2 * edge - cols, -1), d


def _disc(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def person_layer(crop: np.ndarray, background: BackgroundPlate) -> np.ndarray:
    """The crop with the person's coverage as a fourth channel: one 4-channel remap warps both
    (as fast as the 3-channel one: the pixels are SIMD-aligned)."""
    return cv2.merge([*cv2.split(crop), background.alpha])


def composite(warped: np.ndarray, background: BackgroundPlate) -> np.ndarray:
    """The warped `person_layer` (BGRA) over the still plate: a BGR crop.

    Integer blending, person * a + plate * (255 - a), each rounded: where the plate equals the
    person's pixel (everywhere that a is below 255 at rest) the two rounded halves add up to
    the pixel exactly, so the rest pose reproduces the avatar bit for bit."""
    out = cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR)
    x0, y0, x1, y1 = background.box
    a = cv2.extractChannel(warped[y0:y1, x0:x1], 3)
    a3 = cv2.merge([a, a, a])
    region = out[y0:y1, x0:x1]
    person = cv2.multiply(region, a3, scale=1.0 / 255.0)
    still = cv2.multiply(background.plate, cv2.bitwise_not(a3), scale=1.0 / 255.0)
    region[...] = cv2.add(person, still)
    return out
