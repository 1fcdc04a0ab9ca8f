"""Choosing the driver's neutral face: the most neutral frame seen so far, not the first.

Motion is measured against a neutral reference, so a reference taken mid-word (mouth open),
mid-blink or with the head turned shifts every later frame: the first face seen is a poor
choice. `NeutralSearch` scores each face for how neutral it looks (frontal, eyes open, mouth
closed, brows and mouth corners where they usually are) and keeps the best; the animator eases
over to a better one when it appears. `choose_neutral` does the same over a whole clip at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from . import landmarks as lm

# Columns of `neutral_features`.
_YAW, _ROLL, _PITCH, _MOUTH, _EYES, _BROWS, _WIDTH, _RIGHT_EYE, _LEFT_EYE = range(9)
_MOUTH_PAIRS = ((13, 14), (82, 87), (312, 317))


@dataclass(frozen=True)
class NeutralSettings:
    # Weights of each departure from neutral in the cost (units: radians for the head, mouth
    # gap over mouth width for the mouth, relative changes for the rest). A mouth open by 10%
    # of its width costs about as much as a 10 degree turn, a half-shut eye more than either.
    yaw: float = 2.0
    roll: float = 2.0
    pitch: float = 1.0
    mouth: float = 4.0
    eyes: float = 3.0
    brows: float = 2.0
    width: float = 2.0
    # A new best must beat the current one by this much: faces a hair more neutral than the
    # reference are not worth a transition.
    switch_margin: float = 0.03
    ease_seconds: float = 0.5  # how long the motion takes to go over to a new reference
    history: int = 300  # frames over which "usual" brows, pitch and mouth width are judged


def neutral_features(points: np.ndarray) -> np.ndarray:
    """(9,) head yaw, roll, pitch (radians, from the mesh's own depth), mouth gap over mouth
    width, eye openness, brow height and mouth width (both over face size), and the right and
    left eye's openness."""
    p = points.astype(np.float64)
    r, l = p[lm.RIGHT_EYE_CORNERS[0]], p[lm.LEFT_EYE_CORNERS[0]]
    across = l - r
    yaw = np.arctan2(across[2], np.linalg.norm(across[:2]))
    roll = np.arctan2(across[1], across[0])
    if abs(roll) > np.pi / 2:  # a mirrored face: the eyes' order flips, not the head
        roll -= np.sign(roll) * np.pi
    down = p[152] - p[10]  # forehead to chin
    pitch = np.arctan2(down[2], np.linalg.norm(down[:2]))
    width = max(float(np.linalg.norm(p[lm.MOUTH_CORNERS[0], :2] - p[lm.MOUTH_CORNERS[1], :2])), 1e-6)
    mouth = np.mean([np.linalg.norm(p[a, :2] - p[b, :2]) for a, b in _MOUTH_PAIRS]) / width
    eyes = []
    for corners, upper, lower in ((lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER),
                                  (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER)):
        w = max(float(np.linalg.norm(p[corners[0], :2] - p[corners[1], :2])), 1e-6)
        eyes.append(np.linalg.norm(p[list(upper), :2] - p[list(lower), :2], axis=1).mean() / w)
    oval = p[list(lm.FACE_OVAL), :2]
    size = max(float((oval.max(axis=0) - oval.min(axis=0)).max()), 1e-6)
    brows = (np.linalg.norm(p[105, :2] - p[159, :2]) + np.linalg.norm(p[334, :2] - p[386, :2])) / (2 * size)
    return np.array([yaw, roll, pitch, mouth, float(np.mean(eyes)), brows, width / size, *eyes])


def typical_features(seen: np.ndarray) -> np.ndarray:
    """What is usual over the (N, 9) features seen: medians, but for the eyes a high
    percentile (open eyes are what is usual; a clip of blinks and squints pulls the median
    down, and a squint was then taken as the neutral, so that every blink read half open)."""
    typical = np.median(seen, axis=0)
    typical[[_EYES, _RIGHT_EYE, _LEFT_EYE]] = np.percentile(seen[:, [_EYES, _RIGHT_EYE, _LEFT_EYE]], 80, axis=0)
    return typical


def neutrality_cost(features: np.ndarray, typical: np.ndarray, s: NeutralSettings) -> np.ndarray:
    """Cost of (..., 9) features against the `typical` ones (`typical_features`):
    0 for a frontal face with a shut mouth, open eyes, and brows and mouth at their usual
    place. Eyes count only when less open than usual (wide eyes are rarer than blinks and
    neutral enough), the head's pitch against its usual one (a webcam is often above or below
    the eyes)."""
    f = np.asarray(features, np.float64)
    rel = lambda col: (f[..., col] - typical[col]) / max(abs(typical[col]), 1e-6)  # noqa: E731
    return (s.yaw * np.abs(f[..., _YAW]) + s.roll * np.abs(f[..., _ROLL])
            + s.pitch * np.abs(f[..., _PITCH] - typical[_PITCH]) + s.mouth * f[..., _MOUTH]
            + s.eyes * np.maximum(-rel(_EYES), 0.0) + s.brows * np.abs(rel(_BROWS))
            + s.width * np.abs(rel(_WIDTH)))


@dataclass
class NeutralSearch:
    """The most neutral face offered so far (a running best over a live stream)."""

    settings: NeutralSettings = field(default_factory=NeutralSettings)
    best: np.ndarray | None = None  # (478, 3) landmarks
    _best_features: np.ndarray | None = None
    _seen: deque = field(default_factory=deque)

    def reset(self) -> None:
        self.best, self._best_features = None, None
        self._seen.clear()

    def offer(self, points: np.ndarray) -> bool:
        """Consider this face; True when it becomes the new best."""
        feat = neutral_features(points)
        self._seen.append(feat)
        while len(self._seen) > self.settings.history:
            self._seen.popleft()
        if self.best is None:
            self.best, self._best_features = points.astype(np.float64), feat
            return True
        # The best is judged again against today's "usual" values: what was typical after
        # three frames may not be after three hundred.
        typical = typical_features(np.array(self._seen))
        costs = neutrality_cost(np.stack([feat, self._best_features]), typical, self.settings)
        if costs[0] < costs[1] - self.settings.switch_margin:
            self.best, self._best_features = points.astype(np.float64), feat
            return True
        return False

    def typical_eye_openness(self) -> np.ndarray:
        """(2,) right, left: how open the eyes usually are (see `typical_features`)."""
        if not self._seen:
            return np.zeros(2)
        return typical_features(np.array(self._seen))[[_RIGHT_EYE, _LEFT_EYE]]


def choose_neutral(faces: list[np.ndarray], settings: NeutralSettings = NeutralSettings()) -> int | None:
    """Index of the most neutral of `faces` (a look-ahead over a clip); None when empty."""
    if not faces:
        return None
    feats = np.array([neutral_features(p) for p in faces])
    return int(np.argmin(neutrality_cost(feats, typical_features(feats), settings)))
