"""The desktop app's logic without widgets: it owns the Puppeteer, the LiveSession, the source
and the sinks, and talks to the window through Qt signals only.

Threads:
- the GUI thread calls the public methods, which return at once: all slow work (loading an
  avatar, building the Puppeteer, opening a camera, opening the virtual camera, swapping
  sessions) runs in two worker pools: `_io` (one thread, in order) and `_bg` (one thread, at a
  lower CPU priority, for avatar loading so that it steals as little as possible from the live
  loop on a small machine);
- the LiveSession thread renders; `_on_frame` runs there and prepares the preview images
  (scaled QImages, landmark overlay) so the GUI thread only swaps pixmaps;
- settings changes are handed to the render thread and applied at the start of its next frame
  (see `_MotionHook`), so the GUI never waits on the pipeline's lock.

Several faces (`set_faces(n)`, n > 1): the avatar becomes a `Cast` (`load_cast`: a group
portrait animates its own faces, a one-face portrait repeats in tiles) driven by a
`GroupPuppeteer`. The session always runs a `_ProcessorSwitch`, which hands each frame to the
single-face `Puppeteer` or to the current `GroupPuppeteer`; switching between them (or to a new
cast) waits for at most the frame in progress.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, replace
import logging
import os
from pathlib import Path
import shutil
import threading
import time
from typing import Callable

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from app import DEFAULT_AVATAR
from app.avatar import Avatar, Framing, load_avatar
from app.capture import CameraSource, FrameSource, VideoFileSource, list_cameras
from app.cast import Cast, load_cast
from app.errors import PuppetCamError, VirtualCameraUnavailable
from app.group import GroupFrameResult, GroupPuppeteer
from app.pipeline import FrameResult, LiveSession, PipelineSettings, Puppeteer
from app.render import Renderer
from app.retarget import Motion
from app.sinks import FrameSink, SinkFanout, VideoFileSink, VirtualCameraSink

from .expressions import ExpressionMixer, apply_expressions, neutral_from_landmarks
from .settings_store import MAX_FACES

log = logging.getLogger("puppetcam.gui")

AVATAR_CACHE_SIZE = 16
BACKGROUND_NICENESS = 5  # about a third of the CPU share of the render thread under contention


# --------------------------------------------------------------------------------------------
# Sinks the GUI adds and removes while the session runs


class PacedSink:
    """Holds a sink to a constant frame rate against the wall clock.

    Frames arriving faster than `fps` are dropped; with `fill_gaps` a late frame is written
    as many times as slots were missed, so a recording plays back in real time even when the
    pipeline runs slower than the file's declared rate.
    """

    def __init__(self, sink: FrameSink, fps: float, fill_gaps: bool, clock: Callable[[], float] = time.monotonic):
        self.sink = sink
        self.fps = float(fps)
        self.fill_gaps = fill_gaps
        self.clock = clock
        self.name = sink.name
        self.frames_written = 0
        self._t0: float | None = None
        self._slots = 0

    def write(self, image: np.ndarray) -> None:
        now = self.clock()
        if self._t0 is None:
            self._t0 = now
        due = int((now - self._t0) * self.fps) + 1
        missing = due - self._slots
        if missing <= 0:
            return
        repeats = min(missing, int(2 * self.fps)) if self.fill_gaps else 1
        for _ in range(repeats):
            self.sink.write(image)
            self.frames_written += 1
        self._slots = due

    def close(self) -> None:
        self.sink.close()


class GuardedSink:
    """A sink that can be closed from another thread while the session may be writing to it:
    close() waits for a write in progress, and writes after close are ignored."""

    def __init__(self, sink: FrameSink) -> None:
        self.sink = sink
        self.name = sink.name
        self.closed = False
        self._lock = threading.Lock()

    def write(self, image: np.ndarray) -> None:
        with self._lock:
            if not self.closed:
                self.sink.write(image)

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self.sink.close()


# --------------------------------------------------------------------------------------------
# Seams into the pipeline. Cleaner in app/pipeline.py / app/animator.py would be: a per-frame
# motion hook on Animator (for expressions), `Puppeteer.update_settings(settings)` applied
# between frames (for live gains, mode, smoothing, mirror), and `set_avatar` building the
# Renderer before it takes the lock (as `swap_avatar` does here).


class _MotionHook:
    """Installed on the animator's stabilizer: runs in the render thread, inside the
    Puppeteer's lock, once per frame, before the motion is applied to the avatar.

    It applies settings queued by the GUI thread, then blends the held expressions on top of the
    tracked motion. The stabilizer's own state (`output`, used for easing) stays unblended.
    """

    def __init__(self, controller: "Controller", puppeteer: Puppeteer) -> None:
        self.controller = controller
        self.puppeteer = puppeteer
        stabilizer = puppeteer.animator.stabilizer
        self._original = type(stabilizer).update.__get__(stabilizer)
        stabilizer.update = self  # instance attribute shadows the method

    def __call__(self, face, t: float) -> Motion:
        pending = self.controller._take_pending_settings()
        if pending is not None:
            apply_pipeline_settings(self.puppeteer, pending)
        motion = self._original(face, t)
        mixer = self.controller.mixer
        now = mixer.clock()
        self.controller.last_blend = mixer.weights(now)
        return mixer.apply(motion, now)


def swap_avatar(puppeteer: Puppeteer, avatar: Avatar) -> None:
    """`Puppeteer.set_avatar`, with the new Renderer (10-20 ms of set-up) built before taking
    the Puppeteer's lock, so the render loop is held up only for two assignments."""
    animator = puppeteer.animator
    renderer = Renderer(avatar, animator.engine, animator.settings.render)
    with puppeteer._lock:
        animator.avatar = avatar
        animator.renderer = renderer


