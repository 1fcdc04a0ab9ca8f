"""The mouth interior: what shows when the avatar opens its mouth wider than in its portrait.

Warping cannot invent it (the avatar's closed lips would smear across the gap), so it is
painted, from the avatar's own palette only (`MouthPalette`): a cavity shaded from its own lip
colour, darkened, and, on a wide opening, a row of upper teeth in its own lightest skin tones,
sized to its own mouth. The driver's pixels are never used: its teeth colour-matched to a photo
came out as a khaki band, a lilac pill on a grey portrait, and the expression keys pasted the
driver's pink lips on as a red blob.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import FACE_OVAL, INNER_LIPS, MOUTH_CORNERS, OUTER_LIPS

_INNER = list(INNER_LIPS)


@dataclass(frozen=True)
class MouthPalette:
    """The avatar's own mouth colours, OpenCV 8-bit Lab."""

    cavity: np.ndarray  # (3,) the deepest shadow
    lip_shadow: np.ndarray  # (3,) the cavity's rim, under the lips
    teeth: np.ndarray  # (3,)
    tongue: np.ndarray  # (3,) the lips' colour in the mouth's shade


# Shares of the avatar's own colours the interior is made of (why: a cavity is a lip-coloured
# shadow; teeth are the face's lightest tone with little of its chroma).
CAVITY_LIGHTNESS = 0.22  # of the lips' lightness
RIM_LIGHTNESS = 0.5
CAVITY_CHROMA = 0.6  # of the lips' chroma
TEETH_CHROMA = 0.25  # of the skin's chroma
TEETH_HEIGHT = 0.11  # upper teeth, in mouth widths (sized to the avatar's mouth)
TEETH_FROM = 0.06  # opening (area over width squared) from which the teeth show
TEETH_SHARE = 0.6  # of the opening's height, the most the upper teeth fill
TEETH_LIGHT = 0.5  # teeth lightness: this share of the way from the skin's to the face's lightest
TONGUE_SHADE = 0.6  # of the lips' lightness and chroma
TONGUE_FROM = 0.1  # opening from which the tongue shows


def mouth_palette(image: np.ndarray, points: np.ndarray, skin_lab: tuple[np.ndarray, np.ndarray]) -> MouthPalette:
    """`image`: the avatar, BGR; `points`: its landmarks in its pixels; `skin_lab`: its cheeks'
    (mean, std) in Lab. Grey portraits get grey interiors, sepia ones sepia: every chroma here
    is a share of the portrait's own."""
    h, w = image.shape[:2]
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)

    def mask(idx) -> np.ndarray:
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(points[list(idx), :2] * 4).astype(np.int32)], 255, shift=2)
        return m.ravel() > 0

    skin = np.asarray(skin_lab[0], np.float32)
    lips = lab[mask(OUTER_LIPS) & ~mask(INNER_LIPS)]
    lip = np.median(lips, axis=0) if len(lips) >= 5 else skin
    face = lab[mask(FACE_OVAL), 0]
    light = float(np.percentile(face, 97)) if len(face) >= 5 else float(skin[0])
    grey = np.array([0.0, 128.0, 128.0], np.float32)

    def shade(colour: np.ndarray, lightness: float, chroma: float) -> np.ndarray:
        out = grey + (colour - grey) * chroma
        out[0] = colour[0] * lightness
        return out

    teeth = _own_teeth(lab[mask(INNER_LIPS)], skin)
    if teeth is None:
        teeth = shade(skin, 1.0, TEETH_CHROMA)
        # Teeth sit in the mouth's shade: at the face's very lightest they read as a white sticker.
        teeth[0] = float(skin[0]) + TEETH_LIGHT * max(light - float(skin[0]), 0.0)
    return MouthPalette(shade(lip, CAVITY_LIGHTNESS, CAVITY_CHROMA), shade(lip, RIM_LIGHTNESS, CAVITY_CHROMA), teeth,
                        shade(lip, TONGUE_SHADE, TONGUE_SHADE))


