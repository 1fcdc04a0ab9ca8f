"""The mouth interior: what shows when the avatar opens its mouth wider than in its portrait.

Warping cannot invent it (the avatar's closed lips would smear across the gap), so it is
painted, from the avatar's own palette only (`MouthPalette`): a cavity shaded from its own lip
colour, darkened, and a row of upper teeth in its own lightest skin tones, sized to its own
mouth and fixed to its head (`retarget.PosedFace.teeth`): a lip that rises uncovers them, a jaw
that drops opens the dark below them. The driver's pixels are never used: its teeth colour-matched to a photo
came out as a khaki band, a lilac pill on a grey portrait, and the expression keys pasted the
driver's pink lips on as a red blob.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .landmarks import CHEEKS, FACE_OVAL, INNER_LIPS, MOUTH_CORNERS, OUTER_LIPS, lip_meeting_line

_INNER = list(INNER_LIPS)


@dataclass(frozen=True)
class MouthPalette:
    """The avatar's own mouth colours, OpenCV 8-bit Lab."""

    cavity: np.ndarray  # (3,) the deepest shadow
    lip_shadow: np.ndarray  # (3,) the cavity's rim, under the lips
    teeth: np.ndarray  # (3,)
    tongue: np.ndarray  # (3,) the lips' colour in the mouth's shade
    grain: np.ndarray | None = None  # (GRAIN_TILE, GRAIN_TILE, 3): `portrait_grain`


# Shares of the avatar's own colours the interior is made of (why: a cavity is a lip-coloured
# shadow; teeth are the face's lightest tone with little of its chroma).
CAVITY_LIGHTNESS = 0.22  # of the lips' lightness
RIM_LIGHTNESS = 0.5
CAVITY_CHROMA = 0.6  # of the lips' chroma
# Teeth take a share of the skin's red-green and more of its yellow-blue (natural teeth are
# ivory: Lab a* near 0, b* not far below the skin's; a portrait's own eye whites sit there
# too): at a quarter of both they were a blue-grey bar beside a warm skin.
TEETH_RED = 0.3
TEETH_YELLOW = 0.5
# The upper teeth, in bite-line lengths (`retarget.PosedFace.teeth`: the avatar's own mouth): how
# far their biting edge lies below the line the lips meet along (a parted mouth shows their
# edge), and their crowns' visible height above it (a laugh that lifts the lip further shows the gum's shadow).
BITE_DROP = 0.07
TEETH_CROWN = 0.2
# Half the teeth's row, fading out over a tenth more: a smile widens the mouth's corners past
# the teeth, and the last of them turn away into its shade.
TEETH_REACH = 0.5
# The inner lips' width over the bite line's below which pursed lips start to hide the teeth,
# and over how much more narrowing they hide them whole (an "o" draws the corners in to about
# 0.85, a wide-open mouth to about 0.9; a smile spreads them to 1.2).
PURSE_FROM = 0.92
PURSE_RANGE = 0.08
TEETH_LIGHT = 0.65  # teeth lightness: this share of the way from the skin's to the face's lightest
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
        teeth = grey + (skin - grey) * np.array([0.0, TEETH_RED, TEETH_YELLOW], np.float32)
        # Teeth sit in the mouth's shade: at the face's very lightest they read as a white sticker.
        teeth[0] = float(skin[0]) + TEETH_LIGHT * max(light - float(skin[0]), 0.0)
    return MouthPalette(shade(lip, CAVITY_LIGHTNESS, CAVITY_CHROMA), shade(lip, RIM_LIGHTNESS, CAVITY_CHROMA), teeth,
                        shade(lip, TONGUE_SHADE, TONGUE_SHADE), portrait_grain(image, points))


# The portrait's grain: what a slight blur (GRAIN_SIGMA pixels) takes out of its cheeks, drawn
# into a tile GRAIN_TILE pixels square; values past GRAIN_CLIP standard deviations (a wrinkle's
# or a pore's edge, not grain) are clipped.
GRAIN_SIGMA = 1.0
GRAIN_TILE = 64
GRAIN_CLIP = 2.5
GRAIN_BLOCK = 4  # pixels: the tile is made of squares this size copied from the cheeks
GRAIN_MIN_BLOCKS = 4


