"""Face-detail measurements on landmark arrays: gaze, blinks, lip sync, mouth colours, neutral.

Plain functions on arrays (MediaPipe's 478 landmarks in pixels, BGR uint8 images), so that tests
and the evaluation harness measure the same way. Each takes the driver's and the output's
measurements as found by MediaPipe on both.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import landmarks as lm
from .retarget import eye_openness as retarget_openness

_EYES = ((lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER, lm.RIGHT_IRIS),
         (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER, lm.LEFT_IRIS))


def face_size(points: np.ndarray) -> float:
    oval = points[list(lm.FACE_OVAL), :2]
    return float((oval.max(axis=0) - oval.min(axis=0)).max())


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


# ---- mouth ---------------------------------------------------------------------------------

def mouth_gap(points: np.ndarray) -> float:
    """Inner-lip gap at the middle of the mouth, in face sizes."""
    gap = np.linalg.norm(points[lm.UPPER_INNER_LIP_MID, :2] - points[lm.LOWER_INNER_LIP_MID, :2])
    return float(gap / max(face_size(points), 1e-6))


def mouth_sync(driver: list[np.ndarray], output: list[np.ndarray]) -> tuple[float, float]:
    """(correlation, opening ratio) of the inner-lip gap, output against driver, over paired
    frames: the ratio is the output's mean gap over the driver's (both in face sizes)."""
    d = np.array([mouth_gap(p) for p in driver])
    o = np.array([mouth_gap(p) for p in output])
    return _corr(d, o), float(o.mean() / max(d.mean(), 1e-9))


# ---- eyes ----------------------------------------------------------------------------------

def eye_openness(points: np.ndarray) -> np.ndarray:
    """(2,) right, left: mean lid gap over the eye's width (as the retargeting measures it)."""
    return np.array([retarget_openness(points, corners, upper, lower) for corners, upper, lower, _ in _EYES])


def iris_position(points: np.ndarray) -> np.ndarray:
    """(2, 2): per eye (right, left), the iris centre relative to the eye corners, in eye
    widths: x along the corner-to-corner line from its middle, y across it (image-down
    positive). Both eyes' x run the same image direction (a glance right is +x). The corners
    are fixed to the skull and the lids are not: measured from the lids' midline, y rose and
    fell with the lids' own opening (a wide stare read as a glance down, a squint as one up),
    and on the footage that swamped the real up-and-down glances."""
    out = np.empty((2, 2))
    for k, (corners, _, _, iris) in enumerate(_EYES):
        a, b = points[corners[0], :2], points[corners[1], :2]
        if a[0] > b[0]:
            a, b = b, a
        width = max(float(np.linalg.norm(b - a)), 1e-6)
        e = (b - a) / width
        n = np.array([-e[1], e[0]])
        rel = points[iris[0], :2] - (a + b) / 2
        out[k] = rel @ e / width, rel @ n / width
    return out


# Eye widths (standard deviation of the driver's iris position, x and y) under which a clip
# has no glances to follow on that axis: its gain and correlation are left out (NaN). The
# first 300 frames of webcam_crop_expressions hold none (x spread 0.008, against 0.09-0.15 on
# clips with glances): their "correlation" of -0.26 was MediaPipe's noise on two narrowed
# eyes. Vertical gaze spreads less (0.009-0.03 on the footage: an eye is a third as tall).
MIN_GAZE_SPREAD = (0.02, 0.01)


def gaze_follow(driver: list[np.ndarray], output: list[np.ndarray],
                open_only: bool = True,
                min_spread: tuple[float, float] = MIN_GAZE_SPREAD) -> dict[str, float]:
    """Gaze gain and correlation, horizontal and vertical, over paired frames (both eyes
    averaged). Gain: the output's spread of iris position over the driver's (standard
    deviations; 1 is the driver's amplitude). Frames where either face's eyes are under half
    their open size are left out when `open_only` (a shut eye's iris landmark is a guess); an
    axis on which the driver's iris spreads less than `min_spread` (x, y) eye widths is NaN."""
    d = np.array([iris_position(p).mean(axis=0) for p in driver])
    o = np.array([iris_position(p).mean(axis=0) for p in output])
    if open_only and len(d):
        do = np.array([eye_openness(p).mean() for p in driver])
        oo = np.array([eye_openness(p).mean() for p in output])
        # Against the eyes' open size (90th percentile), not their median: on a clip spent
        # mostly squinting or looking down (lp_d3) half the median is itself nearly shut, and
        # MediaPipe's guess at a shut eye's iris swamped the glances (x corr 0.2).
        keep = (do > 0.5 * np.quantile(do, 0.9)) & (oo > 0.5 * np.quantile(oo, 0.9))
        d, o = d[keep], o[keep]
    res = {}
    for axis, name in enumerate("xy"):
        if len(d) < 3 or d[:, axis].std() < min_spread[axis]:
            res[f"gaze_gain_{name}"] = res[f"gaze_corr_{name}"] = float("nan")
            continue
        res[f"gaze_gain_{name}"] = float(o[:, axis].std() / max(d[:, axis].std(), 1e-9))
        res[f"gaze_corr_{name}"] = _corr(d[:, axis], o[:, axis])
    return res


