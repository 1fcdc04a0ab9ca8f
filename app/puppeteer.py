"""The per-frame work for a cast of avatar faces, one face or several: tracked driver faces in,
one output image out. One face is a cast of one; there is no other path.

`Puppeteer.process` is the whole per-frame path. Around it, a live API that the CLI and the
desktop app share, safe to call from any thread:
- `update_settings` (taken at the start of the next frame),
- `set_cast` / `set_avatar` (built in the caller's thread, swapped in between two frames),
- `set_motion_hook` (changes each face's motion before it is shown: held expressions),
- `calibrate`, `set_neutral`, `swap`,
- `set_renderer` (another backend from app/renderers.py, swapped in between two frames).

Where the cost goes (`python -m app.bench --faces 1 2 4`): tracking and retargeting are per
face; the model runs once per frame for every moving face (one batch: on a GPU it amortises
kernel launches; on one CPU thread batching saves ~15%); the remap scales with the pixels each
face covers; a face nobody drives, once eased back to neutral, costs nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from engines.base import FieldEngine

from .animator import Animator, AnimatorSettings
from .assign import AssignSettings, FaceAssigner, SoleDriver, assigner_for
from .avatar import DEFAULT_FRAMING, Avatar
from .capture import Frame
from .cast import Cast, single_cast
from .framing import Framing
from .renderers import CastPainter, FaceJob, RendererBackend, RendererChoice, open_renderer
from .retarget import Motion, PosedFace
from .tracked import GuardedTracker, TrackedFrame
from .tracking import FaceObservation, TrackerSettings

if TYPE_CHECKING:
    from engines import EngineChoice

# Called on the render thread for each avatar face, each frame: (face number, its avatar, the
# tracked motion) -> the motion to show.
MotionHook = Callable[[int, Avatar, Motion], Motion]


@dataclass(frozen=True)
class PipelineSettings:
    """What the pipeline runs with. `animator` and `mirror_input` are live: `update_settings`
    takes them at the next frame. `engine` and `renderer` are taken when the Puppeteer is built
    (`set_renderer` swaps a renderer). `framing` is for whoever loads the avatars (the CLI and
    the app load with it, and reload when it changes); the Puppeteer draws the cast it is given."""

    framing: Framing | None = DEFAULT_FRAMING  # how a lone portrait is framed (None: its own size)
    animator: AnimatorSettings = AnimatorSettings()
    engine: str = "auto"  # see engines.select_engine
    mirror_input: bool = False  # a selfie view: the avatar moves like a mirror image
    renderer: RendererChoice = RendererChoice()


def choose_engine(name: str, grid_size: int) -> "EngineChoice":
    """The engine and, for every backend, why it was or was not used (for the CLI and app to show)."""
    from engines import select_engine

    return select_engine(name, grid_size)


def make_engine(name: str, grid_size: int) -> FieldEngine:
    return choose_engine(name, grid_size).engine


@dataclass
class FrameResult:
    """One output frame, per avatar face what drove it, and what it took (milliseconds)."""

    index: int
    image: np.ndarray
    driver: np.ndarray
    cast: Cast  # the cast this frame shows (it may be swapped for the next)
    faces: list[FaceObservation | None]  # per avatar face: the driver face that drove it
    posed: list[PosedFace]
    motions: list[Motion]
    people: list[int | None]  # per avatar face: the person number driving it
    times: dict[str, float] = field(default_factory=dict)

    @property
    def face_found(self) -> bool:
        return any(f is not None for f in self.faces)


@dataclass
class _Stage:
    """Everything built for one cast; swapped whole, so a frame never mixes two casts."""

    cast: Cast
    animators: list[Animator]
    assigner: FaceAssigner | SoleDriver
    tracker: GuardedTracker
    painter: CastPainter  # the renderer's per-frame step for this cast


class Puppeteer:
    """Tracking plus animation for a cast: the per-frame work without any I/O."""

    def __init__(self, cast: Cast, settings: PipelineSettings = PipelineSettings(),
                 engine: FieldEngine | None = None, assign: AssignSettings = AssignSettings(),
                 on_change: Callable[[str], None] | None = None, renderer: RendererBackend | None = None) -> None:
        self._settings = self._wanted = settings
        self._owns_engine = engine is None
        self.engine = engine or make_engine(settings.engine, cast.faces[0].avatar.rig.grid_size)
        self._owns_renderer = renderer is None
        self.renderer = renderer or open_renderer(settings.renderer)
        self.assign = assign
        self.on_change = on_change
        self._hook: MotionHook | None = None
        self._lock = threading.Lock()  # held for a frame, and for the swaps between frames
        self._pending_lock = threading.Lock()
        self._pending: PipelineSettings | None = None
        self._stage = self._build(cast, None)

    @classmethod
    def for_avatar(cls, avatar: Avatar, settings: PipelineSettings = PipelineSettings(),
                   engine: FieldEngine | None = None) -> "Puppeteer":
        return cls(single_cast(avatar), settings, engine)

    # ------------------------------------------------------------ what runs now

    @property
    def settings(self) -> PipelineSettings:
        """The settings the last frame used."""
        return self._settings

    @property
    def cast(self) -> Cast:
        return self._stage.cast

    @property
    def animators(self) -> list[Animator]:
        return self._stage.animators

    # ------------------------------------------------------------ the live API

    def update_settings(self, settings: PipelineSettings) -> None:
        """New gains, mode, smoothing or mirror: taken at the start of the next frame, or now
        when no frame is in progress. Never waits for a frame."""
        self._wanted = settings
        with self._pending_lock:
            self._pending = settings
        if self._lock.acquire(blocking=False):
            try:
                self._take_settings()
            finally:
                self._lock.release()

    def set_cast(self, cast: Cast) -> None:
        """Animate another cast (any number of faces). Built here, in the caller's thread; the
        render loop is held up only for the swap."""
        old = self._stage
        same_people = len(old.animators) == len(cast.faces)
        stage = self._build(cast, old.tracker if same_people else None)
        with self._lock:
            if same_people:
                # The same people drive the new faces: their neutral, filters and easing carry
                # over (a calibration survives an avatar switch).
                for new, previous in zip(stage.animators, old.animators):
                    new.stabilizer = previous.stabilizer
            self._stage = stage
            for a in stage.animators:  # settings that changed while it was built
                a.update_settings(self._settings.animator)
        if stage.tracker is not old.tracker:
            old.tracker.close()

    def set_avatar(self, avatar: Avatar) -> None:
        self.set_cast(single_cast(avatar))

    def set_renderer(self, renderer: RendererBackend) -> None:
        """Render with another backend (opened by the caller, which now owns it) from the next
        frame; the drivers' neutral, filters and easing carry over."""
        old_renderer, owned = self.renderer, self._owns_renderer
        self.renderer, self._owns_renderer = renderer, False
        self.set_cast(self._stage.cast)
        if owned:
            old_renderer.close()

    def set_motion_hook(self, hook: MotionHook | None) -> None:
        self._hook = hook

    def calibrate(self) -> None:
        """Every avatar face takes its driver's next face as neutral (sets flags: any thread)."""
        for a in self._stage.animators:
            a.calibrate()

    def set_neutral(self, landmarks: np.ndarray) -> None:
        """The neutral chosen ahead for a clip of one person (see `lookahead_neutral`)."""
        for a in self._stage.animators:
            a.set_neutral(landmarks)

    def swap(self, a: int, b: int) -> None:
        """The people driving avatar faces a and b trade places (each eases to its new driver)."""
        with self._lock:
            n = len(self._stage.animators)
            if a != b and 0 <= a < n and 0 <= b < n:
                self._stage.assigner.swap(a, b)

    # ------------------------------------------------------------ per frame

    def track(self, frame: Frame) -> TrackedFrame:
        """The tracking half of `process`; the live loop runs it in the capture thread."""
        return self._stage.tracker(frame, self._wanted.mirror_input)

    def process(self, frame: Frame) -> FrameResult:
        """One frame for every avatar face (tracked here unless it comes as a `TrackedFrame`):
        assign driver faces -> pose each avatar face -> the model for every moving face in one
        batch -> remap, eyes and mouth per face -> paste onto the cast's canvas."""
        tracked = self.track(frame)
        image, t = tracked.image, tracked.timestamp
        with self._lock:
            self._take_settings()
            stage, hook = self._stage, self._hook
            t1 = time.perf_counter()
            drivers = stage.assigner.update(tracked.faces, image, t)
            poses = [a.pose(f, t, None if hook is None else (lambda m, k=k, a=a: hook(k, a.avatar, m)))
                     for k, (a, f) in enumerate(zip(stage.animators, drivers))]
            # A face nobody drives that has eased back to neutral is the still canvas: no work.
            jobs = [FaceJob(k, stage.cast.faces[k], stage.animators[k], poses[k][0], f)
                    for k, (f, (_, motion)) in enumerate(zip(drivers, poses)) if f is not None or not motion.is_neutral()]
            t2 = time.perf_counter()
            out = stage.cast.canvas.copy()
            model_ms = stage.painter.paint(out, image, jobs)
            t4 = time.perf_counter()
        times = {"track": tracked.track_ms, "retarget": (t2 - t1) * 1e3, "render": (t4 - t2) * 1e3,
                 "model": model_ms}
        return FrameResult(frame.index, out, image, stage.cast, list(drivers), [p for p, _ in poses],
                           [m for _, m in poses], stage.assigner.people(), times)

    def close(self) -> None:
        """Frees the tracker, and the engine when this Puppeteer built it."""
        self._stage.tracker.close()
        if self._owns_renderer:
            self.renderer.close()
        if self._owns_engine:
            self.engine.close()

    # ------------------------------------------------------------ internals

    def _build(self, cast: Cast, tracker: GuardedTracker | None) -> _Stage:
        settings = self._wanted.animator
        animators = [Animator(f.avatar, self.engine, settings, self.renderer) for f in cast.faces]
        # Tracking exactly N faces: MediaPipe re-runs its detector only while fewer are tracked.
        tracker = tracker or GuardedTracker(TrackerSettings(max_faces=len(cast.faces)))
        return _Stage(cast, animators, assigner_for(cast.slot_x(), self.assign, self.on_change), tracker,
                      self.renderer.painter(cast, animators, self.engine))

    def _take_settings(self) -> None:
        """Call with `_lock` held: the settings asked for since the last frame."""
        with self._pending_lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            for a in self._stage.animators:
                a.update_settings(pending.animator)
            self._settings = pending
