"""Expression presets blended on top of the tracked face, and the hold-to-blend mixer.

Every preset is a pure function of a `Motion` (no Qt, no state): it adds an offset to
`Motion.expression` (face units, in the driver's neutral head frame, y pointing down) and/or
scales `Motion.eye_openness`, weighted by `weight` in [0, 1]. The offsets are shaped on a
`neutral` face, the avatar's own landmarks divided by its face size, so that they fall off
smoothly into the cheeks, brows and chin instead of dragging single points.

`ExpressionMixer` turns key presses into weights that ramp in and out over ~150 ms.
"""

from __future__ import annotations

from dataclasses import replace
import threading
import time
from typing import Callable

import numpy as np

from app import landmarks as lm
from app.avatar import Avatar
from app.retarget import Motion

RAMP_SECONDS = 0.15

# Lower lip (outer and inner contours), which follows the jaw when the mouth opens.
LOWER_LIP = (146, 91, 181, 84, 17, 314, 405, 321, 375, 95, 88, 178, 87, 14, 317, 402, 318, 324)
UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
WINK_EYE = 1  # the avatar's left eye (Motion.eye_openness is right, left)

# Sizes in face units (1.0 = the larger side of the face oval's bounding box).
SMILE_LIFT = 0.030
SMILE_WIDEN = 0.030
SMILE_RADIUS = 0.085
BROW_LIFT = 0.040
BROW_RADIUS = 0.060
JAW_DROP = 0.075
EYES_WIDER = 0.35


def neutral_from_landmarks(points: np.ndarray) -> np.ndarray:
    """Landmarks (478, 3) in pixels -> the same face in face units, as the presets expect."""
    pts = np.asarray(points, dtype=np.float64)
    oval = pts[list(lm.FACE_OVAL), :2]
    size = float((oval.max(axis=0) - oval.min(axis=0)).max())
    return pts / max(size, 1e-6)


