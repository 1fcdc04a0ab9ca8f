"""The mouth interior: what shows when the avatar opens its mouth wider than in its portrait.

Warping cannot invent it (the avatar's closed lips would smear across the gap), so it is
filled: with the driver's own mouth interior (teeth, tongue) mapped onto the avatar's lips
and colour-matched to the avatar's skin, or, with no driver frame at hand, a synthesised
cavity with a row of upper teeth.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import INNER_LIPS, MOUTH_CORNERS

_INNER = list(INNER_LIPS)
MAX_BRIGHTEN = 1.1  # see match_colour


@dataclass(frozen=True)
class MouthSource:
    """The driver's frame and its landmarks (pixels) for this moment."""

    image: np.ndarray
    landmarks: np.ndarray
    skin_lab: tuple[np.ndarray, np.ndarray]


def polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return float(abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / 2)


def opening(points: np.ndarray, rest_area: float) -> float:
    """How much wider than at rest the mouth is open, as area over mouth width squared."""
    width = float(np.linalg.norm(points[MOUTH_CORNERS[0], :2] - points[MOUTH_CORNERS[1], :2]))
    return (polygon_area(points[_INNER, :2]) - rest_area) / max(width * width, 1.0)


def fill_mouth(canvas: np.ndarray, posed: np.ndarray, rest_area: float,
               avatar_skin: tuple[np.ndarray, np.ndarray], source: MouthSource | None) -> None:
    """Paint the mouth interior into `canvas` (in place) inside the posed inner lips.

    `posed` are the avatar's posed landmarks in canvas pixels.
    """
    amount = opening(posed, rest_area)
    alpha = float(np.clip((amount - 0.005) / 0.03, 0.0, 1.0))
    if alpha <= 0.0:
        return
    poly = posed[_INNER, :2].astype(np.float64)
    h, w = canvas.shape[:2]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    local = poly - (x0, y0)
    size = (x1 - x0, y1 - y0)
    if source is not None:
        patch = _driver_interior(source, local, (x0, y0), size, avatar_skin)
    else:
        patch = _synthetic_interior(local, size, avatar_skin)

    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(local * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    # Feather by about a pixel so the lips' own edge stays on top of the fill.
    mask = cv2.GaussianBlur(cv2.erode(mask, np.ones((2, 2), np.uint8)), (3, 3), 0)
    a = (mask.astype(np.float32) / 255.0 * alpha)[..., None]
    region = canvas[y0:y1, x0:x1]
    region[:] = (patch.astype(np.float32) * a + region.astype(np.float32) * (1 - a)).astype(np.uint8)


def _driver_interior(source: MouthSource, local_poly: np.ndarray, origin: tuple[int, int],
                     size: tuple[int, int], avatar_skin) -> np.ndarray:
    src = source.landmarks[_INNER, :2].astype(np.float64)
    # Least-squares affine from the driver's inner lips to the avatar's: follows the opening's
    # width, height and tilt; the interior has no finer structure worth a finer warp.
    a = np.hstack([src, np.ones((len(src), 1))])
    m, *_ = np.linalg.lstsq(a, local_poly, rcond=None)
    patch = cv2.warpAffine(source.image, m.T.astype(np.float64), size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    return match_colour(patch, source.skin_lab, avatar_skin)


def match_colour(patch: np.ndarray, from_skin, to_skin) -> np.ndarray:
    """Move the patch's colours as the driver's skin would have to move to match the avatar's:
    lightness scales (teeth stay lighter than skin), the chroma shifts.

    The cavity is a shadow, dark under any skin: lightness may darken freely for a darker
    avatar but brightens by at most `MAX_BRIGHTEN` (scaling a webcam's dark mouth up to a
    bright painting's skin turned it into a skin-coloured blob, which neither a person nor a
    face tracker reads as an open mouth), and the chroma's spread is never amplified."""
    lab = cv2.cvtColor(patch, cv2.COLOR_BGR2LAB).astype(np.float32)
    (mu_f, sd_f), (mu_t, sd_t) = from_skin, to_skin
    lab[..., 0] *= float(np.clip(mu_t[0] / max(mu_f[0], 1.0), 0.5, MAX_BRIGHTEN))
    ratio = np.clip(sd_t[1:] / np.maximum(sd_f[1:], 1e-3), 0.3, 1.0)
    lab[..., 1:] = (lab[..., 1:] - mu_f[1:]) * ratio + mu_t[1:]
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


def _synthetic_interior(local_poly: np.ndarray, size: tuple[int, int], avatar_skin) -> np.ndarray:
    mu = avatar_skin[0]
    w, h = size
    top = local_poly[:, 1].min()
    bottom = local_poly[:, 1].max()
    ys = (np.arange(h, dtype=np.float32)[:, None] - top) / max(bottom - top, 1.0)
    cavity = np.array([mu[0] * 0.25, 150.0, 140.0], np.float32)  # dark, warm red
    teeth = np.array([min(mu[0] * 1.15, 235.0), 128.0, 134.0], np.float32)
    t = np.clip((ys - 0.18) / 0.1, 0.0, 1.0)[..., None]  # teeth show in the top fifth
    lab = teeth * (1 - t) + cavity * t
    lab = np.broadcast_to(lab, (h, w, 3)).copy()
    return cv2.cvtColor(lab.astype(np.uint8), cv2.COLOR_LAB2BGR)
