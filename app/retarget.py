"""Retarget: the driver's motion relative to its neutral face, applied to the avatar's own face.

`measure_motion` turns a driver face into a `Motion` (head rotation, translation, scale and the
expression, all in face-size units so that they carry over to a face of any size), and
`apply_motion` poses the avatar's own landmarks with it. Keeping the two apart lets the temporal
logic (filtering, easing back to neutral) work on `Motion` alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import landmarks as lm
from .pose import (Similarity, euler_to_rotation, fit_similarity, matrix_to_rotvec, rotation_to_euler,
                   rotvec_to_matrix)

_RIGID = list(lm.RIGID)
_EYES = (
    (lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER, lm.RIGHT_IRIS),
    (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER, lm.LEFT_IRIS),
)


# A shut eye keeps this share of its rest lid gap (about half a pixel): lids and iris laid on
# one line leave the warp's triangles there with no orientation, some turn over, and the warp's
# untangler then drags the lids by several pixels (a flat patch over the eye). The renderer
# shows such an eye shut all the same (eyes.py).
SHUT_LID_GAP = 0.08


# How far from the eye's centre the iris may be moved, in eye widths (x, y): about where a real
# iris meets the corner or hides under a lid.
GAZE_LIMIT = np.array([0.3, 0.2])
# MediaPipe reads a glance smaller than it is, on the driver and on a rendered iris alike:
# carried over as read, a glance that put the driver's iris in the corner of the eye moved the
# portrait's a third of the way there. Chosen by self-reenactment, where the portrait is the
# driver's own first frame and the output's iris should read like the real frame's
# (docs/closeups/self_glances.jpg; tests/test_face.py::test_self_reenacted_glances_read_as_big_as_the_real_ones).
GAZE_READ_GAIN = np.array([1.5, 1.5])
GAZE_SHOW = 0.6  # of the posed eye's tallest opening: where along the eye the iris may go
GAZE_LID_SHARE = 0.8  # of the local half-gap: how far from the lids' midline the iris's centre may go


@dataclass(frozen=True)
class RetargetSettings:
    """How the driver's motion is carried over. Gains are 1.0 for a faithful copy."""

    mode: str = "relative"  # "relative" keeps the avatar's identity; "absolute" copies the driver's shape
    head_gain: float = 1.0  # head rotation
    translation_gain: float = 1.0
    scale_gain: float = 0.0  # 0: the head keeps its size when the driver leans in
    face_gain: float = 1.0  # everything not named below (cheeks, jaw, nose)
    mouth_gain: float = 1.0
    eyes_gain: float = 1.0
    brows_gain: float = 1.0
    gaze_gain: float = 1.0
    # Relative eye openness at or below which the avatar's eye is shut (trackers rarely report a
    # fully closed lid, so without this eyes "will not close"), and above which it is copied as
    # is (narrowing narrows). A driver's blink reads 0.1-0.3 of open, a laugh or squint 0.5-0.7.
    blink_closed_below: float = 0.3
    blink_open_above: float = 0.6
    max_translation: float = 0.25  # face sizes: beyond this the head would leave its ring
    # Head rotation limits (degrees). The warp cannot fold at any angle (it is a flow), but one
    # photo holds no far side of the head: past these the far cheek is squeezed to a sliver.
    max_yaw_degrees: float = 45.0
    max_pitch_degrees: float = 30.0
    max_roll_degrees: float = 40.0


@dataclass(frozen=True)
class Motion:
    """The driver's motion, relative to its neutral face, in the driver's normalised units."""

    rotation: np.ndarray  # (3,) rotation vector, camera frame
    translation: np.ndarray  # (2,) face sizes
    log_scale: float
    expression: np.ndarray  # (478, 3) face sizes, in the driver's neutral head frame
    eye_openness: np.ndarray  # (2,) right, left: 1.0 = as open as at neutral
    gaze: np.ndarray  # (2, 2) iris offset per eye, eye widths

    @staticmethod
    def neutral() -> "Motion":
        return Motion(np.zeros(3), np.zeros(2), 0.0, np.zeros((lm.NUM_LANDMARKS, 3)), np.ones(2), np.zeros((2, 2)))

    def is_neutral(self, tol: float = 1e-4) -> bool:
        return bool(np.abs(self.to_vector() - Motion.neutral().to_vector()).max() <= tol)

    def to_vector(self) -> np.ndarray:
        return np.concatenate([self.rotation, self.translation, [self.log_scale], self.expression.ravel(),
                               self.eye_openness, self.gaze.ravel()])

    @staticmethod
    def from_vector(v: np.ndarray) -> "Motion":
        n = lm.NUM_LANDMARKS * 3
        return Motion(v[0:3].copy(), v[3:5].copy(), float(v[5]), v[6:6 + n].reshape(-1, 3).copy(),
                      v[6 + n:8 + n].copy(), v[8 + n:12 + n].reshape(2, 2).copy())

    def blend(self, other: "Motion", w: float) -> "Motion":
        """(1-w)*self + w*other; rotation vectors blend linearly, fine for the small angles here."""
        return Motion.from_vector((1.0 - w) * self.to_vector() + w * other.to_vector())


def turn_axis(points: np.ndarray) -> np.ndarray:
    """The point a head turns and nods about: under the middle of its rigid points, as deep as
    the outline at the sides of the face. Measured at the rigid points' own centroid, a turn
    carried the face's sideways swing in the translation, and the skull (hair, ears and the band
    round them) slid with it: the background behind was dragged into a ghost of the head."""
    axis = points[_RIGID].mean(axis=0)
    axis[2] = points[list(lm.SIDE_OUTLINE), 2].mean()
    return axis


def face_size(points: np.ndarray) -> float:
    oval = points[list(lm.FACE_OVAL), :2]
    return float((oval.max(axis=0) - oval.min(axis=0)).max())


def eye_openness(points: np.ndarray, corners, upper, lower) -> float:
    width = np.linalg.norm(points[corners[0], :2] - points[corners[1], :2])
    gap = np.linalg.norm(points[list(upper), :2] - points[list(lower), :2], axis=1).mean()
    return float(gap / max(width, 1e-6))