def _falloff(neutral: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    d2 = ((neutral[:, :2] - centre[:2]) ** 2).sum(axis=1)
    return np.exp(-d2 / (radius * radius))


def _smoothstep(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def smile_offset(neutral: np.ndarray) -> np.ndarray:
    """(478, 3): mouth corners (61, 291) up and out, the cheeks beside them following."""
    off = np.zeros_like(neutral, dtype=np.float64)
    corners = neutral[list(lm.MOUTH_CORNERS)]
    mid_x = corners[:, 0].mean()
    for corner in corners:
        w = _falloff(neutral, corner, SMILE_RADIUS)
        off[:, 0] += w * np.sign(corner[0] - mid_x) * SMILE_WIDEN
        off[:, 1] -= w * SMILE_LIFT
    return off


def surprise_offset(neutral: np.ndarray) -> np.ndarray:
    """(478, 3): brows up, jaw (lower lip and chin) down, mouth corners a little in."""
    off = np.zeros_like(neutral, dtype=np.float64)
    brows = neutral[list(lm.RIGHT_BROW + lm.LEFT_BROW)]
    w_brow = np.max([_falloff(neutral, b, BROW_RADIUS) for b in brows], axis=0)
    off[:, 1] -= w_brow * BROW_LIFT

    corners = neutral[list(lm.MOUTH_CORNERS)]
    lip_line = neutral[lm.UPPER_INNER_LIP_MID, 1]
    mid_x = corners[:, 0].mean()
    half_width = max(abs(corners[1, 0] - corners[0, 0]) / 2, 1e-3)
    dx = np.abs(neutral[:, 0] - mid_x)
    lateral = np.exp(-(dx / (1.6 * half_width)) ** 2)
    # Everything below the lips' meeting line drops with the jaw; the upper lip stays put.
    below = _smoothstep((neutral[:, 1] - lip_line) / 0.03)
    below[list(UPPER_LIP)] = 0.0
    below[list(LOWER_LIP)] = 1.0
    # The jaw hinges near the ears: points far down the chin move fully, the jaw sides less.
    w_jaw = below * lateral
    w_jaw[list(lm.MOUTH_CORNERS)] = 0.35
    off[:, 1] += w_jaw * JAW_DROP
    for corner in corners:
        w = _falloff(neutral, corner, SMILE_RADIUS * 0.7)
        off[:, 0] -= w * np.sign(corner[0] - mid_x) * 0.012
    return off


def smile(motion: Motion, weight: float, neutral: np.ndarray) -> Motion:
    if weight <= 0:
        return motion
    return replace(motion, expression=motion.expression + weight * smile_offset(neutral))


def surprise(motion: Motion, weight: float, neutral: np.ndarray) -> Motion:
    if weight <= 0:
        return motion
    eyes = motion.eye_openness * (1.0 + EYES_WIDER * weight)
    return replace(motion, expression=motion.expression + weight * surprise_offset(neutral), eye_openness=eyes)


def wink(motion: Motion, weight: float, neutral: np.ndarray | None = None) -> Motion:
    if weight <= 0:
        return motion
    eyes = motion.eye_openness.astype(np.float64).copy()
    eyes[WINK_EYE] *= 1.0 - min(weight, 1.0)
    return replace(motion, eye_openness=eyes)


PRESETS: dict[str, Callable[[Motion, float, np.ndarray], Motion]] = {
    "smile": smile,
    "surprise": surprise,
    "wink": wink,
}


def apply_expressions(motion: Motion, weights: dict[str, float], neutral: np.ndarray) -> Motion:
    """All presets with a positive weight, added on top of `motion`."""
    for name, w in weights.items():
        if w > 0:
            motion = PRESETS[name](motion, float(min(w, 1.0)), neutral)
    return motion


class _Ramp:
    __slots__ = ("start_value", "target", "start_t")

    def __init__(self) -> None:
        self.start_value = 0.0
        self.target = 0.0
        self.start_t = 0.0

    def value(self, t: float, ramp: float) -> float:
        step = (t - self.start_t) / ramp if ramp > 0 else np.inf
        if self.target > self.start_value:
            return min(self.target, self.start_value + step)
        return max(self.target, self.start_value - step)


class ExpressionMixer:
    """Holds which expressions are pressed and blends them in and out over `ramp` seconds.

    Thread-safe: `press`/`release` come from the GUI thread, `apply` from the render thread.
    The ramp is linear in time and eased (smoothstep) when applied.
    """

    def __init__(self, ramp: float = RAMP_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.ramp = ramp
        self.clock = clock
        self._ramps = {name: _Ramp() for name in PRESETS}
        self._neutral: np.ndarray | None = None
        self._lock = threading.Lock()

    def set_neutral(self, points: np.ndarray) -> None:
        """The avatar's landmarks (pixels); called whenever the avatar changes."""
        neutral = neutral_from_landmarks(points)
        with self._lock:
            self._neutral = neutral

    def _set_target(self, name: str, target: float, t: float | None) -> None:
        t = self.clock() if t is None else t
        with self._lock:
            r = self._ramps[name]
            current = r.value(t, self.ramp)
            r.start_value, r.target, r.start_t = current, target, t

    def press(self, name: str, t: float | None = None) -> None:
        self._set_target(name, 1.0, t)

    def release(self, name: str, t: float | None = None) -> None:
        self._set_target(name, 0.0, t)

    def release_all(self, t: float | None = None) -> None:
        for name in PRESETS:
            self.release(name, t)

    def weights(self, t: float | None = None) -> dict[str, float]:
        t = self.clock() if t is None else t
        with self._lock:
            return {name: float(_smoothstep(r.value(t, self.ramp))) for name, r in self._ramps.items()}

    def active(self, t: float | None = None) -> bool:
        return any(w > 0 for w in self.weights(t).values())

    def apply(self, motion: Motion, t: float | None = None) -> Motion:
        weights = self.weights(t)
        with self._lock:
            neutral = self._neutral
        if neutral is None or not any(w > 0 for w in weights.values()):
            return motion
        return apply_expressions(motion, weights, neutral)


class ExpressionHook:
    """The pipeline's motion hook: the held expressions on top of every face's tracked motion,
    each shaped on its own face. Runs on the render thread."""

    def __init__(self, mixer: ExpressionMixer) -> None:
        self.mixer = mixer
        self.last_blend: dict[str, float] = {}  # the weights used for the last frame
        self._neutral: dict[int, tuple[Avatar, np.ndarray]] = {}

    def __call__(self, k: int, avatar: Avatar, motion: Motion) -> Motion:
        if k == 0:
            self.last_blend = self.mixer.weights(self.mixer.clock())
        if not any(w > 0 for w in self.last_blend.values()):
            return motion
        cached = self._neutral.get(k)
        if cached is None or cached[0] is not avatar:
            cached = self._neutral[k] = (avatar, neutral_from_landmarks(avatar.face.landmarks))
        return apply_expressions(motion, self.last_blend, cached[1])