def apply_pipeline_settings(puppeteer: Puppeteer, settings: PipelineSettings) -> None:
    """Swap a running Puppeteer's settings (call with its lock held, or between frames)."""
    puppeteer.animator.update_settings(settings.animator)
    puppeteer.settings = replace(puppeteer.settings, animator=settings.animator, mirror_input=settings.mirror_input,
                                 framing=settings.framing)


def apply_group_settings(group: GroupPuppeteer, settings: PipelineSettings) -> None:
    """`apply_pipeline_settings` for every avatar face of a GroupPuppeteer (its lock held, or
    between frames). The cast's size does not follow `framing`: it is sized for the group."""
    for animator in group.animators:
        animator.update_settings(settings.animator)
    group.settings = replace(group.settings, animator=settings.animator, mirror_input=settings.mirror_input)


class _GroupMotionHook:
    """`_MotionHook` for one avatar face of a GroupPuppeteer: the held expressions apply to
    every face (each shaped on its own face); the first face's hook also applies the settings
    queued by the GUI thread, to the whole group (it runs first in each frame, inside the
    group's lock)."""

    def __init__(self, controller: "Controller", group: GroupPuppeteer, k: int) -> None:
        self.controller = controller
        self.group = group
        self.first = k == 0
        animator = group.animators[k]
        self.neutral = neutral_from_landmarks(animator.avatar.face.landmarks)
        stabilizer = animator.stabilizer
        self._original = type(stabilizer).update.__get__(stabilizer)
        stabilizer.update = self

    def __call__(self, face, t: float) -> Motion:
        if self.first:
            pending = self.controller._take_pending_settings()
            if pending is not None:
                apply_group_settings(self.group, pending)
        motion = self._original(face, t)
        mixer = self.controller.mixer
        weights = mixer.weights(mixer.clock())
        if self.first:
            self.controller.last_blend = weights
        if not any(w > 0 for w in weights.values()):
            return motion
        return apply_expressions(motion, weights, self.neutral)


class _ProcessorSwitch:
    """What the LiveSession runs: the Puppeteer or a GroupPuppeteer, swappable between frames."""

    def __init__(self) -> None:
        self.target: Puppeteer | GroupPuppeteer | None = None
        self.generation = 0  # counts `set` calls
        self.used = 0  # the generation that made the last frame (read on the render thread)
        self._lock = threading.Lock()

    def process(self, frame):
        with self._lock:
            self.used = self.generation
            return self.target.process(frame)  # type: ignore[union-attr]

    def track(self, frame):
        """Runs in the capture thread, beside `process`: no lock, so tracking overlaps rendering
        (a processor closed meanwhile tracks no face for that one frame)."""
        target = self.target
        return target.track(frame) if target is not None else frame

    def set(self, target: Puppeteer | GroupPuppeteer) -> Puppeteer | GroupPuppeteer | None:
        """Install `target` (waits for the frame in progress); returns the previous one, which
        no frame uses any more."""
        with self._lock:
            old, self.target = self.target, target
            self.generation += 1
        return old

    def calibrate(self) -> None:
        target = self.target
        if target is not None:
            target.calibrate()

    def close(self) -> None:
        pass  # the controller closes the processors it built


# --------------------------------------------------------------------------------------------


@dataclass
class FrameView:
    """What the window shows for one frame; images are ready-scaled QImages."""

    index: int
    driver: QImage
    output: QImage
    face_found: bool
    people: list[int | None] | None = None  # several faces: per avatar face, who drives it