def portrait_grain(image: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """(GRAIN_TILE, GRAIN_TILE, 3) float32, zero mean, in Lab units per square root of the
    lightness it lies on: the portrait's own fine grain (film,
    paper, canvas, a JPEG's noise), to lay over the mouth interior it paints itself, which is
    otherwise smooth: on a grainy photo it read as a plastic insert (a smooth brown blob on
    Grace Hopper). Its cheeks' residual after a slight blur, in small squares copied from them
    in a fixed random order (the same tile every run): one square cut from a cheek is a few
    pixels across on a half-length portrait, and tiled, its repeats showed as a pattern; single
    pixels drawn at random lost the grain's own grain size (a fine stipple, like a screen).
    None when the cheeks show too few pixels."""
    h, w = image.shape[:2]
    cheeks = points[list(CHEEKS), :2]
    x0, y0 = np.clip(np.floor(cheeks.min(axis=0)).astype(int) - 2, 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(cheeks.max(axis=0)).astype(int) + 3, [x0 + 1, y0 + 1], [w, h])
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    for idx in (CHEEKS[:5], CHEEKS[5:]):
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points[list(idx), :2] - (x0, y0)).astype(np.int32)), 255)
    lab = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2LAB).astype(np.float32)
    smooth = cv2.GaussianBlur(lab, (0, 0), GRAIN_SIGMA)
    # Per square root of lightness: a photo's grain is fainter in its shadows (light's own
    # noise goes as its square root), and at the cheeks' strength the mouth's dark read as felt.
    residual = (lab - smooth) / np.sqrt(np.maximum(smooth[..., :1], 1.0))
    # Top-left corners of the GRAIN_BLOCK squares that lie wholly on a cheek.
    inside = cv2.erode(mask, np.ones((GRAIN_BLOCK + 2, GRAIN_BLOCK + 2), np.uint8), anchor=(1, 1)) > 0
    ys, xs = np.nonzero(inside[: inside.shape[0] - GRAIN_BLOCK + 1, : inside.shape[1] - GRAIN_BLOCK + 1])
    if len(ys) < GRAIN_MIN_BLOCKS:
        return None
    skin = residual[mask > 0]
    spread = skin.std(axis=0) + 1e-6
    residual = np.clip(residual - skin.mean(axis=0), -GRAIN_CLIP * spread, GRAIN_CLIP * spread)
    n = GRAIN_TILE // GRAIN_BLOCK
    pick = np.random.default_rng(0).integers(0, len(ys), n * n)
    blocks = [residual[y:y + GRAIN_BLOCK, x:x + GRAIN_BLOCK] for y, x in zip(ys[pick], xs[pick])]
    rows = [np.concatenate(blocks[r * n:(r + 1) * n], axis=1) for r in range(n)]
    return np.concatenate(rows, axis=0).astype(np.float32)