def _iris_offset(points: np.ndarray, corners, iris) -> np.ndarray:
    """Iris centre in eye widths, in image axes, from the corners' midpoint. The corners are
    fixed to the skull, so this is the eye's own turn; the lids are not (measured up and down
    from the lids' midline, a wide stare was carried over as a glance down and a squint as
    one up, and the portrait's iris dipped whenever the driver's lids opened)."""
    a, b = points[corners[0], :2], points[corners[1], :2]
    width = max(float(np.linalg.norm(a - b)), 1e-6)
    return (points[iris[0], :2] - (a + b) / 2) / width


@dataclass(frozen=True)
class DriverReference:
    """The driver's neutral face, against which its motion is measured."""

    landmarks: np.ndarray
    size: float
    eye_openness: np.ndarray
    iris_offsets: np.ndarray
    # The neutral with its lips brought together (`close_rest_lips`): expression is measured
    # from it, as the avatar is posed from its own closed lips, so a neutral that shows its
    # teeth (a smile held from the first frame, Calibrate pressed mid-word) is carried over as
    # open, and the avatar's lips meet exactly when the driver's do.
    closed: np.ndarray

    @staticmethod
    def from_landmarks(points: np.ndarray) -> "DriverReference":
        points = points.astype(np.float64)
        return DriverReference(
            points, face_size(points),
            np.array([eye_openness(points, c, u, lo) for c, u, lo, _ in _EYES]),
            np.array([_iris_offset(points, c, i) for c, _, _, i in _EYES]),
            close_rest_lips(points),
        )


def measure_motion(reference: DriverReference, points: np.ndarray) -> Motion:
    """The driver's current face (478, 3) as a Motion relative to its neutral reference."""
    points = points.astype(np.float64)
    head = fit_similarity(reference.landmarks[_RIGID], points[_RIGID])
    # Undo the head pose so that what is left is expression only; dividing by the fitted scale
    # keeps expressions the same size when the driver leans towards the camera.
    unposed = head.inverse_apply(points)
    expression = (unposed - reference.closed) / reference.size
    axis0 = turn_axis(reference.landmarks)
    openness = np.array([eye_openness(unposed, c, u, lo) for c, u, lo, _ in _EYES])
    iris = np.array([_iris_offset(unposed, c, i) for c, _, _, i in _EYES])
    return Motion(
        rotation=matrix_to_rotvec(head.rotation),
        translation=(head.apply(axis0) - axis0)[:2] / reference.size,
        log_scale=float(np.log(head.scale)),
        expression=expression,
        eye_openness=openness / np.maximum(reference.eye_openness, 1e-3),
        gaze=iris - reference.iris_offsets,
    )


@dataclass(frozen=True)
class PosedFace:
    """The avatar's landmarks posed by a Motion, the 2-D similarity that best fits its face
    (`head`), and the one its skull follows (`skull`: what the hair and the ring around the
    head move with; the face's own fit where none is given)."""

    landmarks: np.ndarray  # (478, 3) avatar pixels
    head: Similarity  # 2-D, avatar neutral -> posed
    skull: Similarity | None = None
    # (11, 2) avatar pixels: where the upper teeth's biting edge lies: the line its lips meet
    # along at rest (`landmarks.lip_meeting_line` of `close_rest_lips`), posed in 3-D with the
    # head alone, as the landmarks are, not with the lips: the upper teeth are fixed to the
    # skull, so a rising lip uncovers them and a dropping jaw opens the dark below them. None
    # where only `head` is known (the renderer then moves the rest line by `head`).
    teeth: np.ndarray | None = None

    @property
    def ring_transform(self) -> Similarity:
        return self.skull if self.skull is not None else self.head


@dataclass(frozen=True)
class RestEye:
    """One of the avatar's eyes at rest, as the lids' moves need it (worked out once)."""

    down: np.ndarray  # (2,) unit across the eye, pointing down the image
    width: float
    lids: tuple[list[int], list[int]]  # the upper and the lower lid's landmarks
    bumps: tuple[np.ndarray, np.ndarray]  # per lid point: 1 mid-eye, 0 at the corners

    @staticmethod
    def of(points: np.ndarray, corners, upper, lower) -> "RestEye":
        centre, _, e, width = _eye_frame(points, corners, upper, lower)
        lids = (list(upper), list(lower))
        return RestEye(_down_normal(e), width, lids, (_lid_bump(points[lids[0]], centre, e, width),
                                                      _lid_bump(points[lids[1]], centre, e, width)))


@dataclass
class AvatarFace:
    """The avatar's own face: what motion is applied to."""

    landmarks: np.ndarray  # (478, 3) pixels
    # Room for the head to shift left, right, up, down (pixels) before its warp band is
    # squeezed shut (`WarpRig.head_room`); unlimited where no rig says otherwise.
    room: np.ndarray = field(default_factory=lambda: np.full(4, np.inf))
    # How far the face lies inside the still parts, per side (`WarpRig.face_margin`): a shift
    # away from a side stretches that band.
    margin: np.ndarray = field(default_factory=lambda: np.full(4, np.inf))
    # Share of each landmark's motion that reaches the warp (`WarpRig.landmark_reach`: the rig
    # holds points by the crop border still); all of it where none is given.
    reach: np.ndarray | None = None
    # Share of the head's move the ring over its hair can follow (`WarpRig.crown_share`): below
    # 1 where the picture's edge holds the crown still.
    crown: float = 1.0
    size: float = field(init=False)
    pivot: np.ndarray = field(init=False)
    eyes: tuple[RestEye, RestEye] = field(init=False)

    def __post_init__(self) -> None:
        self.landmarks = self.landmarks.astype(np.float64)
        self.size = face_size(self.landmarks)
        if self.reach is None:
            self.reach = np.ones(len(self.landmarks))
        # The pivot is the same point the driver's translation is measured at (`turn_axis`): a
        # turn's swing of the face arrives through the rotation alone, and the translation (which
        # the skull follows) is the head's own move.
        self.pivot = turn_axis(self.landmarks)
        self.eyes = tuple(RestEye.of(self.landmarks, *eye[:3]) for eye in _EYES)