def _own_teeth(inner: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """The colour of the teeth the portrait itself shows between its lips (Lab), or None where
    it shows none: the pixels of its mouth opening lighter than its skin and of less chroma
    (a portrait mid-word or grinning). Its own teeth are the truth; the teeth made up from the
    skin's tones were a dull grey band beside a photo's white ones."""
    if len(inner) < OWN_TEETH_MIN:
        return None
    chroma = np.hypot(inner[:, 1] - 128.0, inner[:, 2] - 128.0)
    skin_chroma = float(np.hypot(skin[1] - 128.0, skin[2] - 128.0))
    own = inner[(inner[:, 0] >= skin[0]) & (chroma <= max(OWN_TEETH_CHROMA * skin_chroma, 6.0))]
    if len(own) < max(OWN_TEETH_MIN, OWN_TEETH_SHARE * len(inner)):
        return None
    return np.median(own, axis=0).astype(np.float32)


OWN_TEETH_MIN = 12  # pixels
OWN_TEETH_SHARE = 0.08  # of the mouth opening
OWN_TEETH_CHROMA = 0.6  # of the skin's chroma, at most


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


def fill_mouth(canvas: np.ndarray, posed: np.ndarray, rest_area: float, palette: MouthPalette,
               source: MouthSource | None = None) -> None:
    """Paint the mouth interior into `canvas` (in place) inside the posed inner lips.

    `posed` are the avatar's posed landmarks in canvas pixels; `rest_area` the inner-lip area
    the avatar's warp alone accounts for (its closed-lip rest); `source` (the driver's frame)
    is accepted for callers' sake and not used: the interior is the avatar's own.
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
    corners = posed[list(MOUTH_CORNERS), :2] - (x0, y0)
    patch = interior(local, corners, size, palette, amount)

    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(local * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    # Feather by about a pixel so the lips' own edge stays on top of the fill.
    mask = cv2.GaussianBlur(cv2.erode(mask, np.ones((2, 2), np.uint8)), (3, 3), 0)
    a = (mask.astype(np.float32) / 255.0 * alpha)[..., None]
    region = canvas[y0:y1, x0:x1]
    region[:] = (patch.astype(np.float32) * a + region.astype(np.float32) * (1 - a)).astype(np.uint8)


def interior(local_poly: np.ndarray, corners: np.ndarray, size: tuple[int, int], palette: MouthPalette,
             amount: float) -> np.ndarray:
    """The interior, BGR, (size[1], size[0]): the rim's shadow fading to the deep cavity away
    from the lips; on a wider opening the tongue, low in the mouth, from `TONGUE_FROM`; and the
    upper teeth (a band under the upper lip, `TEETH_HEIGHT` mouth widths tall, narrower than
    the mouth, shaded) once the opening passes `TEETH_FROM`. A flat black hole under a flat
    white bar read as a sticker, not a mouth."""
    w, h = size
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(local_poly * 4).astype(np.int32)], 255, shift=2)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    width = max(float(np.linalg.norm(corners[1] - corners[0])), 1.0)
    t = np.clip(depth / max(0.08 * width, 1.0), 0.0, 1.0)[..., None]
    lab = palette.lip_shadow * (1 - t) + palette.cavity * t
    along, across, top, bottom = _mouth_axes(local_poly, corners, size)
    lab = _lay(lab, palette.tongue, _tongue(along, across, top, bottom, width)
               * float(np.clip((amount - TONGUE_FROM) / 0.05, 0.0, 1.0)))
    show = float(np.clip((amount - TEETH_FROM) / 0.04, 0.0, 1.0))
    if show > 0.0:
        # At most part of the opening: a talking mouth shows its teeth's edge over the dark,
        # where a band filling the gap read as a grey strip between the lips.
        teeth_h = min(TEETH_HEIGHT * width, TEETH_SHARE * max(bottom - top, 1.0))
        v = (across - top) / max(teeth_h, 1e-6)  # 0 at the upper lip, 1 at the biting edge
        band = np.clip((1.0 - v) * teeth_h / max(1.5, 0.25 * teeth_h), 0.0, 1.0)
        band *= np.clip((0.36 * width - np.abs(along)) / (0.08 * width), 0.0, 1.0)
        # Darker towards the corners, where the teeth turn away into the mouth, and just under
        # the upper lip, in its shadow.
        shade = 1.0 - 0.5 * np.clip(np.abs(along) / (0.36 * width), 0.0, 1.0) ** 2
        shade *= 0.8 + 0.2 * np.clip(v / 0.35, 0.0, 1.0)
        shade *= 1.0 - TOOTH_GAP_DARK * _tooth_gaps(along, width) * np.clip((v - 0.3) / 0.7, 0.0, 1.0)
        teeth = np.broadcast_to(palette.teeth, lab.shape).copy()
        teeth[..., 0] *= shade
        lab = _lay(lab, teeth, band * show)
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


# Where neighbouring upper teeth meet, in mouth widths from the middle (incisors, laterals,
# canines, premolars), and how much darker those joins are, most at the biting edge.
TOOTH_JOINS = (0.0, 0.09, 0.165, 0.235)
TOOTH_GAP_DARK = 0.12


def _tooth_gaps(along: np.ndarray, width: float) -> np.ndarray:
    """1 on the joins between teeth (a pixel wide at least), 0 between them: a row of teeth
    rather than one bar."""
    a = np.abs(along)
    sigma = max(0.7, 0.006 * width)
    return np.max([np.exp(-(((a - j * width) / sigma) ** 2)) for j in TOOTH_JOINS], axis=0)


def _lay(lab: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    b = weight[..., None]
    return lab * (1 - b) + colour * b


def _mouth_axes(local_poly: np.ndarray, corners: np.ndarray,
                size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Per pixel, the position along the corner line from its middle and across it, growing
    from the upper lip towards the lower; and the upper and the lower lip's median across."""
    w, h = size
    width = max(float(np.linalg.norm(corners[1] - corners[0])), 1.0)
    e = (corners[1] - corners[0]) / width
    n = np.array([-e[1], e[0]])
    centre = (corners[0] + corners[1]) / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    along = (xs - centre[0]) * e[0] + (ys - centre[1]) * e[1]
    across = (xs - centre[0]) * n[0] + (ys - centre[1]) * n[1]
    half = len(local_poly) // 2
    top = float(np.median((local_poly[:half] - centre) @ n))
    bottom = float(np.median((local_poly[half:] - centre) @ n))
    if bottom < top:  # n points up
        across, top, bottom = -across, -top, -bottom
    return along, across, top, bottom


def _tongue(along: np.ndarray, across: np.ndarray, top: float, bottom: float, width: float) -> np.ndarray:
    """The tongue's cover (0..1): a soft ellipse resting on the lower lip, a third of the
    mouth wide either side and under half the opening tall, shaded darker towards its back."""
    gap = max(bottom - top, 1.0)
    centre, ra, rc = bottom + 0.1 * gap, 0.3 * width, 0.5 * gap
    r2 = (along / ra) ** 2 + ((across - centre) / rc) ** 2
    cover = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    back = np.clip((across - (centre - rc)) / rc, 0.0, 1.0)  # 0 at its far edge
    return cover * (0.5 + 0.5 * back)