def _grain(grain: np.ndarray, size: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    """`grain` tiled over a patch of `size` (w, h) whose top-left pixel is `at` in the tile's
    frame (so that it moves with what it lies on)."""
    ys = (np.arange(size[1]) + at[1]) % grain.shape[0]
    xs = (np.arange(size[0]) + at[0]) % grain.shape[1]
    return grain[ys[:, None], xs[None, :]]


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
               bite: np.ndarray, source: MouthSource | None = None, seam: bool = False) -> None:
    """Paint the mouth interior into `canvas` (in place) inside the posed inner lips.

    `posed` are the avatar's posed landmarks in canvas pixels; `rest_area` the inner-lip area
    the avatar's warp alone accounts for (its closed-lip rest); `bite` the upper teeth's edge
    (`PosedFace.teeth`) in canvas pixels; `source` (the driver's frame) is accepted for
    callers' sake and not used: the interior is the avatar's own. `seam`: the portrait's own
    mouth is open, and the warp brings its lips together (`paint_seam`).
    """
    amount = opening(posed, rest_area)
    alpha = float(np.clip((amount - 0.005) / 0.03, 0.0, 1.0))
    if seam:
        paint_seam(canvas, posed, palette, 1.0 - alpha * alpha)  # until the interior covers it
    if alpha <= 0.0:
        return
    # The twenty inner-lip landmarks joined by straight lines made a wide mouth a polygon.
    poly = _rounded_loop(posed[_INNER, :2].astype(np.float64))
    h, w = canvas.shape[:2]
    x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 3
    x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 4
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 3 or y1 - y0 < 3:
        return
    local = poly - (x0, y0)
    size = (x1 - x0, y1 - y0)
    corners = posed[list(MOUTH_CORNERS), :2] - (x0, y0)
    # The grain's origin sits on the mouth's middle, not on the patch's corner, which moves as
    # the lips part: there the grain crawled across the mouth as it opened.
    middle = np.round(corners.mean(axis=0)).astype(int)
    patch = interior(local, corners, size, palette, amount, bite - (x0, y0), (-middle[0], -middle[1]))

    mask = np.zeros((size[1], size[0]), np.uint8)
    cv2.fillPoly(mask, [np.round(local * 4).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=2)
    # Feather by about a pixel so the lips' own edge stays on top of the fill.
    mask = cv2.GaussianBlur(cv2.erode(mask, np.ones((2, 2), np.uint8)), (3, 3), 0)
    a = (mask.astype(np.float32) / 255.0 * alpha)[..., None]
    region = canvas[y0:y1, x0:x1]
    region[:] = (patch.astype(np.float32) * a + region.astype(np.float32) * (1 - a)).astype(np.uint8)


SEAM_OPACITY = 0.9
SEAM_WIDTH = 0.02  # mouth widths, 2 pixels at least


def _rounded_loop(points: np.ndarray, passes: int = 2) -> np.ndarray:
    """A closed polygon's corners cut (Chaikin: each edge's quarter points), `passes` times:
    a smooth loop through the same region, as a mouth's inner edge is. Written out because it
    is four lines; OpenCV has no curve smoothing."""
    for _ in range(passes):
        nxt = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * nxt, 0.25 * points + 0.75 * nxt], axis=1).reshape(-1, 2)
    return points