def _blink_curve(ratio: float, closed_below: float, open_above: float) -> float:
    """The driver's relative openness -> the avatar's: unchanged above `open_above` (a laugh or
    a squint narrows the eye by what the driver's narrows), shut at `closed_below` and under
    (trackers rarely report a fully closed lid, so without this eyes "will not close"), and
    between them a cubic that leaves 0 flat and meets the identity with its own slope, so the
    lids neither jump nor stall on the way. (A smoothstep to `open_above` with 0.4/0.75 took a
    narrowing to 0.57 down to 0.36: a laugh shut the eyes.)"""
    if ratio >= open_above:
        return ratio
    t = float(np.clip((ratio - closed_below) / max(open_above - closed_below, 1e-6), 0.0, 1.0))
    m = (open_above - closed_below) / max(open_above, 1e-6)  # slope 1 at the top, in t units
    return float(open_above * ((3 - 2 * t) * t * t + m * (t - 1) * t * t))


# Eyes closing together whose openness differs by less than this (relative) close as one: a
# tracker reads the two lids of one blink a frame or a few tenths apart, and one eye shut
# beside a half-open one read as a wink (4 of 9 blinks checked). A real wink differs by more.
WINK_SPREAD = 0.35
WINK_FADE = 0.05  # under WINK_SPREAD, over which the pairing fades out (no jump where a wink starts)
PAIR_OPEN = 1.0  # relative openness of the more open eye from which the eyes are no longer paired