@dataclass
class SwitchStall:
    """Output timing around an avatar (or source) switch, in milliseconds.

    gap_ms: between the last output frame before the swap and the first one after it (the
    stall a viewer sees). max_gap_ms: the longest interval between output frames from the
    request to the first new frame (includes any slowdown while the avatar loaded).
    period_ms: the median interval before the request, for comparison.
    """

    kind: str
    name: str
    requested_t: float
    load_ms: float = 0.0
    swap_ms: float = 0.0
    gap_ms: float | None = None
    max_gap_ms: float = 0.0
    period_ms: float = 0.0
    _set_t: float | None = None
    _last_old_t: float | None = None
    _session: int | None = None
    _generation: int | None = None  # a processor switch: the first frame made by this `_ProcessorSwitch` generation


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "camera" or "file"
    camera: int = 0
    path: str = ""

    @property
    def label(self) -> str:
        return f"Camera {self.camera}" if self.kind == "camera" else Path(self.path).name

    def open(self) -> FrameSource:
        if self.kind == "camera":
            return CameraSource(self.camera)
        return VideoFileSource(self.path, loop=True)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], None], nice: bool) -> None:
        super().__init__()
        self.fn = fn
        self.nice = nice
        self.setAutoDelete(True)

    _niced = threading.local()

    def run(self) -> None:
        if self.nice and not getattr(self._niced, "done", False):
            self._niced.done = True
            try:  # Linux: niceness is per thread; raising it needs no privilege
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
            except (AttributeError, OSError):
                pass
        self.fn()


def _to_qimage(bgr: np.ndarray, box: tuple[int, int], points: np.ndarray | None,
               colour: tuple[int, int, int]) -> QImage:
    """`bgr` scaled to fit `box` (aspect kept), with landmark dots if given, as an owned QImage."""
    h, w = bgr.shape[:2]
    bw, bh = max(box[0], 16), max(box[1], 16)
    s = min(bw / w, bh / h)
    if abs(s - 1.0) > 1e-3:
        size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
        img = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    else:
        img = bgr.copy()
    if points is not None:
        pts = np.round(points[:, :2] * s).astype(np.int32)
        ok = (pts[:, 0] >= 0) & (pts[:, 0] < img.shape[1]) & (pts[:, 1] >= 0) & (pts[:, 1] < img.shape[0])
        pts = pts[ok]
        img[pts[:, 1], pts[:, 0]] = colour
        if s > 0.6:  # 2x2 dots where there is room
            x1 = np.minimum(pts[:, 0] + 1, img.shape[1] - 1)
            y1 = np.minimum(pts[:, 1] + 1, img.shape[0] - 1)
            img[pts[:, 1], x1] = colour
            img[y1, pts[:, 0]] = colour
            img[y1, x1] = colour
    img = np.ascontiguousarray(img)
    return QImage(img.data, img.shape[1], img.shape[0], img.strides[0], QImage.Format.Format_BGR888).copy()