def paint_seam(canvas: np.ndarray, posed: np.ndarray, palette: MouthPalette, strength: float) -> None:
    """Draw the line where an open-mouth portrait's lips meet, in its lips' shadow, with
    `strength` (0..1). The warp brings them together along a line it cannot draw: there its
    pixel centres fall now on one lip's margin, now between them, on the portrait's own
    squeezed teeth and interior, and the closed lips showed a dotted seam, white and dark. A
    closed mouth's line between its lips is a soft dark line."""
    if strength <= 0.0:
        return
    line = lip_meeting_line(posed[:, :2])
    width = float(np.linalg.norm(posed[MOUTH_CORNERS[0], :2] - posed[MOUTH_CORNERS[1], :2]))
    thick = max(2, int(round(SEAM_WIDTH * width)))
    h, w = canvas.shape[:2]
    x0, y0 = np.maximum(np.floor(line.min(axis=0)).astype(int) - thick - 2, 0)
    x1, y1 = np.minimum(np.ceil(line.max(axis=0)).astype(int) + thick + 3, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.polylines(mask, [np.round((line - (x0, y0)) * 4).astype(np.int32)], False, 255, thick, cv2.LINE_AA, shift=2)
    mask = cv2.GaussianBlur(mask, (3, 3), 0)  # soft, as a shadow between lips is
    colour = cv2.cvtColor(np.clip(palette.lip_shadow, 0, 255).astype(np.uint8)[None, None], cv2.COLOR_LAB2BGR)[0, 0]
    a = (mask.astype(np.float32) / 255.0 * SEAM_OPACITY * strength)[..., None]
    region = canvas[y0:y1, x0:x1]
    region[:] = (colour.astype(np.float32) * a + region.astype(np.float32) * (1 - a)).astype(np.uint8)


def interior(local_poly: np.ndarray, corners: np.ndarray, size: tuple[int, int], palette: MouthPalette,
             amount: float, bite: np.ndarray, grain_at: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The interior, BGR, (size[1], size[0]): the rim's shadow fading to the deep cavity away
    from the lips; on a wider opening the tongue, low in the mouth, from `TONGUE_FROM`; and the
    upper teeth, opaque, from the upper lip down to `bite` (`retarget.PosedFace.teeth`, in the
    same pixels) and `BITE_DROP` below it, at most `TEETH_CROWN` tall, shaded. A flat black hole
    under a flat white bar read as a sticker, not a mouth; a band of fixed height faded in by
    the opening was half see-through on a smile, a grey strip where the driver showed white
    teeth. The portrait's own grain (`palette.grain`, its top-left pixel at `grain_at` in the
    grain's frame) lies over all of it."""
    w, h = size
    inside = np.zeros((h, w), np.uint8)
    cv2.fillPoly(inside, [np.round(local_poly * 4).astype(np.int32)], 255, shift=2)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    width = max(float(np.linalg.norm(corners[1] - corners[0])), 1.0)
    t = np.clip(depth / max(0.08 * width, 1.0), 0.0, 1.0)[..., None]
    lab = palette.lip_shadow * (1 - t) + palette.cavity * t
    frame = _MouthFrame.of(local_poly, corners)
    along, across = frame.pixels(size)
    top, bottom = frame.lips(local_poly)
    lab = _lay(lab, palette.tongue, _tongue(along, across, top, bottom, width)
               * float(np.clip((amount - TONGUE_FROM) / 0.05, 0.0, 1.0)))
    # The teeth are sized and centred by the bite line, which moves with the head only: lips
    # pursed into an O narrow the mouth's corners, not the teeth behind them.
    b_along, b_across = frame.project(bite)
    order = np.argsort(b_along, kind="stable")
    arch = max(float(np.linalg.norm(bite[-1] - bite[0])), 1.0)
    edge = np.interp(along, b_along[order], b_across[order]) + BITE_DROP * arch
    # Lips pursed into an O stand out in front of the teeth: seen through them, the mouth is
    # dark. The narrower the lips' corners draw in from the teeth's width, the less of the
    # teeth shows (their edge rises towards the upper lip).
    inner = float(np.ptp(frame.project(local_poly)[0]))  # the lips' inner corners apart
    pursed = float(np.clip((PURSE_FROM - inner / arch) / PURSE_RANGE, 0.0, 1.0))
    edge = edge - pursed * np.maximum(edge - top, 0.0)
    crown = TEETH_CROWN * arch
    # Covered from the crown's top to the biting edge, a pixel's ramp at each.
    band = np.clip(edge - across + 0.5, 0.0, 1.0) * np.clip(across - (edge - crown) + 0.5, 0.0, 1.0)
    # How far from the teeth's middle, along the bite line's own points (evenly spaced on the
    # face, so a turned head's far side is foreshortened with it), beyond its ends in pixels:
    # measured along the picture, a three-quarter face had its teeth pushed to the near side.
    count = len(bite)
    pos = np.interp(along, b_along[order], order.astype(np.float64))
    beyond = np.maximum(b_along.min() - along, 0.0) + np.maximum(along - b_along.max(), 0.0)
    off = np.abs(pos - (count - 1) / 2) / (count - 1) * arch + beyond
    band *= np.clip((TEETH_REACH * arch - off) / (0.1 * arch), 0.0, 1.0)
    if band.max() > 0.0:
        shown = np.maximum(edge - top, 1.0)
        v = (across - top) / shown  # 0 at the upper lip, 1 at the biting edge
        # Darker towards the corners, where the teeth turn away into the mouth, just under the
        # upper lip, in its shadow, and towards each tooth's sides (each one rounded, meeting
        # its neighbour in a faint line that deepens towards the biting edge).
        shade = 1.0 - 0.5 * np.clip(off / (TEETH_REACH * arch), 0.0, 1.0) ** 2
        shade *= 0.8 + 0.2 * np.clip((across - top) / max(1.5, 0.04 * arch), 0.0, 1.0)
        side, join = _tooth_relief(off, arch)
        shade *= 1.0 - TOOTH_ROUND * side ** 2
        shade *= 1.0 - TOOTH_GAP_DARK * join * np.clip((v - 0.4) / 0.6, 0.0, 1.0)
        # Shade takes chroma with lightness: yellowish teeth darkened in lightness alone went olive.
        teeth = palette.teeth * shade[..., None] + np.array([0.0, 128.0, 128.0], np.float32) * (1.0 - shade[..., None])
        lab = _lay(lab, teeth, band)
    if palette.grain is not None:
        lab = lab + _grain(palette.grain, size, grain_at) * np.sqrt(np.maximum(lab[..., :1], 1.0))
    return cv2.cvtColor(np.clip(lab, 0, 255).astype(np.uint8), cv2.COLOR_LAB2BGR)


# Where neighbouring upper teeth meet, in bite-line lengths from the middle (incisors, laterals,
# canines, premolars), how much darker each tooth is at its sides than at its middle, and how
# much darker the joins are, most at the biting edge. Thin dark lines evenly spaced read as a
# comb or a barcode; rounded teeth with faint joins read as teeth.
TOOTH_JOINS = (0.0, 0.1, 0.18, 0.255, 0.33)
TOOTH_ROUND = 0.1
TOOTH_GAP_DARK = 0.1


def _tooth_relief(off: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, `off` from the teeth's middle (pixels) on a bite line `width` long: where it
    lies across its tooth (0 at the tooth's middle, 1 at its sides) and how near a join
    (1 on it, a pixel wide at least, 0 away from it)."""
    joins = np.asarray(TOOTH_JOINS) * width
    k = np.clip(np.searchsorted(joins, off, side="right") - 1, 0, len(joins) - 1)
    # Each tooth's far side; the last tooth as wide as the one before, with no join beyond it.
    ends = np.append(joins[1:], 2.0 * joins[-1] - joins[-2])
    left, right = joins[k], ends[k]
    t = np.clip((off - left) / np.maximum(right - left, 1e-6), 0.0, 1.0)
    sigma = max(0.7, 0.006 * width)
    near = np.minimum(off - left, np.where(k + 1 < len(joins), right - off, np.inf))
    return np.abs(2.0 * t - 1.0), np.exp(-((near / sigma) ** 2))


def _lay(lab: np.ndarray, colour: np.ndarray, weight: np.ndarray) -> np.ndarray:
    b = weight[..., None]
    return lab * (1 - b) + colour * b


@dataclass(frozen=True)
class _MouthFrame:
    """Axes on the posed mouth: along the corner line from its middle, and across it, growing
    from the upper lip towards the lower."""

    centre: np.ndarray
    e: np.ndarray
    n: np.ndarray

    @staticmethod
    def of(local_poly: np.ndarray, corners: np.ndarray) -> "_MouthFrame":
        width = max(float(np.linalg.norm(corners[1] - corners[0])), 1.0)
        e = (corners[1] - corners[0]) / width
        n = np.array([-e[1], e[0]])
        frame = _MouthFrame((corners[0] + corners[1]) / 2, e, n)
        top, bottom = frame.lips(local_poly)
        return frame if bottom >= top else _MouthFrame(frame.centre, e, -n)  # it pointed up

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = points - self.centre
        return d @ self.e, d @ self.n

    def pixels(self, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        w, h = size
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
        dx, dy = xs - self.centre[0], ys - self.centre[1]
        return dx * self.e[0] + dy * self.e[1], dx * self.n[0] + dy * self.n[1]

    def lips(self, local_poly: np.ndarray) -> tuple[float, float]:
        """The upper and the lower lip's median across."""
        half = len(local_poly) // 2
        across = self.project(local_poly)[1]
        return float(np.median(across[:half])), float(np.median(across[half:]))


def _tongue(along: np.ndarray, across: np.ndarray, top: float, bottom: float, width: float) -> np.ndarray:
    """The tongue's cover (0..1): a soft ellipse resting on the lower lip, a third of the
    mouth wide either side and under half the opening tall, shaded darker towards its back."""
    gap = max(bottom - top, 1.0)
    centre, ra, rc = bottom + 0.1 * gap, 0.3 * width, 0.5 * gap
    r2 = (along / ra) ** 2 + ((across - centre) / rc) ** 2
    cover = np.sqrt(np.clip(1.0 - r2, 0.0, 1.0))
    back = np.clip((across - (centre - rc)) / rc, 0.0, 1.0)  # 0 at its far edge
    return cover * (0.5 + 0.5 * back)
