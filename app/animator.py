"""The per-frame core: a tracked driver face in, the posed avatar image out.

`MotionStabilizer` owns everything temporal: the neutral reference (the most neutral face
seen so far, a look-ahead's choice, or calibration), jitter
filtering, holding and easing back to neutral when the face is lost, easing in when it is
found again, and scene cuts. `Animator` chains it with retargeting and rendering.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
import time
from typing import Callable

import numpy as np

from .avatar import Avatar, skin_colour
from .landmarks import part_indices
from .filters import OneEuroFilter, OneEuroSettings
from .mouth import MouthSource
from .neutral import NeutralSearch, NeutralSettings
from .render import FieldEngine, RenderSettings
from .renderers import RendererBackend, WeightFreeBackend
from .retarget import DriverReference, Motion, PosedFace, RetargetSettings, apply_motion, measure_motion
from .tracking import FaceObservation


@dataclass(frozen=True)
class SmoothingSettings:
    """strength 1.0 is the tuned default; 0 turns filtering off, 2 smooths twice as hard."""

    strength: float = 1.0
    # Units: radians and face sizes per second for beta. Tuned so that MediaPipe's jitter on a
    # still face (about 0.3 degrees, 0.3% of the face size) is removed while a quick nod
    # (about 150 degrees per second) opens the cutoff to ~10 Hz, i.e. under a frame of lag.
    pose: OneEuroSettings = OneEuroSettings(min_cutoff=0.8, beta=3.0, d_cutoff=1.0)
    expression: OneEuroSettings = OneEuroSettings(min_cutoff=1.5, beta=6.0, d_cutoff=1.0)
    eyes: OneEuroSettings = OneEuroSettings(min_cutoff=3.0, beta=4.0, d_cutoff=1.0)
    # Lips move faster than the rest of the face and a frame of lag shows as bad lip sync
    # (mouth correlation on a talking clip 0.72 with the expression filter, 0.87 with this).
    mouth: OneEuroSettings = OneEuroSettings(min_cutoff=5.0, beta=40.0, d_cutoff=1.0)


@dataclass(frozen=True)
class TimingSettings:
    hold_seconds: float = 0.25  # a face lost for a moment (a hand, a blink of the tracker) holds
    ease_out_seconds: float = 1.0  # then the avatar eases back to neutral over this long
    ease_in_seconds: float = 0.3  # a face found again is blended in, never jumped to
    recalibrate_after_seconds: float = 1.5  # lost longer than this: the next face is a new neutral
    cut_jump: float = 0.6  # face moved this many face sizes in one frame: a scene cut


@dataclass(frozen=True)
class AnimatorSettings:
    retarget: RetargetSettings = RetargetSettings()
    smoothing: SmoothingSettings = SmoothingSettings()
    timing: TimingSettings = TimingSettings()
    render: RenderSettings = RenderSettings()
    neutral: NeutralSettings = NeutralSettings()


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3 - 2 * x)


class _MotionFilter:
    """One Euro filters per kind of signal, so each has the units its parameters assume."""

    def __init__(self, s: SmoothingSettings) -> None:
        k = max(s.strength, 1e-3)
        scaled = lambda o: OneEuroSettings(o.min_cutoff / k, o.beta / k, o.d_cutoff)  # noqa: E731
        self.enabled = s.strength > 0
        self.pose = OneEuroFilter(scaled(s.pose))
        self.expression = OneEuroFilter(scaled(s.expression))
        self.eyes = OneEuroFilter(scaled(s.eyes))
        self.mouth = OneEuroFilter(scaled(s.mouth))

    def reset(self) -> None:
        for f in (self.pose, self.expression, self.eyes, self.mouth):
            f.reset()

    def __call__(self, m: Motion, t: float) -> Motion:
        if not self.enabled:
            return m
        pose = self.pose(np.concatenate([m.rotation, m.translation, [m.log_scale]]), t)
        expr = self.expression(m.expression, t)
        mouth = part_indices()["mouth"]
        expr[mouth] = self.mouth(m.expression[mouth], t)
        eyes = self.eyes(np.concatenate([m.eye_openness, m.gaze.ravel()]), t)
        return Motion(pose[:3], pose[3:5], float(pose[5]), expr, eyes[:2], eyes[2:].reshape(2, 2))


@dataclass
class MotionStabilizer:
    settings: AnimatorSettings = field(default_factory=AnimatorSettings)
    reference: DriverReference | None = None
    output: Motion = field(default_factory=Motion.neutral)
    _filter: _MotionFilter = field(init=False)
    _calibrate_next: bool = False
    _last_seen_t: float | None = None
    _last_seen_motion: Motion = field(default_factory=Motion.neutral)
    _ease_from: Motion | None = None
    _ease_start_t: float = 0.0
    _last_centre: np.ndarray | None = None
    # The neutral: searched for while not `_locked` (by Calibrate or a look-ahead's choice);
    # a better one is eased in from `_old_reference`, starting at `_switch_t`.
    _search: NeutralSearch = field(init=False)
    _locked: bool = False
    _preset: np.ndarray | None = None
    _old_reference: DriverReference | None = None
    _switch_t: float = 0.0
    _pending: bool = False  # the search has a better face than the reference
    _shown: bool = False  # a frame has been put out (before it, there is nothing to ease from)

    def __post_init__(self) -> None:
        self._filter = _MotionFilter(self.settings.smoothing)
        self._search = NeutralSearch(self.settings.neutral)

    def calibrate(self) -> None:
        """Take the next face seen as the neutral reference (kept: no search replaces it)."""
        self._calibrate_next = True

    def set_neutral(self, landmarks: np.ndarray) -> None:
        """The neutral chosen ahead (offline, from the whole clip): the first face's reference,
        kept; a cut or a long loss starts a search afresh, as it may be someone else."""
        self._preset = np.asarray(landmarks, np.float64)

    def reset_filter(self) -> None:
        """Filters built afresh from the current settings."""
        self._filter = _MotionFilter(self.settings.smoothing)

    @property
    def face_present(self) -> bool:
        return self._ease_from is None and self._last_seen_t is not None

    def update(self, face: FaceObservation | None, t: float) -> Motion:
        timing = self.settings.timing
        first, self._shown = not self._shown, True
        if face is None:
            if self._last_seen_t is None:
                self.output = Motion.neutral()
                return self.output
            gone = t - self._last_seen_t
            w = _smoothstep((gone - timing.hold_seconds) / timing.ease_out_seconds)
            self.output = self._last_seen_motion.blend(Motion.neutral(), w)
            self._last_centre = None
            return self.output

        lost_for = t - self._last_seen_t if self._last_seen_t is not None else np.inf
        cut = self._last_centre is not None and (
            np.linalg.norm(face.center - self._last_centre) > timing.cut_jump * face.size)
        if self.reference is None or self._calibrate_next or cut or lost_for > timing.recalibrate_after_seconds:
            preset = self._preset if self.reference is None and not self._calibrate_next else None
            self.reference = DriverReference.from_landmarks(face.landmarks if preset is None else preset)
            self._locked = self._calibrate_next or preset is not None
            self._calibrate_next = False
            self._old_reference = None
            self._search.reset()
            if not self._locked:
                self._search.offer(face.landmarks)  # the reference just taken is the best so far
            self._pending = False
            self._filter.reset()
        if (cut or lost_for > timing.hold_seconds) and not first:
            # Whatever the avatar shows now (held, easing, or the old shot) is blended out. On
            # the very first frame nothing has been shown: a clip that starts mid-word starts
            # talking (eased in from the rest face, its first third of a second was mute).
            self._ease_from = self.output
            self._ease_start_t = t
            self._filter.reset()

        motion = self._filter(self._measure(face.landmarks, t), t)
        if self._ease_from is not None:
            w = _smoothstep((t - self._ease_start_t) / timing.ease_in_seconds)
            out = self._ease_from.blend(motion, w)
            if w >= 1.0:
                self._ease_from = None
        else:
            out = motion
        self._last_seen_t = t
        self._last_seen_motion = out
        self._last_centre = face.center
        self.output = out
        return out

    def _measure(self, points: np.ndarray, t: float) -> Motion:
        """Motion against the neutral, which moves to a better face when one is seen: measured
        against both the old and the new neutral and blended over `ease_seconds`, since
        jumping from one to the other would jump the avatar (a whole mouth opening at once)."""
        self._pending |= not self._locked and self._search.offer(points)
        if self._old_reference is None and self._pending:
            self._switch_to_best(t)
        motion = measure_motion(self.reference, points)
        if self._old_reference is None:
            return motion
        w = _smoothstep((t - self._switch_t) / max(self.settings.neutral.ease_seconds, 1e-6))
        if w >= 1.0:
            self._old_reference = None
            if self._pending:  # a better face seen during the transition: taken up now
                self._switch_to_best(t)
                return measure_motion(self._old_reference, points)
            return motion
        return measure_motion(self._old_reference, points).blend(motion, w)

    def _switch_to_best(self, t: float) -> None:
        self._old_reference = self.reference
        ref = DriverReference.from_landmarks(self._search.best)
        # Blinks are measured against the eyes' usual openness: a neutral face chosen for its
        # mouth may have its eyes a little less open than usual, and blinks then read half open.
        self.reference = replace(ref, eye_openness=np.maximum(ref.eye_openness, self._search.typical_eye_openness()))
        self._switch_t = t
        self._pending = False


@dataclass
class StageTimes:
    """Milliseconds per stage for the last frame."""

    retarget: float = 0.0
    render: float = 0.0


@dataclass
class AnimatedFrame:
    image: np.ndarray
    posed: PosedFace
    motion: Motion
    face_found: bool
    times: StageTimes


class Animator:
    """Driver face -> posed avatar image, for one avatar (swap it with `set_avatar`)."""

    def __init__(self, avatar: Avatar, engine: FieldEngine, settings: AnimatorSettings = AnimatorSettings(),
                 backend: RendererBackend | None = None) -> None:
        self.settings = settings
        self.engine = engine
        self.backend = backend or WeightFreeBackend()
        self.stabilizer = MotionStabilizer(settings)
        self.set_avatar(avatar)

    def set_avatar(self, avatar: Avatar) -> None:
        self.avatar = avatar
        self.renderer = self.backend.face(avatar, self.engine, self.settings.render)

    def update_settings(self, new: AnimatorSettings) -> None:
        """New settings between frames. Retarget settings are read every frame; a new smoothing
        strength needs new filters (their state restarts, which is invisible)."""
        old = self.settings
        self.settings = new
        self.stabilizer.settings = new
        if new.smoothing != old.smoothing:
            self.stabilizer.reset_filter()
        if new.render != old.render:
            self.set_avatar(self.avatar)

    def calibrate(self) -> None:
        self.stabilizer.calibrate()

    def set_neutral(self, landmarks: np.ndarray) -> None:
        self.stabilizer.set_neutral(landmarks)

    def pose(self, face: FaceObservation | None, t: float,
             adjust: Callable[[Motion], Motion] | None = None) -> tuple[PosedFace, Motion]:
        """The avatar's landmarks for this moment (filtered, held or eased as time requires).
        `adjust` changes the motion shown (held expressions) but not the stabiliser's own state,
        which eases from what was tracked."""
        motion = self.stabilizer.update(face, t)
        if adjust is not None:
            motion = adjust(motion)
        posed = apply_motion(self.avatar.face, motion, self.settings.retarget, self.stabilizer.reference,
                             face.landmarks if face is not None else None)
        return posed, motion

    def mouth_source(self, driver_image: np.ndarray, face: FaceObservation | None) -> MouthSource | None:
        if face is None or not self.settings.render.fill_mouth:
            return None
        return MouthSource(driver_image, face.landmarks, skin_colour(driver_image, face.landmarks))

    def step(self, driver_image: np.ndarray, face: FaceObservation | None, t: float) -> AnimatedFrame:
        t0 = time.perf_counter()
        posed, motion = self.pose(face, t)
        t1 = time.perf_counter()
        image = self.renderer.render(posed, self.mouth_source(driver_image, face))
        t2 = time.perf_counter()
        return AnimatedFrame(image, posed, motion, face is not None, StageTimes((t1 - t0) * 1e3, (t2 - t1) * 1e3))