class Controller(QObject):
    """Owns the live pipeline for the window. All public methods are called on the GUI thread."""

    ready = Signal()  # the Puppeteer exists (avatar loaded, engine built)
    frameReady = Signal(object)  # FrameView
    avatarChanged = Signal(str, str)  # name, path
    avatarFailed = Signal(str, str)  # path, message (a selected avatar could not be loaded)
    avatarAdded = Signal(str)  # path of the copy in the user's avatar folder
    avatarRejected = Signal(str, str)  # path, message (an added image failed the face check)
    camerasListed = Signal(object)  # list[int]
    sourceChanged = Signal(str)  # label
    sourceFailed = Signal(str)  # message
    virtualCameraChanged = Signal(bool, str)  # on, device name or the reason it is off
    recordingChanged = Signal(bool, str)  # recording, path
    sinkFailed = Signal(str)
    sessionFailed = Signal(str)
    facesChanged = Signal(int)  # avatar faces now animated (1: the single-face Puppeteer)
    assignmentChanged = Signal(str)  # FaceAssigner's messages: "person 2 drives avatar face 1"

    def __init__(self, settings: PipelineSettings, fps: float = 30.0, vcam_backend: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.fps = float(fps)
        self.vcam_backend = vcam_backend
        self.mixer = ExpressionMixer()
        self.overlay = False
        self.display_boxes = {"driver": (480, 480), "output": (480, 480)}

        self.puppeteer: Puppeteer | None = None
        self.session: LiveSession | None = None
        self.source_spec: SourceSpec | None = None
        self.avatar: Avatar | None = None  # the single-face avatar (stale while a cast runs)
        self.faces = 1  # requested avatar faces
        self.group: GroupPuppeteer | None = None  # while several faces run
        self.cast: Cast | None = None
        self.avatar_path: Path | None = None  # the portrait on show (single face or cast)
        self._requested_path: Path | None = None  # the portrait last asked for
        self._switch = _ProcessorSwitch()
        self.sinks = SinkFanout(on_error=self._on_sink_error)
        self.vcam: VirtualCameraSink | None = None
        self._vcam_slot: GuardedSink | None = None
        self.recording_path: Path | None = None
        self._rec_slot: GuardedSink | None = None
        self._rec_paced: PacedSink | None = None

        self._state = threading.RLock()
        self._io = QThreadPool(self)
        self._io.setMaxThreadCount(1)
        self._bg = QThreadPool(self)
        self._bg.setMaxThreadCount(1)
        self._closing = False
        self._avatar_gen = 0
        self._installed_gen = -1
        self._cache: OrderedDict[tuple, Avatar] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._pending_settings: PipelineSettings | None = None
        self._pending_lock = threading.Lock()

        # Per-frame statistics (written by the render thread, read by the GUI's timer).
        self._session_id = 0
        self._display_busy = False
        self.frames_out = 0
        self.last_times: dict[str, float] = {}
        self.output_fps = 0.0
        self.face_found = False
        self.faces_found = 0
        self.last_people: list[int | None] = []  # several faces: per avatar face, the person driving it
        self._last_frame_t: float | None = None
        self._intervals: deque[float] = deque(maxlen=90)
        self.switches: list[SwitchStall] = []
        self._probe: SwitchStall | None = None
        self.reported_error: str | None = None
        self.last_blend: dict[str, float] = {}  # expression weights used for the last frame

    # ---------------------------------------------------------------- jobs

    def _submit(self, fn: Callable[[], None], background: bool = False) -> None:
        if self._closing:
            return

        def guarded() -> None:
            if self._closing:
                return
            try:
                fn()
            except Exception as exc:  # a worker must never die silently
                log.exception("background job failed")
                self.sinkFailed.emit(f"Internal error: {exc}")

        (self._bg if background else self._io).start(_Job(guarded, nice=background))

    def wait_idle(self, timeout_ms: int = 10000) -> bool:
        """Wait for the worker pools to finish what they were given (tests, shutdown)."""
        return self._io.waitForDone(timeout_ms) and self._bg.waitForDone(timeout_ms)

    # ---------------------------------------------------------------- avatars

    def _load_avatar(self, path: Path, framing: Framing) -> Avatar:
        path = Path(path)
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = 0
        key = (str(path.resolve()), stamp, framing)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
        avatar = load_avatar(path, framing)
        self._remember(key, avatar)
        return avatar

    def _remember(self, key: tuple, avatar: Avatar) -> None:
        with self._cache_lock:
            self._cache[key] = avatar
            while len(self._cache) > AVATAR_CACHE_SIZE:
                self._cache.popitem(last=False)

    def start(self, avatar_path: str | Path | None) -> None:
        """Load the first avatar and build the Puppeteer (about 2 s), in the background."""
        self._avatar_gen += 1
        gen = self._avatar_gen
        framing = self.settings.framing
        path = Path(avatar_path) if avatar_path else DEFAULT_AVATAR
        self._requested_path = path

        def job() -> None:
            try:
                avatar = self._load_avatar(path, framing)
            except PuppetCamError as exc:
                self.avatarFailed.emit(str(path), str(exc))
                avatar = self._load_avatar(DEFAULT_AVATAR, framing)
                if self._requested_path == path:
                    self._requested_path = DEFAULT_AVATAR
            puppeteer = Puppeteer(avatar, self.settings)
            _MotionHook(self, puppeteer)
            with self._state:
                if self.avatar is not None and self._installed_gen > gen:
                    avatar = self.avatar  # a newer pick arrived while the engine was built
                    puppeteer.set_avatar(avatar)
                self.avatar = avatar
                if self.avatar_path is None:
                    self.avatar_path = avatar.path
                self._installed_gen = max(self._installed_gen, gen)
                self.mixer.set_neutral(avatar.face.landmarks)
                self.puppeteer = puppeteer
                if self._switch.target is None:
                    self._switch.set(puppeteer)
            self.ready.emit()
            self.avatarChanged.emit(avatar.name, str(avatar.path or ""))
            self._start_session_if_ready()

        self._submit(job)

    def select_avatar(self, path: str | Path) -> None:
        """Switch the live avatar: loaded off the GUI thread, swapped between two frames.
        With several faces (`set_faces`) the portrait becomes a cast of that many faces."""
        path = Path(path)
        self._requested_path = path
        if self.faces > 1:
            self._select_cast(path, self.faces)
            return
        self._avatar_gen += 1
        gen = self._avatar_gen
        framing = self.settings.framing
        requested = time.perf_counter()

        def job() -> None:
            t0 = time.perf_counter()
            try:
                avatar = self._load_avatar(path, framing)
            except PuppetCamError as exc:
                self.avatarFailed.emit(str(path), str(exc))
                return
            self._install_avatar(avatar, gen, requested, (time.perf_counter() - t0) * 1e3)

        self._submit(job, background=True)

    def _install_avatar(self, avatar: Avatar, gen: int, requested: float, load_ms: float) -> None:
        with self._state:
            if gen < self._installed_gen or self._closing:
                return  # an older request finishing after a newer one
            if (avatar.size[0], avatar.size[1]) != (self.settings.framing.width, self.settings.framing.height):
                return  # the output size changed meanwhile; the reload for it is queued
            self._installed_gen = gen
            previous = self.avatar
            self.avatar = avatar
            self.avatar_path = avatar.path
            if self.puppeteer is None:
                return  # start() picks it up
            probe = SwitchStall("avatar", avatar.name, requested, load_ms=load_ms,
                                period_ms=float(np.median(self._intervals)) * 1e3 if self._intervals else 0.0)
            t0 = time.perf_counter()
            swap_avatar(self.puppeteer, avatar)
            self.mixer.set_neutral(avatar.face.landmarks)
            old_group = self.group
            if old_group is not None:
                # Back to one face: the Puppeteer missed the settings changed meanwhile.
                with self.puppeteer._lock:
                    apply_pipeline_settings(self.puppeteer, self.settings)
                self._switch.set(self.puppeteer)
                probe._generation = self._switch.generation
                self.group = self.cast = None
                old_group.close()
            probe._set_t = time.perf_counter()
            probe.swap_ms = (probe._set_t - t0) * 1e3
            if self.session is not None and self.session.running:
                self._probe = probe
            resized = old_group is not None or (previous is not None and previous.size != avatar.size)
        self.avatarChanged.emit(avatar.name, str(avatar.path or ""))
        if old_group is not None:
            self.facesChanged.emit(1)
        if resized:
            self._output_size_changed()

    # ---------------------------------------------------------------- several faces

    @property
    def active_faces(self) -> int:
        """How many avatar faces the output animates now."""
        cast = self.cast
        return len(cast.faces) if cast is not None else 1

    def set_faces(self, n: int) -> None:
        """Animate n avatar faces (1 to MAX_FACES) of the current portrait: built off the GUI
        thread, swapped in between two frames. A failure (`avatarFailed`) keeps what runs."""
        n = int(min(max(n, 1), MAX_FACES))
        if n == self.faces:
            return
        self.faces = n
        path = self._requested_path or self.avatar_path or DEFAULT_AVATAR
        self.select_avatar(path)

    def _load_cast(self, path: Path, faces: int) -> Cast:
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            stamp = 0
        key = ("cast", str(path.resolve()), stamp, faces)
        with self._cache_lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]  # type: ignore[return-value]
        # A one-face portrait repeats in tiles: a row, or 2x2 for four.
        cast = load_cast([path], faces, layout="grid" if faces == 4 else "row",
                         grid_size=self.settings.animator.render.grid_size)
        self._remember(key, cast)  # type: ignore[arg-type]
        return cast

    def _select_cast(self, path: Path, faces: int) -> None:
        self._avatar_gen += 1
        gen = self._avatar_gen
        requested = time.perf_counter()

        def job() -> None:
            t0 = time.perf_counter()
            puppeteer = self.puppeteer
            try:
                if puppeteer is None:
                    raise PuppetCamError("The avatar is still loading.", "Try again in a moment.")
                cast = self._load_cast(path, faces)
                group = GroupPuppeteer(cast, self.settings, engine=puppeteer.engine,
                                       on_change=self._assignment_message)
            except PuppetCamError as exc:
                self.avatarFailed.emit(str(path), str(exc))
                with self._state:
                    latest = gen == self._avatar_gen and not self._closing
                    if latest:
                        # Keep what runs, and say so: the Faces control goes back to it.
                        self.faces = self.active_faces
                        self._requested_path = self.avatar_path
                if latest:
                    self.facesChanged.emit(self.active_faces)
                return
            for k in range(len(group.animators)):
                _GroupMotionHook(self, group, k)
            self._install_group(group, path, gen, requested, (time.perf_counter() - t0) * 1e3)

        # Before the Puppeteer exists (at start-up) this must wait for it: the same queue as start().
        self._submit(job, background=self.puppeteer is not None)

    def _install_group(self, group: GroupPuppeteer, path: Path, gen: int, requested: float, load_ms: float) -> None:
        cast = group.cast
        with self._state:
            if gen < self._installed_gen or self._closing:
                group.close()  # an older request finishing after a newer one
                return
            self._installed_gen = gen
            previous_size = self.output_size
            probe = SwitchStall("faces", f"{cast.name} x{len(cast.faces)}", requested, load_ms=load_ms,
                                period_ms=float(np.median(self._intervals)) * 1e3 if self._intervals else 0.0)
            t0 = time.perf_counter()
            old = self._switch.set(group)
            probe._generation = self._switch.generation
            old_group, self.group, self.cast = self.group, group, cast
            self.avatar_path = path
            self.last_people = [None] * len(cast.faces)
            with self._pending_lock:  # settings changed while it was built: apply them on its first frame
                self._pending_settings = self.settings
            if old_group is not None:
                old_group.close()
            probe._set_t = time.perf_counter()
            probe.swap_ms = (probe._set_t - t0) * 1e3
            if self.session is not None and self.session.running and old is not None:
                self._probe = probe
            resized = previous_size != cast.size
        log.info("%d avatar faces (%s)", len(cast.faces), cast.name)
        self.avatarChanged.emit(cast.name, str(path))
        self.facesChanged.emit(len(cast.faces))
        if resized:
            self._output_size_changed()

    def _assignment_message(self, text: str) -> None:
        log.info("faces: %s", text)
        self.assignmentChanged.emit(text)

    def face_at(self, u: float, v: float) -> int | None:
        """The avatar face at (u, v) of the output image (fractions of its width and height)."""
        cast = self.cast
        if cast is None:
            return None
        w, h = cast.size
        return cast.face_at(min(max(u, 0.0), 1.0) * (w - 1), min(max(v, 0.0), 1.0) * (h - 1))

    def swap_faces(self, a: int, b: int) -> None:
        """The people driving avatar faces a and b trade places (off the GUI thread: it waits
        for the frame in progress)."""
        group = self.group
        if group is None or a == b or not (0 <= a < len(group.animators) and 0 <= b < len(group.animators)):
            return

        def job() -> None:
            if self.group is group:
                group.swap(a, b)

        self._submit(job)

    def still_image(self) -> np.ndarray | None:
        """What the output shows at rest: the cast's canvas, or the avatar's image."""
        cast = self.cast
        if cast is not None:
            return cast.canvas
        return self.avatar.image if self.avatar is not None else None

    def add_avatar(self, path: str | Path, user_dir: Path) -> None:
        """Check an image for a usable face (in the background) and, if it has one, copy it
        into the user's avatar folder; `avatarAdded` or `avatarRejected` reports the outcome."""
        path = Path(path)
        framing = self.settings.framing

        def job() -> None:
            try:
                avatar = load_avatar(path, framing)
            except PuppetCamError as exc:
                self.avatarRejected.emit(str(path), str(exc))
                return
            try:
                user_dir.mkdir(parents=True, exist_ok=True)
                target = _unique_path(user_dir, path)
                if path.resolve() != target.resolve():
                    shutil.copy2(path, target)
            except OSError as exc:
                self.avatarRejected.emit(str(path), f"Could not copy {path.name} into {user_dir} ({exc.strerror}). "
                                         "Check that the folder is writable.")
                return
            copy = replace(avatar, name=target.stem, path=target)
            self._remember((str(target.resolve()), target.stat().st_mtime_ns, framing), copy)
            self.avatarAdded.emit(str(target))

        self._submit(job, background=True)

    # ---------------------------------------------------------------- sources and session

    def refresh_cameras(self) -> None:
        self._submit(lambda: self.camerasListed.emit(list_cameras()))

    def set_source(self, spec: SourceSpec) -> None:
        """Open the new source in the background, then swap the session over to it."""
        requested = time.perf_counter()

        def job() -> None:
            try:
                source = spec.open()
            except PuppetCamError as exc:
                self.sourceFailed.emit(str(exc))
                return
            with self._state:
                self.source_spec = spec
                self._swap_session(source, requested)
            self.sourceChanged.emit(spec.label)

        self._submit(job)

    def _start_session_if_ready(self) -> None:
        with self._state:
            if self.session is None and self._pending_source is not None:
                source, self._pending_source = self._pending_source, None
                self._swap_session(source, time.perf_counter())

    _pending_source: FrameSource | None = None

    def _swap_session(self, source: FrameSource, requested: float) -> None:
        old = self.session
        if self.puppeteer is None:
            if self._pending_source is not None:
                self._pending_source.close()
            self._pending_source = source
            return
        probe = None
        if old is not None and old.running:
            probe = SwitchStall("source", source.name, requested,
                                period_ms=float(np.median(self._intervals)) * 1e3 if self._intervals else 0.0)
        if old is not None:
            old.stop()
        if old is not None and old.error is None and old.running:
            log.warning("the previous session did not stop in time")
        self._session_id += 1
        sid = self._session_id
        self.reported_error = None
        session = LiveSession(self._switch, source, self.sinks, on_frame=lambda r: self._on_frame(r, sid))
        if probe is not None:
            probe._set_t = time.perf_counter()
            probe._session = sid
            probe._last_old_t = self._last_frame_t
            self._probe = probe
        self.session = session
        session.start()

    def poll(self) -> str | None:
        """Called by the window's timer: the session's error, once, if it stopped on one."""
        session = self.session
        if session is None or session.running or session.error is None:
            return None
        message = str(session.error) if isinstance(session.error, PuppetCamError) else \
            f"The live pipeline stopped: {session.error}"
        if message == self.reported_error:
            return None
        self.reported_error = message
        self.sessionFailed.emit(message)
        return message

    # ---------------------------------------------------------------- the render thread

    def _on_frame(self, result: FrameResult, session_id: int) -> None:
        now = time.perf_counter()
        if self._last_frame_t is not None:
            dt = now - self._last_frame_t
            self._intervals.append(dt)
            self.output_fps = 1.0 / max(float(np.mean(list(self._intervals)[-30:])), 1e-6)
        self._track_switch(now, result, session_id)
        self._last_frame_t = now
        self.frames_out += 1
        self.last_times = dict(result.times)
        overlay = self.overlay
        people = None
        if isinstance(result, GroupFrameResult):
            found = [f for f in result.faces if f is not None]
            self.faces_found = len(found)
            self.face_found = bool(found)
            people = self.last_people = list(result.people)
            if self._display_busy:
                return
            driver_pts = np.concatenate([f.landmarks for f in found]) if (overlay and found) else None
            output_pts = None
            cast = self.cast
            if overlay and cast is not None and len(cast.faces) == len(result.posed):
                output_pts = np.concatenate([p.landmarks[:, :2] + m.origin for p, m in zip(result.posed, cast.faces)])
        else:
            self.face_found = result.face is not None
            self.faces_found = int(self.face_found)
            if self._display_busy:
                return  # the GUI has not shown the previous frame yet: skip the preview, not the output
            driver_pts = result.face.landmarks if (overlay and result.face is not None) else None
            output_pts = result.animated.posed.landmarks if overlay else None
        view = FrameView(
            result.index,
            _to_qimage(result.driver, self.display_boxes["driver"], driver_pts, (80, 230, 80)),
            _to_qimage(result.image, self.display_boxes["output"], output_pts, (230, 200, 60)),
            self.face_found,
            people,
        )
        self._display_busy = True
        self.frameReady.emit(view)

    def _track_switch(self, now: float, result: FrameResult, session_id: int) -> None:
        probe = self._probe
        if probe is None:
            return
        if self._last_frame_t is not None and self._last_frame_t >= probe.requested_t:
            probe.max_gap_ms = max(probe.max_gap_ms, (now - self._last_frame_t) * 1e3)
        if probe._set_t is None:
            return
        if probe._generation is not None:
            if self._switch.used < probe._generation:
                probe._last_old_t = now  # made by the previous processor
                return
        elif probe.kind == "avatar":
            started = now - result.times.get("total", 0.0) / 1e3
            if started < probe._set_t:
                probe._last_old_t = now  # rendered with the previous avatar
                return
        elif session_id != probe._session:
            return
        last_old = probe._last_old_t if probe._last_old_t is not None else self._last_frame_t
        if last_old is not None:
            probe.gap_ms = (now - last_old) * 1e3
            probe.max_gap_ms = max(probe.max_gap_ms, probe.gap_ms)
        self.switches.append(probe)
        self._probe = None
        log.info("%s switch to %s: gap %.0f ms, max gap %.0f ms, load %.0f ms", probe.kind, probe.name,
                 probe.gap_ms or 0, probe.max_gap_ms, probe.load_ms)

    def frame_shown(self) -> None:
        """The GUI has put the last FrameView on screen: the next one may be prepared."""
        self._display_busy = False

    # ---------------------------------------------------------------- settings

    def _take_pending_settings(self) -> PipelineSettings | None:
        with self._pending_lock:
            pending, self._pending_settings = self._pending_settings, None
        return pending

    def update_settings(self, settings: PipelineSettings) -> None:
        """New gains, mode, smoothing or mirror: applied at the start of the next frame."""
        framing_changed = settings.framing != self.settings.framing
        mirror_changed = settings.mirror_input != self.settings.mirror_input
        self.settings = settings
        with self._pending_lock:
            self._pending_settings = settings
        if self.puppeteer is not None and (self.session is None or not self.session.running):
            # Nothing renders now; apply directly (quick) so the next session starts with it.
            with self._state:
                group = self.group
                if group is not None:
                    with group._lock:
                        pending = self._take_pending_settings()
                        if pending is not None:
                            apply_group_settings(group, pending)
                elif self.puppeteer is not None:
                    with self.puppeteer._lock:
                        pending = self._take_pending_settings()
                        if pending is not None:
                            apply_pipeline_settings(self.puppeteer, pending)
        if mirror_changed:
            self.calibrate()  # the neutral face was measured the other way round
        # A cast is sized for its group; the single avatar reloads at the new size on the way back.
        if framing_changed and self.faces == 1 and self.avatar_path is not None:
            self.select_avatar(self.avatar_path)

    def update_animator(self, **changes: object) -> None:
        """Shorthand: `update_animator(retarget=..., smoothing=...)`."""
        self.update_settings(replace(self.settings, animator=replace(self.settings.animator, **changes)))

    def set_fps(self, fps: float) -> None:
        if fps == self.fps:
            return
        self.fps = float(fps)
        if self.vcam is not None:
            self._output_size_changed()

    def calibrate(self) -> None:
        """Take the next face seen as the neutral one (safe from any thread: sets a flag); with
        several faces, every avatar face's."""
        self._switch.calibrate()

    # ---------------------------------------------------------------- outputs

    @property
    def output_size(self) -> tuple[int, int]:
        cast = self.cast
        if cast is not None:
            return cast.size
        f = self.settings.framing
        if f.width is None or f.height is None:
            return self.avatar.size if self.avatar else (512, 512)
        return int(f.width), int(f.height)

    def set_virtual_camera(self, on: bool) -> None:
        def job() -> None:
            with self._state:
                self._close_vcam()
                if not on:
                    self.virtualCameraChanged.emit(False, "")
                    return
                w, h = self.output_size
                try:
                    cam = VirtualCameraSink(w, h, self.fps, backend=self.vcam_backend)
                except VirtualCameraUnavailable as exc:
                    # The fix first (it is what the user acts on); the backend's detail after.
                    self.virtualCameraChanged.emit(False, f"No virtual camera device. {exc.what_to_do}\n\n{exc.what}")
                    return
                self.vcam = cam
                self._vcam_slot = GuardedSink(PacedSink(cam, self.fps, fill_gaps=False))
                self.sinks.add(self._vcam_slot)
            self.virtualCameraChanged.emit(True, cam.device)

        self._submit(job)

    def _close_vcam(self) -> None:
        slot, self._vcam_slot, self.vcam = self._vcam_slot, None, None
        if slot is not None:
            self.sinks.remove(slot)
            try:
                slot.close()
            except Exception as exc:  # closing a vanished device is not worth an error box
                log.warning("closing the virtual camera: %s", exc)

    def _output_size_changed(self) -> None:
        """The avatar now renders at another size (or the fps changed): reopen what depends on it."""
        with self._state:
            vcam_on = self.vcam is not None
            rec = self.recording_path
        if vcam_on:
            self.set_virtual_camera(True)
        if rec is not None and self._rec_slot is not None:
            size = self._rec_size
            if size != self.output_size:
                self.stop_recording()

    def start_recording(self, path: str | Path) -> None:
        path = Path(path)

        def job() -> None:
            with self._state:
                self._close_recording()
                size = self.output_size
                try:
                    sink = VideoFileSink(path, self.fps, size)
                except PuppetCamError as exc:
                    self.sinkFailed.emit(str(exc))
                    self.recordingChanged.emit(False, "")
                    return
                self._rec_size = size
                self._rec_paced = PacedSink(sink, self.fps, fill_gaps=True)
                self._rec_slot = GuardedSink(self._rec_paced)
                self.recording_path = path
                self.sinks.add(self._rec_slot)
            self.recordingChanged.emit(True, str(path))

        self._submit(job)

    _rec_size: tuple[int, int] = (0, 0)

    def stop_recording(self) -> None:
        def job() -> None:
            with self._state:
                path = self._close_recording()
            self.recordingChanged.emit(False, str(path or ""))

        self._submit(job)

    def _close_recording(self) -> Path | None:
        slot, self._rec_slot = self._rec_slot, None
        path, self.recording_path = self.recording_path, None
        if slot is not None:
            self.sinks.remove(slot)
            slot.close()
        return path

    @property
    def recorded_frames(self) -> int:
        paced = self._rec_paced
        return paced.frames_written if paced is not None else 0

    def _on_sink_error(self, message: str) -> None:
        # Render thread: a sink failed and SinkFanout dropped it; tidy up our handles. No lock
        # here: a worker holding the state lock may be joining this very thread.
        current = self.sinks.sinks
        vcam = self._vcam_slot
        if vcam is not None and vcam not in current:
            self._vcam_slot, self.vcam = None, None
            self.virtualCameraChanged.emit(False, f"The virtual camera stopped: {message}")
        rec = self._rec_slot
        if rec is not None and rec not in current:
            self._rec_slot, self.recording_path = None, None
            self.recordingChanged.emit(False, "")
        self.sinkFailed.emit(message)

    # ---------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Stop everything; waits for a job in progress (at most an avatar load)."""
        self._closing = True
        self._io.clear()
        self._bg.clear()
        self._io.waitForDone(15000)
        self._bg.waitForDone(15000)
        with self._state:
            if self.session is not None:
                self.session.stop()
            if self._pending_source is not None:
                self._pending_source.close()
                self._pending_source = None
            self._vcam_slot = self._rec_slot = None
            self.vcam = None
            self.recording_path = None
            self.sinks.close()
            if self.group is not None:
                self.group.close()
                self.group = self.cast = None
            if self.puppeteer is not None:
                self.puppeteer.close()
                self.puppeteer = None


def _unique_path(folder: Path, source: Path) -> Path:
    """A free file name in `folder` for a copy of `source` (name-2.jpg, name-3.jpg, ...)."""
    target = folder / source.name
    if source.resolve().parent == folder.resolve():
        return source
    n = 2
    while target.exists():
        target = folder / f"{source.stem}-{n}{source.suffix}"
        n += 1
    return target