def blink_asymmetry(driver: list[np.ndarray], output: list[np.ndarray], shut_below: float = 0.35) -> float:
    """Mean |right - left| output eye openness (each eye relative to its own median openness
    over the clip, so 1 is open, 0 shut) on frames where the driver's eyes are both shut (both
    below `shut_below` of their median). NaN when the driver never shuts both."""
    d = np.array([eye_openness(p) for p in driver])
    o = np.array([eye_openness(p) for p in output])
    if not len(d):
        return float("nan")
    d_rel = d / np.maximum(np.median(d, axis=0), 1e-6)
    o_rel = o / np.maximum(np.median(o, axis=0), 1e-6)
    both = (d_rel < shut_below).all(axis=1)
    if not both.any():
        return float("nan")
    return float(np.abs(o_rel[both, 0] - o_rel[both, 1]).mean())


# ---- mouth colours -------------------------------------------------------------------------

def _lab(image_bgr: np.ndarray) -> np.ndarray:
    """CIELAB in its own units (L 0-100, a and b about 0 for greys)."""
    lab = cv2.cvtColor(image_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    return lab.reshape(-1, 3)


def _polygon_mask(shape: tuple[int, int], poly: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(poly * 4).astype(np.int32)], 255, shift=2)
    return mask > 0


def avatar_palette(image: np.ndarray, points: np.ndarray, shades: int = 12, tints: int = 6) -> np.ndarray:
    """The avatar's own mouth palette, (K, 3) CIELAB: the median colour of its lips (between
    the outer and inner lip lines), of its cheeks, and of whatever shows inside its lips at rest
    (teeth or cavity, when the portrait's mouth is open), each in `shades` shades from 10% to
    100% of its own lightness and chroma (a colour in shadow); and teeth in its light: off-whites
    of its cheeks' hue (the light's cast) at `tints` chromas from none to the cheeks' own, in
    `shades` lightnesses up to its face's lightest tone (97th percentile), since a closed-mouth
    portrait shows no teeth of its own to measure painted ones against. A mouth interior painted
    from the avatar's colours lies near one of these; the driver's teeth or pink lips pasted
    onto a grey or sepia portrait do not (a grey portrait's off-whites are grey)."""
    h, w = image.shape[:2]
    lab = _lab(image)
    outer = _polygon_mask((h, w), points[list(lm.OUTER_LIPS), :2])
    inner = _polygon_mask((h, w), points[list(lm.INNER_LIPS), :2])
    cheeks = np.zeros((h, w), bool)
    for idx in (lm.CHEEKS[:5], lm.CHEEKS[5:]):
        cheeks |= _polygon_mask((h, w), cv2.convexHull(points[list(idx), :2].astype(np.float32))[:, 0])
    bases = []
    for region in (outer & ~inner, cheeks, inner):
        sel = lab[region.ravel()]
        if len(sel) >= 5:
            bases.append(np.median(sel, axis=0))
    k = np.linspace(0.1, 1.0, shades)[:, None, None]
    palette = [(np.array(bases)[None] * k).reshape(-1, 3)]
    skin = lab[cheeks.ravel()]
    face = lab[_polygon_mask((h, w), points[list(lm.FACE_OVAL), :2]).ravel(), 0]
    if len(skin) >= 5 and len(face) >= 5:
        hue = np.median(skin, axis=0)[1:]
        light = np.linspace(0.1, 1.0, shades) * float(np.percentile(face, 97))
        chroma = np.linspace(0.0, 1.0, tints)
        grid = np.stack(np.meshgrid(light, chroma, indexing="ij"), -1).reshape(-1, 2)
        palette.append(np.column_stack([grid[:, 0], grid[:, 1:] * hue]))
    return np.vstack(palette)


def mouth_interior_delta_e(image: np.ndarray, points: np.ndarray, palette: np.ndarray) -> float:
    """Mean CIELAB ΔE (1976) between the pixels inside the output's inner lips (`points`:
    MediaPipe on the output) and the nearest palette colour. NaN when the mouth is shut."""
    h, w = image.shape[:2]
    inner = _polygon_mask((h, w), points[list(lm.INNER_LIPS), :2])
    inner = cv2.erode(inner.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # lip edges aside
    if inner.sum() < 5:
        return float("nan")
    sel = _lab(image)[inner.ravel()]
    d = np.linalg.norm(sel[:, None, :] - palette[None], axis=2).min(axis=1)
    return float(d.mean())


# ---- neutral -------------------------------------------------------------------------------

def neutral_start_error(from_start: list[np.ndarray], from_extreme: list[np.ndarray],
                        fps: float, settle_seconds: float = 2.0) -> float:
    """The same driver frames rendered twice, once with the clip starting at its first frame,
    once starting at its most extreme frame, paired by driver frame: the mean landmark
    distance between the two outputs (MediaPipe on both), in face sizes, over frames later than
    `settle_seconds` into the later start. 0 when the neutral does not depend on the start."""
    skip = int(round(settle_seconds * fps))
    pairs = list(zip(from_start, from_extreme))[skip:]
    if not pairs:
        return float("nan")
    errs = [np.linalg.norm(a[:, :2] - b[:, :2], axis=1).mean() / max(face_size(a), 1e-6) for a, b in pairs]
    return float(np.mean(errs))