def conjugate_gaze(gaze: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(2, 2) the eyes' gaze with one height for both: their heights' mean, each weighted by
    `weights` (the eyes' `_aperture_weight`: none from a shutting eye, whose iris reading is a
    guess; both heights kept where both eyes are shutting). Eyes turn up
    and down together; MediaPipe reads each eye's height with its own noise, a few hundredths
    of an eye's width apart on a steady stare, and once the lids ride on the iris
    (`_ride_lids`) that noise put one lid lower than the other: a flickering half-wink."""
    gaze = np.array(gaze, np.float64)
    gaze[:, 1] = _both_eyes(gaze[:, 1], weights)
    return gaze


def _both_eyes(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(2,) the two eyes' `values` replaced by their mean weighted by `weights`; as they are
    where both weights are 0."""
    w = np.asarray(weights, np.float64)
    if w.sum() <= 1e-6:
        return np.asarray(values, np.float64)
    return np.full(2, float((np.asarray(values, np.float64) * w).sum() / w.sum()))


def _driver_eye_width(reference: DriverReference | None, eye: int) -> float | None:
    """The driver's eye's width at its neutral, face sizes (None without a reference)."""
    if reference is None:
        return None
    return _eye_frame(reference.landmarks, *_EYES[eye][:3])[3] / reference.size


def _paired_blink(ratios: np.ndarray, settings: RetargetSettings) -> np.ndarray:
    """Both eyes' relative openness, drawn together when both are closing and not winking: the
    more open eye towards the other, wholly while it is under `blink_open_above`, less and less
    up to PAIR_OPEN (an eye that open is not closing: two eyes' own shapes differ), and less
    and less as they read further apart, up to WINK_SPREAD. A blink's lids are read a frame
    apart: with a hard line at `blink_open_above`, one eye reading 0.76 beside the other's 0.61
    (lp_d12, a blink in the middle of a turn) was left alone, and the portrait winked."""
    ratios = np.asarray(ratios, np.float64)
    top, spread = float(ratios.max()), float(abs(ratios[0] - ratios[1]))
    closing = np.clip((PAIR_OPEN - top) / max(PAIR_OPEN - settings.blink_open_above, 1e-6), 0.0, 1.0)
    alike = np.clip((WINK_SPREAD - spread) / WINK_FADE, 0.0, 1.0)
    low = ratios.min()
    return low + (ratios - low) * (1.0 - float(closing * alike))


_LIP_FALLOFF = 0.1  # face sizes from the lip line: how far the lips' un-crossing carries


def _uncross_lips(base: np.ndarray, pts: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Lips may close but not pass through each other.

    Motion is relative: a driver whose neutral mouth is slightly open, pressing the lips shut,
    asks for a closing that an avatar with closed lips at rest has no room for; applied as is,
    the avatar's upper and lower lips cross (the warp folds there, and a landmark detector reads
    the crossed lips as an opening). Wherever a lower inner lip point would rise above its upper
    partner, both go back to where they meet, and the lips around them follow, fading out
    `_LIP_FALLOFF` face sizes away from the lip line.
    """
    up, lo = list(lm.UPPER_INNER_LIP), list(lm.LOWER_INNER_LIP)
    a, b = base[lm.MOUTH_CORNERS[0], :2], base[lm.MOUTH_CORNERS[1], :2]
    along = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    down = np.array([-along[1], along[0]])
    if float((base[lm.CHIN, :2] - (a + b) / 2) @ down) < 0:  # towards the chin
        down = -down
    gap = (pts[lo, :2] - pts[up, :2]) @ down
    floor = np.minimum((base[lo, :2] - base[up, :2]) @ down, 0.0)
    cross = np.maximum(floor - gap, 0.0)
    if not cross.any():
        return pts
    return _part_lips(base, pts, region, cross)


def close_rest_lips(base: np.ndarray) -> np.ndarray:
    """The avatar's landmarks with its inner lips brought together where they are apart at
    rest, the lips and the chin below them following (`_part_lips`). Motion is applied to this, so
    an open-mouth portrait's lips meet whenever the driver's do, and its own teeth and mouth
    interior are then squeezed away by the warp; it opens from there by the driver's opening."""
    up, lo = list(lm.UPPER_INNER_LIP), list(lm.LOWER_INNER_LIP)
    a, b = base[lm.MOUTH_CORNERS[0], :2], base[lm.MOUTH_CORNERS[1], :2]
    along = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    down = np.array([-along[1], along[0]])
    if float((base[lm.CHIN, :2] - (a + b) / 2) @ down) < 0:
        down = -down
    gap = np.maximum((base[lo, :2] - base[up, :2]) @ down, 0.0)
    # A closed mouth's hairline gap (MediaPipe leaves a pixel or so) stays as it is.
    if not (gap > CLOSED_GAP * face_size(base)).any():
        return base
    out = base
    # The move is interpolated along the mouth between pairs whose two points sit at slightly
    # different places along it, so one pass leaves a pixel or two: three leave none.
    for _ in range(3):
        gap = np.maximum((out[lo, :2] - out[up, :2]) @ down, 0.0)
        out = _part_lips(base, out, _CLOSING_REGION, -gap, CLOSING_LOWER_SHARE, JAW_REACH)
    return out


CLOSED_GAP = 0.01  # face sizes: an inner-lip gap under this is a closed mouth
# What follows lips that close: every landmark but the rigid ones the head's pose is measured
# from (the nose's base lies within the lips' falloff; moved, it tilted the measured pose).
_CLOSING_REGION = np.setdiff1d(np.arange(lm.NUM_LANDMARKS), _RIGID)
# Share of an open portrait's lip gap the lower lip takes when its lips are brought together:
# a mouth closes mostly by the jaw rising, the upper lip barely moving.
CLOSING_LOWER_SHARE = 0.7
# Below the mouth, the closing's falloff reaches this many times the chin's distance from the
# lips: the chin rises with the lower lip, most of the way.
JAW_REACH = 2.0


def _part_lips(base: np.ndarray, pts: np.ndarray, region, amount: np.ndarray,
               lower_share: float = 0.5, jaw_reach: float = 0.0) -> np.ndarray:
    """`pts` with each inner-lip pair moved apart by `amount` (pixels, one per pair; negative:
    together), the lower lip taking `lower_share` of it and the upper the rest, and the mouth
    `region` around them following: each lip whole, out to its outer line, then fading out
    over `_LIP_FALLOFF` face sizes (positions taken from `base`). A falloff from the inner
    lip line left a wide-open portrait's outer lip line where it was as its inner line rose:
    the lower lip, closed, was a bulge twice its own height. `jaw_reach`: below the mouth, the
    falloff reaches this many times the chin's distance from the lips instead, so the chin
    comes along (a mouth closes by the jaw rising; a chin left behind stretched the lower lip's
    edge into pink streaks down to it)."""
    up, lo = list(lm.UPPER_INNER_LIP), list(lm.LOWER_INNER_LIP)
    region = np.asarray(region)
    a, b = base[lm.MOUTH_CORNERS[0], :2], base[lm.MOUTH_CORNERS[1], :2]
    along = (b - a) / max(float(np.linalg.norm(b - a)), 1e-6)
    down = np.array([-along[1], along[0]])
    if float((base[lm.CHIN, :2] - (a + b) / 2) @ down) < 0:  # towards the chin
        down = -down
    cross = amount
    # The overlap, as a function of the position along the mouth (nothing at the corners).
    xs = ((base[up, :2] + base[lo, :2]) / 2 - a) @ along
    mid = ((base[up, :2] + base[lo, :2]) / 2 - a) @ down
    order = np.argsort(xs)
    width = float((b - a) @ along)
    kx = np.concatenate([[0.0], xs[order], [width]])
    kc = np.concatenate([[0.0], cross[order], [0.0]])
    km = np.concatenate([[0.0], mid[order], [0.0]])
    rel = base[region, :2] - a
    x, y = rel @ along, rel @ down
    off = y - np.interp(x, kx, km)
    side = np.sign(off)
    side[np.isin(region, up)] = -1.0
    side[np.isin(region, lo)] = 1.0
    f = face_size(base)
    move = np.interp(x, kx, kc)
    # How far each lip's outer line lies from the mid line, along the mouth: the falloff
    # starts there, so both lips move whole.
    outer = np.asarray(lm.OUTER_LIPS)
    orel = base[outer, :2] - a
    ox, ooff = orel @ along, orel @ down - np.interp(orel @ along, kx, km)
    reach = np.zeros(len(region))
    for sgn in (-1.0, 1.0):
        pick = np.sign(ooff) == sgn
        if pick.sum() >= 2:
            o = np.argsort(ox[pick])
            reach[side == sgn] = np.interp(x[side == sgn], ox[pick][o], np.abs(ooff[pick][o]))
    falloff = np.full(len(region), _LIP_FALLOFF * f)
    if jaw_reach > 0:
        chin = float((base[lm.CHIN, :2] - a) @ down - np.interp((base[lm.CHIN, :2] - a) @ along, kx, km))
        falloff[side > 0] = max(_LIP_FALLOFF * f, jaw_reach * chin)
        move = np.where(side > 0, _jaw_move(move, x, off, reach, kc, width, chin), move)
    w = np.clip(1.0 - np.maximum(np.abs(off) - np.maximum(reach, np.abs(move) / 2), 0.0) / falloff, 0.0, 1.0)
    shift = side * w * move * np.where(side > 0, lower_share, 1.0 - lower_share)
    out = pts.copy()
    out[region, :2] += shift[:, None] * down
    return out


def _jaw_move(move: np.ndarray, x: np.ndarray, off: np.ndarray, reach: np.ndarray, kc: np.ndarray,
              width: float, chin: float) -> np.ndarray:
    """Below the lower lip, the lips' move along the mouth (`move`, the pairs' gaps, nothing at
    the corners) gives way to the jaw's: the whole chin rises by the mouth's largest gap, a
    little less past the corners. Taken from the lips all the way down, the chin's middle rose
    and its sides stayed: the chin's outline was pulled into a V, creased down its middle."""
    span = float(kc[np.argmax(np.abs(kc))]) if len(kc) else 0.0  # the largest gap, signed
    outside = np.maximum.reduce([np.zeros_like(x), -x, x - width]) / max(JAW_SPREAD * width, 1e-6)
    jaw = span * np.clip(1.0 - outside, 0.0, 1.0) ** 2
    below = np.clip((np.abs(off) - reach) / max(JAW_BLEND * chin, 1e-6), 0.0, 1.0)
    t = below * below * (3.0 - 2.0 * below)
    return move + (jaw - move) * t


JAW_SPREAD = 0.6  # mouth widths past each corner over which the jaw's rise fades out
JAW_BLEND = 0.5  # of the chin's distance below the lips: where the lips' move has become the jaw's


# Relative openness over which the lids' shared move (`aperture_shift`) fades in: a blink's
# own move of the lids' midline is the blink's (SHUT_LID_GAP and the meeting line), not a glance.
APERTURE_FROM, APERTURE_FULL = 0.5, 0.8
# Eye widths the opening may move across the eye at most: lids follow a glance by a few
# hundredths of the eye's width; a tracking glitch is not let throw them further.
APERTURE_MAX = 0.06
# Shares of the iris's own move across the eye that its upper and lower lids take with it
# (`_ride_lids`). A real upper lid keeps about the same cover over the iris as the eye turns up
# or down, which is what keeps a painted iris's unpainted top hidden; the lower lid follows a
# little (on the footage it varies from clip to clip, on average well under the upper's).
UPPER_LID_RIDE, LOWER_LID_RIDE = 1.0, 0.3
# Eye widths the driver's lids may have moved one way before a glance the other way no longer
# moves them: they are seen, the iris's height is read (a blink's first frame reads it up).
LID_OPPOSED = 0.02


def aperture_shift(expression: np.ndarray, corners, upper, lower) -> np.ndarray:
    """(2,) how far the driver's eye opening moved as a whole against its corners (face sizes):
    the mean move of its lid points less its corners'. Lids follow the eye's vertical turn (on
    lp_d3, lp_d12 and a webcam clip the lids' midline moves with the iris, correlation
    0.7-0.9, about a third as far), which the openness alone (a gap) cannot carry."""
    lids = expression[[*upper, *lower], :2].mean(axis=0)
    return lids - expression[list(corners), :2].mean(axis=0)


def _aperture_weight(k: float) -> float:
    """How much of a glance's move the lids take at relative openness `k`: none on a shutting
    eye (a blink's own move of the lids is the blink's), all from APERTURE_FULL."""
    return float(np.clip((k - APERTURE_FROM) / (APERTURE_FULL - APERTURE_FROM), 0.0, 1.0))


def _lid_bump(points: np.ndarray, centre: np.ndarray, e: np.ndarray, width: float) -> np.ndarray:
    """Per point of `points` (an eye's, at rest), 1 in the middle of the eye and 0 at its
    corners; `centre`, `e`, `width`: the eye's frame (`_eye_frame`)."""
    u = np.clip((points[:, :2] - centre) @ e / width + 0.5, 0.0, 1.0)  # 0 and 1 at the corners
    return 4.0 * u * (1.0 - u)


def _down_normal(e: np.ndarray) -> np.ndarray:
    """The unit across an eye whose unit along it is `e`, pointing down the image (the two eyes'
    corners run opposite ways, so the plain normal points up for one of them)."""
    n = np.array([-e[1], e[0]])
    return n if n[1] >= 0.0 else -n


def _aperture_share(rest: RestEye, shift: np.ndarray, driver_width: float | None, face_size: float) -> float:
    """The driver's `shift` (face sizes, from `aperture_shift`) across the avatar's eye, as a
    share of the driver's eye's width (`driver_width`, face sizes; without it, the avatar's
    `face_size` in pixels stands for it), image-down positive, at most APERTURE_MAX."""
    across = float(shift @ rest.down) * (1.0 / driver_width if driver_width else face_size / rest.width)
    return float(np.clip(across, -APERTURE_MAX, APERTURE_MAX))


def _move_aperture(pts: np.ndarray, rest: RestEye, share: float, k: float) -> float:
    """Move the posed lids (in place) across the eye by `share` of its width (`_aperture_share`),
    most in the middle of the eye, none at its corners, fading out as the eye shuts (`k`, its
    relative openness). Returns the lids' move in the middle of the eye (eye widths,
    image-down positive)."""
    weight = _aperture_weight(k)
    if weight <= 0.0:
        return 0.0
    idx = [*rest.lids[0], *rest.lids[1]]
    bump = np.concatenate(rest.bumps)
    # Scaled so the lids' mean move is the driver's (the corners stay).
    gain = share * weight / max(float(bump.mean()), 1e-6)
    pts[idx, :2] += np.outer(bump * gain * rest.width, rest.down)
    return gain


def _ride_lids(pts: np.ndarray, base: np.ndarray, rest: tuple[RestEye, RestEye], iris_moves: list[float],
               shared: list[float], ks: list[float]) -> None:
    """Carry both eyes' posed lids (in place) with their irises' move across the eye
    (`iris_moves`, eye widths, image-down positive, against the corners; `ks`, the eyes'
    relative openness): the upper lids by UPPER_LID_RIDE of it and the lower by LOWER_LID_RIDE,
    in the middle of each eye, none at the corners, as far as the lids have not already gone
    that way (the driver's own lids, through the openness and `_move_aperture`, mostly have: a
    glance up widens the driver's eye too); fading as an eye shuts, as the lids' shared move
    does. Both eyes' lids take one move, so that one eye's noisier reading does not set one lid
    lower than the other (a flickering half-wink). Where the driver's lids' shared move
    (`shared`, from `_move_aperture`) went the other way, the lids are left there (LID_OPPOSED):
    they are seen, the iris's height is read (a blink's first frame reads its iris up); a lid
    the openness alone moved the other way (a smile's narrowing under a glance up) still rides.
    Only eyes open past APERTURE_FROM ride, so each iris's move is its gaze's (GAZE_FULL_FROM is
    lower: a shutting eye's iris is laid between its lids, not moved by its gaze).

    A painted iris shows only what its lids left uncovered: moved without them, a glance down
    uncovered its hidden top as a flat white cap over a shrunken iris (a startled stare, not a
    look down), and a glance up slid it under the upper lid (a sleepy half-lidded look). The
    driver's lids alone do not carry the portrait's with its iris: that iris moves
    GAZE_READ_GAIN times as far as MediaPipe reads the driver's, and the lids' shared move is
    capped and fades as the eye narrows."""
    weights = [_aperture_weight(k) for k in ks]
    live = [eye for eye in (0, 1) if weights[eye] > 0.0]
    if not live:
        return
    iris_move = float(np.mean([iris_moves[eye] for eye in live]))
    opposed = float(np.mean([shared[eye] for eye in live]))
    for side, ride in ((0, UPPER_LID_RIDE), (1, LOWER_LID_RIDE)):
        want = ride * iris_move
        moved = float(np.mean([_lid_moved(pts, base, rest[eye], side) for eye in live]))
        if moved * want >= 0.0:
            extra = want - moved if abs(want) > abs(moved) else 0.0
        else:
            extra = want
        if opposed * want < 0.0:  # fading out over LID_OPPOSED, so that the lids do not jump
            extra *= max(0.0, 1.0 - abs(opposed) / LID_OPPOSED)
        for eye in live:
            idx = rest[eye].lids[side]
            pts[idx, :2] += np.outer(rest[eye].bumps[side] * extra * rest[eye].width * weights[eye], rest[eye].down)


def _lid_moved(pts: np.ndarray, base: np.ndarray, rest: RestEye, side: int) -> float:
    """How far a posed lid (`side` 0 upper, 1 lower) moved in the middle of its eye, eye widths,
    image-down positive."""
    idx, middle = rest.lids[side], rest.bumps[side] >= 0.75
    if not middle.any():
        return 0.0
    return float(((pts[idx, :2] - base[idx, :2])[middle] @ rest.down).mean()) / rest.width


# Openness (relative to rest) from which the iris takes the whole gaze; below it the iris is
# laid between the closing lids and its gaze fades with them (a shut eye's iris is at rest).
GAZE_FULL_FROM = 0.5


def _eye_frame(points: np.ndarray, corners, upper, lower) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(corner midpoint, lid midpoint, unit along the eye, width)."""
    a, b = points[corners[0], :2], points[corners[1], :2]
    width = max(float(np.linalg.norm(b - a)), 1e-6)
    e = (b - a) / width
    mid = (points[list(upper), :2].mean(axis=0) + points[list(lower), :2].mean(axis=0)) / 2
    return (a + b) / 2, mid, e, width


def _gaze_shift(base: np.ndarray, posed: np.ndarray, corners, upper, lower, iris,
                gaze: np.ndarray) -> tuple[np.ndarray, float]:
    """The iris's move (pixels, before the head's rotation) that puts it, in the posed eye, at
    its rest place plus `gaze` (eye widths, image axes, as `_iris_offset` measures it), against
    the posed corners, then into where the posed lids let it show (`_within_opening`); and how
    far that moves it across the eye against its corners (eye widths, image-down positive)."""
    c0, _, e0, w0 = _eye_frame(base, corners, upper, lower)
    c1, m1, e1, w1 = _eye_frame(posed, corners, upper, lower)
    n0, n1 = np.array([-e0[1], e0[0]]), np.array([-e1[1], e1[0]])
    centre = base[iris[0], :2]
    # `gaze` is an image-axes vector in eye widths; its parts along and across the eye, as big
    # as the driver's glance really was (GAZE_READ_GAIN). `_within_opening` takes y from the
    # posed lids' midline, `lids` eye widths from the corners' line.
    rest = np.array([(centre - c0) @ e0, (centre - c0) @ n0]) / w0
    want = rest + np.array([gaze @ e0, gaze @ n0]) * GAZE_READ_GAIN
    lids = np.array([0.0, (m1 - c1) @ n1 / w1])
    x, y = _within_opening(posed, corners, upper, lower, c1, m1, e1, n1, w1, rest - lids, want - lids)
    down = float(_down_normal(e1) @ n1)  # +1 or -1: the two eyes' corners run opposite ways
    return c1 + x * w1 * e1 + (lids[1] + y) * w1 * n1 - centre, float(lids[1] + y - rest[1]) * down


def _within_opening(posed: np.ndarray, corners, upper, lower, c1: np.ndarray, m1: np.ndarray, e1: np.ndarray,
                    n1: np.ndarray, w1: float, rest: np.ndarray, want: np.ndarray) -> tuple[float, float]:
    """`want` (x from the corners' midpoint, y from the lids' midpoint, eye widths) moved into
    where an iris shows in the posed eye: along it, where the opening is at least GAZE_SHOW of
    its tallest (towards a corner the lids converge: an iris put there was clipped to a white
    eye); across it, within GAZE_LID_SHARE of the local half-gap from the local midline (on a
    narrow, smiling eye a fixed share of the eye's width put the iris above the upper lid).
    The portrait's own rest place is always allowed."""
    us = np.linspace(-0.5, 0.5, 41)

    def across(idx) -> np.ndarray:
        curve = posed[[corners[0], *idx, corners[1]], :2]
        u, v = (curve - c1) @ e1 / w1, (curve - m1) @ n1 / w1
        order = np.argsort(u, kind="stable")
        return np.interp(us, u[order], v[order])

    a, b = across(upper), across(lower)
    top, height = np.minimum(a, b), np.abs(b - a)
    shows = us[height >= GAZE_SHOW * height.max()]
    lo, hi = (max(shows.min(), -GAZE_LIMIT[0]), min(shows.max(), GAZE_LIMIT[0])) if len(shows) else (0.0, 0.0)
    x = float(np.clip(want[0], min(rest[0], lo), max(rest[0], hi)))
    mid, half = np.interp(x, us, top + height / 2), GAZE_LID_SHARE * np.interp(x, us, height) / 2
    half = min(half, GAZE_LIMIT[1])
    y = float(np.clip(want[1], min(rest[1], mid - half), max(rest[1], mid + half)))
    return x, y


def _between_lids(base: np.ndarray, posed: np.ndarray, corners, upper, lower, points: np.ndarray,
                  shift: np.ndarray, k: float) -> np.ndarray:
    """`points` ((N, 3), inside the eye at rest) carried with the lids: each keeps its place
    between the upper and the lower lid at its position along the eye, in depth too, so that a
    shut eye lays them on the line where the lids meet (after the head's 3-D rotation as well;
    an iris left at its own depth swings off that line on a nod). `k` is the eye's openness
    (0 shut): it scales the gaze's `shift`, so a shut eye's iris is back at rest, in the lids'
    own order, and its own depth's share."""
    c0, c1 = base[corners[0], :2], base[corners[1], :2]
    width = max(float(np.linalg.norm(c1 - c0)), 1e-6)
    e = (c1 - c0) / width
    n = np.array([-e[1], e[0]])

    def lid(src: np.ndarray, idx) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        curve = src[[corners[0], *idx, corners[1]]]
        rel = curve[:, :2] - c0
        u, v = rel @ e, rel @ n
        order = np.argsort(u, kind="stable")
        return u[order], v[order], curve[order, 2]

    def at(u, curve):
        return np.interp(u, curve[0], curve[1]), np.interp(u, curve[0], curve[2])

    rel = points[:, :2] - c0
    u, v = rel @ e, rel @ n
    (top, ztop), (bottom, zbot) = at(u, lid(base, upper)), at(u, lid(base, lower))
    frac = (v - top) / np.where(np.abs(bottom - top) < 1e-6, 1e-6, bottom - top)
    depth = points[:, 2] - (ztop + np.clip(frac, 0.0, 1.0) * (zbot - ztop))
    u2 = u + (shift @ e) * k
    (top2, ztop2), (bottom2, zbot2) = at(u2, lid(posed, upper)), at(u2, lid(posed, lower))
    v2 = top2 + frac * (bottom2 - top2) + (shift @ n) * k
    out = np.empty_like(points)
    out[:, :2] = c0 + np.outer(u2, e) + np.outer(v2, n)
    out[:, 2] = ztop2 + np.clip(frac, 0.0, 1.0) * (zbot2 - ztop2) + depth * k
    return out


# Share of the band between the moving and the still ring that a head shift may squeeze: the
# head stops where its ring would meet the still one (or the crop border). A face that fills
# its frame has no band above it: its head does not rise, it nods.
ROOM_SHARE = 1.0
# And of the face's margin behind the move, which it stretches: a head moving up stretches
# what lies under its chin to fill the gap. A webcam frame cut off under the mouth has no such
# margin, and its lower lip was stretched into red streaks down to the frame's edge. (The
# band between the rings, tried first, is thin under most portraits' heads: it stopped heads
# rising at all, self-reenactment AKD 9.6 -> 12.4.)
STRETCH_SHARE = 1.0
# Face sizes the face may slide under a crown the picture's edge holds still
# (`AvatarFace.crown`): the hair between them stretches that far without bending.
CROWN_SLIDE = 0.05


def head_shift(shift: np.ndarray, avatar: AvatarFace, settings: RetargetSettings) -> np.ndarray:
    """The driver's shift (face sizes), softly limited (tanh: small moves pass unchanged) to the
    room the avatar's rig has in the direction of the move (the band it squeezes), to the
    face's margin behind it (the band it stretches), to `settings.max_translation`, and, as
    far as the crown is held (`AvatarFace.crown`), to `CROWN_SLIDE`."""
    room, margin = avatar.room / avatar.size, avatar.margin / avatar.size
    out = np.zeros(2)
    for axis in (0, 1):
        ahead = 1 if shift[axis] > 0 else 0  # left/up for a negative shift
        toward, behind = room[2 * axis + ahead], margin[2 * axis + 1 - ahead]
        limit = min(settings.max_translation, ROOM_SHARE * toward, STRETCH_SHARE * behind)
        limit = avatar.crown * limit + (1.0 - avatar.crown) * min(limit, CROWN_SLIDE)
        if limit > 1e-6:
            out[axis] = limit * np.tanh(shift[axis] / limit)
    return out


# Face sizes a turn may always move the face's outline on a side, however little margin the
# portrait leaves there (a face cut off by its frame can still nod a little).
TURN_MARGIN_FLOOR = 0.03


def turn_within_margin(rotation: np.ndarray, avatar: AvatarFace) -> np.ndarray:
    """The rotation, scaled back along its own axis as far as needed so that no point of the
    face's outline carries into the band between it and the still frame a move bigger than the
    face's margin on its side (`STRETCH_SHARE`, as for a shift). Pulled in, that band is
    stretched (a turn's far cheek); moved along, it is sheared. On a portrait whose face fills
    the picture it is a few pixels of hair and ear, and it was smeared into streaks down the
    picture's side (and the flow folded in it, in places).

    A point's move counts by the share of it that reaches the warp (`AvatarFace.reach`). The
    head turns about the depth of its side outline, so a turn swings the forehead and the chin
    furthest; on a face that fills its picture they lie on its top and bottom edges, where the
    rig holds the warp still, and their swing never reaches the band: counted whole, it
    stopped such a face turning well short of what its band takes."""
    margin = np.maximum(STRETCH_SHARE * avatar.margin, TURN_MARGIN_FLOOR * avatar.size)
    if not np.isfinite(margin).all():
        return rotation
    ids = list(lm.FACE_OVAL)
    oval = avatar.landmarks[ids] - avatar.pivot
    room = margin[_facing_side(oval)]
    reach = avatar.reach[ids]

    def fits(r: np.ndarray) -> bool:
        moved = reach * np.linalg.norm((oval @ r.T - oval)[:, :2], axis=1)
        return bool((moved <= room).all())

    if fits(rotation):
        return rotation
    rotvec, low, high = matrix_to_rotvec(rotation), 0.0, 1.0
    for _ in range(12):  # bisection on the share of the turn that fits
        mid = (low + high) / 2
        low, high = (mid, high) if fits(rotvec_to_matrix(rotvec * mid)) else (low, mid)
    return rotvec_to_matrix(rotvec * low)


def _facing_side(from_pivot: np.ndarray) -> np.ndarray:
    """The side each outline point (relative to the pivot) faces: 0 left, 1 right, 2 top,
    3 bottom, as `AvatarFace.margin` orders them."""
    angle = np.degrees(np.arctan2(from_pivot[:, 1], from_pivot[:, 0]))
    return np.where(np.abs(angle) <= 45, 1, np.where(np.abs(angle) >= 135, 0, np.where(angle > 0, 3, 2)))


def limit_rotation(rotation: np.ndarray, settings: RetargetSettings) -> np.ndarray:
    """The rotation with its yaw, pitch and roll each clamped to the settings' limits."""
    yaw, pitch, roll = rotation_to_euler(rotation)
    limited = (np.clip(yaw, -settings.max_yaw_degrees, settings.max_yaw_degrees),
               np.clip(pitch, -settings.max_pitch_degrees, settings.max_pitch_degrees),
               np.clip(roll, -settings.max_roll_degrees, settings.max_roll_degrees))
    if np.allclose(limited, (yaw, pitch, roll)):
        return rotation
    return euler_to_rotation(*limited)


def _pose_eyes(pts: np.ndarray, avatar: AvatarFace, expression: np.ndarray, ratios: np.ndarray, gaze: np.ndarray,
               reference: DriverReference | None, settings: RetargetSettings) -> None:
    """Lay both eyes' lids and irises into `pts` (in place): each eye's lids at its relative
    openness (`ratios`) and moved with the driver's eye opening, its iris at its gaze (`gaze`,
    eye widths, one height for both eyes: `conjugate_gaze`), then both pairs of lids carried
    with the irises (`_ride_lids`)."""
    base, f = avatar.landmarks, avatar.size
    ks = [float(np.clip(_blink_curve(float(r), settings.blink_closed_below, settings.blink_open_above),
                        SHUT_LID_GAP, 1.6)) for r in ratios]
    weights = np.array([_aperture_weight(k) for k in ks])
    gazes = conjugate_gaze(gaze, weights)
    # The lids' shared move too is one for both eyes (it follows the eyes' turn up or down):
    # each eye's lids read on their own set one lid lower than the other at a blink's start.
    shares = _both_eyes(np.array([_aperture_share(avatar.eyes[eye], aperture_shift(expression, *_EYES[eye][:3])
                                                  * settings.eyes_gain, _driver_eye_width(reference, eye), f)
                                  for eye in (0, 1)]), weights)
    iris_moves: list[float] = []
    shared: list[float] = []
    for eye, (corners, upper, lower, iris) in enumerate(_EYES):
        k = ks[eye]
        up, low = base[list(upper)], base[list(lower)]
        # Lids meet a quarter of the way up from the lower lid, as in a real blink.
        meet = low + 0.25 * (up - low)
        pts[list(upper)] = meet + (up - meet) * k
        pts[list(lower)] = meet + (low - meet) * k
        shared.append(_move_aperture(pts, avatar.eyes[eye], float(shares[eye]), k))
        shift, across = _gaze_shift(base, pts, corners, upper, lower, iris, gazes[eye])
        iris_moves.append(across)
        iris_pts = base[list(iris)].copy()
        iris_pts[:, :2] += shift
        if k < GAZE_FULL_FROM:
            # The iris closes with the lids: each iris point keeps its place between the upper
            # and the lower lid at its own position along the eye, so a shut eye lays it on the
            # line where the lids meet. (Squashing it towards one mean point put it off that
            # line on a tilted or far eye, and the warp folded there: a flat patch over the eye.)
            # Above GAZE_FULL_FROM (a glance down lowers the lids too) the gaze is whole.
            iris_pts = _between_lids(base, pts, corners, upper, lower, base[list(iris)], shift,
                                     k / GAZE_FULL_FROM)
        pts[list(iris)] = iris_pts
    _ride_lids(pts, base, avatar.eyes, iris_moves, shared, ks)


def apply_motion(avatar: AvatarFace, motion: Motion, settings: RetargetSettings,
                 reference: DriverReference | None = None, absolute_points: np.ndarray | None = None) -> PosedFace:
    """Pose the avatar's landmarks with the driver's motion."""
    base = avatar.landmarks
    f = avatar.size
    gains = np.full(lm.NUM_LANDMARKS, settings.face_gain)
    parts = lm.part_indices()  # cached; not at import, which would import MediaPipe
    gains[parts["mouth"]] = settings.mouth_gain
    gains[parts["brows"]] = settings.brows_gain
    gains[parts["eyes"]] = settings.eyes_gain

    if settings.mode == "absolute" and reference is not None and absolute_points is not None:
        # The driver's own shape, placed on the avatar's face: identity leaks, by request.
        to_avatar = fit_similarity(reference.landmarks[_RIGID], base[_RIGID])
        pts = to_avatar.apply(absolute_points.astype(np.float64))
        return PosedFace(pts, fit_similarity(base[_RIGID, :2], pts[_RIGID, :2]))

    # Expression is measured in the driver's neutral head frame; the avatar's head may face
    # elsewhere (a three-quarter portrait), so rotate it into the avatar's frame first.
    if reference is not None:
        frame = fit_similarity(reference.landmarks[_RIGID] / reference.size, base[_RIGID] / f).rotation
    else:
        frame = np.eye(3)
    lips = close_rest_lips(base)
    expression = motion.expression @ frame.T
    pts = lips + expression * f * gains[:, None]
    pts = _uncross_lips(lips, pts, parts["mouth"])

    ratios = _paired_blink(1.0 + settings.eyes_gain * (motion.eye_openness - 1.0), settings)
    _pose_eyes(pts, avatar, expression, ratios, motion.gaze * settings.gaze_gain, reference, settings)

    rotation = turn_within_margin(limit_rotation(rotvec_to_matrix(motion.rotation * settings.head_gain), settings),
                                  avatar)
    scale = float(np.exp(motion.log_scale * settings.scale_gain))
    shift = head_shift(motion.translation * settings.translation_gain, avatar, settings) * f

    def place(points: np.ndarray) -> np.ndarray:
        out = avatar.pivot + (points - avatar.pivot) @ rotation.T
        out[:, :2] = avatar.pivot[:2] + (out[:, :2] - avatar.pivot[:2]) * scale + shift
        return out

    pts = place(pts)
    return PosedFace(pts, fit_similarity(base[_RIGID, :2], pts[_RIGID, :2]),
                     skull_motion(avatar.pivot[:2], rotation, scale, shift), place(lm.lip_meeting_line(lips))[:, :2])


def skull_motion(pivot: np.ndarray, rotation: np.ndarray, scale: float, shift: np.ndarray) -> Similarity:
    """How the outline of the head (hair, ears, the ring round them) moves: with the head's
    roll, scale and shift, but not with its turn or nod. A skull turning in place keeps its
    silhouette; only the face slides across it. A fit to the posed face points instead
    shrinks the whole head on a turn (the face's projection narrows) and drags the hair and
    the band round it sideways with the face: a squashed, smeared head past 30 degrees."""
    roll = np.radians(rotation_to_euler(rotation)[2])
    r2 = np.array([[np.cos(roll), -np.sin(roll)], [np.sin(roll), np.cos(roll)]])
    return Similarity(scale, r2, pivot + shift - scale * (r2 @ pivot))

