"""The desktop app's logic without widgets: it owns the Puppeteer, the LiveSession, the source
and the outputs, and talks to the window through Qt signals only.

Threads:
- the GUI thread calls the public methods, which return at once: all slow work (loading an
  avatar, building the Puppeteer, opening a camera, opening the virtual camera, swapping
  sessions) runs in two worker pools: `_io` (one thread, in order) and `_bg` (one thread, at a
  lower CPU priority, for avatar loading so that it steals as little as possible from the live
  loop on a small machine);
- the LiveSession thread renders; `_on_frame` runs there and prepares the preview images
  (scaled QImages, landmark overlay) so the GUI thread only swaps pixmaps.

The pipeline is driven only through its live API: `update_settings` (taken at the next frame),
`set_cast` (one face or several: built on a worker, swapped between two frames),
`set_motion_hook` (the held expressions), `calibrate` and `swap`.
"""

from __future__ import annotations

from dataclasses import replace
import logging
from pathlib import Path
import threading
import time
from typing import Callable

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, Signal

from app import DEFAULT_AVATAR
from app.avatar import Avatar
from app.capture import FrameSource, list_cameras
from app.cast import Cast
from app.errors import PuppetCamError
from app.pipeline import FrameResult, LiveSession, PipelineSettings, Puppeteer
from app.renderers import RendererChoice, open_renderer

from .avatar_loading import CastLoader, add_to_folder
from .expressions import ExpressionHook, ExpressionMixer
from .metrics import FrameView, OutputTiming, SwitchStall, frame_view
from .outputs import Outputs
from .settings_store import MAX_FACES
from .workers import SourceSpec, _Job
from .readouts import Readouts

log = logging.getLogger("puppetcam.gui")

__all__ = ["Controller", "FrameView", "SourceSpec", "SwitchStall"]


class Controller(Readouts, QObject):
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
        self.expressions = ExpressionHook(self.mixer)
        self.overlay = False
        self.display_boxes = {"driver": (480, 480), "output": (480, 480)}

        self.puppeteer: Puppeteer | None = None
        self.session: LiveSession | None = None
        self.source_spec: SourceSpec | None = None
        self.faces = 1  # requested avatar faces
        self.avatar_path: Path | None = None  # the portrait on show
        self._requested_path: Path | None = None  # the portrait last asked for
        self.loader = CastLoader(settings.animator.render.grid_size)
        self.outputs = Outputs(self, lambda: self.output_size)
        self.sinks = self.outputs.sinks
        self.timing = OutputTiming()

        self._state = threading.RLock()
        self._io = QThreadPool(self)
        self._io.setMaxThreadCount(1)
        self._bg = QThreadPool(self)
        self._bg.setMaxThreadCount(1)
        self._closing = False
        self._avatar_gen = 0
        self._installed_gen = -1
        self._pending_source: FrameSource | None = None

        # Per-frame state (written by the render thread, read by the GUI's timer).
        self._session_id = 0
        self._display_busy = False
        self.last_times: dict[str, float] = {}
        self.face_found = False
        self.faces_found = 0
        self.last_people: list[int | None] = []  # per avatar face, the person driving it
        self.reported_error: str | None = None

    # ---------------------------------------------------------------- what runs

    @property
    def cast(self) -> Cast | None:
        return self.puppeteer.cast if self.puppeteer is not None else None

    @property
    def avatar(self) -> Avatar | None:
        """The (first) avatar face on show."""
        cast = self.cast
        return cast.faces[0].avatar if cast is not None else None

    @property
    def active_faces(self) -> int:
        """How many avatar faces the output animates now."""
        cast = self.cast
        return len(cast.faces) if cast is not None else 1

    @property
    def output_size(self) -> tuple[int, int]:
        cast = self.cast
        if cast is not None:
            return cast.size
        f = self.settings.framing
        return (512, 512) if f is None or f.width is None else (int(f.width), int(f.height))

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

    def start(self, avatar_path: str | Path | None) -> None:
        """Load the first avatar and build the Puppeteer (about 2 s), in the background."""
        path = Path(avatar_path) if avatar_path else DEFAULT_AVATAR
        self._requested_path = path
        faces, framing = self.faces, self.settings.framing
        self._avatar_gen += 1
        gen = self._avatar_gen

        def job() -> None:
            try:
                cast = self.loader.load(path, faces, framing)
            except PuppetCamError as exc:
                self.avatarFailed.emit(str(path), str(exc))
                cast = self.loader.load(DEFAULT_AVATAR, 1, framing)
                self.faces = 1
                if self._requested_path == path:
                    self._requested_path = DEFAULT_AVATAR
            puppeteer = Puppeteer(cast, self.settings, on_change=self._assignment_message)
            puppeteer.set_motion_hook(self.expressions)
            with self._state:
                self.puppeteer = puppeteer
                self._installed_gen = max(self._installed_gen, gen)
                self.avatar_path = cast.faces[0].avatar.path if len(cast.faces) == 1 else path
            self.ready.emit()
            self.avatarChanged.emit(cast.name, str(self.avatar_path or ""))
            self.facesChanged.emit(len(cast.faces))
            self._start_session_if_ready()

        self._submit(job)

    def select_avatar(self, path: str | Path) -> None:
        """Switch the live portrait (with as many faces as `set_faces` asked for): loaded off
        the GUI thread, swapped between two frames. A failure (`avatarFailed`) keeps what runs."""
        path = Path(path)
        self._requested_path = path
        self._avatar_gen += 1
        gen, faces, framing = self._avatar_gen, self.faces, self.settings.framing
        requested = time.perf_counter()

        def job() -> None:
            t0 = time.perf_counter()
            try:
                cast = self.loader.load(path, faces, framing)
            except PuppetCamError as exc:
                self._load_failed(path, exc, gen)
                return
            self._install(cast, path, gen, requested, (time.perf_counter() - t0) * 1e3)

        # Before the Puppeteer exists (at start-up) this must wait for it: the same queue as start().
        self._submit(job, background=self.puppeteer is not None)

    def _load_failed(self, path: Path, exc: PuppetCamError, gen: int) -> None:
        self.avatarFailed.emit(str(path), str(exc))
        with self._state:
            latest = gen == self._avatar_gen and not self._closing
            if latest:
                # Keep what runs, and say so: the Faces control goes back to it.
                self.faces = self.active_faces
                self._requested_path = self.avatar_path
        if latest:
            self.facesChanged.emit(self.active_faces)

    def _install(self, cast: Cast, path: Path, gen: int, requested: float, load_ms: float) -> None:
        with self._state:
            if gen < self._installed_gen or self._closing or self.puppeteer is None:
                return  # an older request finishing after a newer one
            if len(cast.faces) != self.faces or (self.faces == 1 and cast.size != self._single_size()):
                return  # the faces or the output size changed meanwhile; the reload for it is queued
            self._installed_gen = gen
            previous = self.cast
            several = len(cast.faces) > 1 or len(previous.faces) > 1
            probe = SwitchStall("faces" if several else "avatar",
                                f"{cast.name} x{len(cast.faces)}" if several else cast.name, requested,
                                load_ms=load_ms, period_ms=self.timing.period_ms(), _cast=cast)
            t0 = time.perf_counter()
            self.puppeteer.set_cast(cast)
            probe._set_t = time.perf_counter()
            probe.swap_ms = (probe._set_t - t0) * 1e3
            self.avatar_path = cast.faces[0].avatar.path if len(cast.faces) == 1 else path
            self.last_people = [None] * len(cast.faces)
            if self.session is not None and self.session.running:
                self.timing.watch(probe)
        log.info("%d avatar face(s) (%s)", len(cast.faces), cast.name)
        self.avatarChanged.emit(cast.name, str(self.avatar_path or ""))
        if len(cast.faces) != len(previous.faces):
            self.facesChanged.emit(len(cast.faces))
        if cast.size != previous.size:
            self._output_size_changed()

    def _single_size(self) -> tuple[int, int] | None:
        f = self.settings.framing
        return None if f is None or f.width is None else (int(f.width), int(f.height))

    def set_faces(self, n: int) -> None:
        """Animate n avatar faces (1 to MAX_FACES) of the current portrait."""
        n = int(min(max(n, 1), MAX_FACES))
        if n == self.faces:
            return
        self.faces = n
        self.select_avatar(self._requested_path or self.avatar_path or DEFAULT_AVATAR)

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
        puppeteer = self.puppeteer
        if puppeteer is not None:
            self._submit(lambda: puppeteer.swap(a, b))

    def still_image(self) -> np.ndarray | None:
        """What the output shows at rest: the cast's canvas."""
        cast = self.cast
        return cast.canvas if cast is not None else None

    def add_avatar(self, path: str | Path, user_dir: Path) -> None:
        """Check an image for a usable face (in the background) and, if it has one, copy it
        into the user's avatar folder; `avatarAdded` or `avatarRejected` reports the outcome."""
        path, framing = Path(path), self.settings.framing

        def job() -> None:
            try:
                copy = add_to_folder(path, user_dir, framing, self.loader.grid_size)
            except PuppetCamError as exc:
                self.avatarRejected.emit(str(path), str(exc))
                return
            self.loader.remember_avatar(copy, framing)
            self.avatarAdded.emit(str(copy.path))

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

    def _swap_session(self, source: FrameSource, requested: float) -> None:
        old = self.session
        if self.puppeteer is None:
            if self._pending_source is not None:
                self._pending_source.close()
            self._pending_source = source
            return
        probe = None
        if old is not None and old.running:
            probe = SwitchStall("source", source.name, requested, period_ms=self.timing.period_ms())
        if old is not None:
            old.stop()
        if old is not None and old.error is None and old.running:
            log.warning("the previous session did not stop in time")
        self._session_id += 1
        sid = self._session_id
        self.reported_error = None
        session = LiveSession(self.puppeteer, source, self.sinks, on_frame=lambda r: self._on_frame(r, sid))
        if probe is not None:
            probe._session = sid
            self.timing.watch(probe)
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
        self.timing.frame(result, session_id)
        self.last_times = dict(result.times)
        self.faces_found = sum(f is not None for f in result.faces)
        self.face_found = self.faces_found > 0
        self.last_people = list(result.people)
        if self._display_busy:
            return  # the GUI has not shown the previous frame yet: skip the preview, not the output
        view = frame_view(result, self.display_boxes, self.overlay)
        self._display_busy = True
        self.frameReady.emit(view)

    def frame_shown(self) -> None:
        """The GUI has put the last FrameView on screen: the next one may be prepared."""
        self._display_busy = False

    # ---------------------------------------------------------------- settings

    def update_settings(self, settings: PipelineSettings) -> None:
        """New gains, mode, smoothing or mirror: taken by the pipeline at its next frame."""
        framing_changed = settings.framing != self.settings.framing
        mirror_changed = settings.mirror_input != self.settings.mirror_input
        self.settings = settings
        if self.puppeteer is not None:
            self.puppeteer.update_settings(settings)
        if mirror_changed:
            self.calibrate()  # the neutral face was measured the other way round
        # A cast of several faces is sized for its group; a lone portrait reloads at the new size.
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

    def set_renderer(self, choice: RendererChoice) -> None:
        """Render with another backend (a learned one loads its networks off the GUI thread);
        a failure (`sessionFailed`) keeps what runs."""
        def job() -> None:
            try:
                backend = open_renderer(choice)
            except PuppetCamError as exc:
                self.sessionFailed.emit(str(exc))
                return
            if self.puppeteer is not None:
                self.puppeteer.set_renderer(backend)

        self._submit(job, background=True)

    def calibrate(self) -> None:
        """Every avatar face takes its driver's next face as neutral (safe from any thread)."""
        if self.puppeteer is not None:
            self.puppeteer.calibrate()

    # ---------------------------------------------------------------- outputs

    def set_virtual_camera(self, on: bool) -> None:
        def job() -> None:
            with self._state:
                if on:
                    self.outputs.open_virtual_camera(self.fps, self.vcam_backend)
                else:
                    self.outputs.close_virtual_camera()
                    self.virtualCameraChanged.emit(False, "")

        self._submit(job)

    def _output_size_changed(self) -> None:
        """The output now has another size (or the fps changed): reopen what depends on it."""
        if self.vcam is not None:
            self.set_virtual_camera(True)
        if not self.outputs.recording_fits():
            self.stop_recording()

    def start_recording(self, path: str | Path) -> None:
        path = Path(path)

        def job() -> None:
            with self._state:
                self.outputs.start_recording(path, self.fps)

        self._submit(job)

    def stop_recording(self) -> None:
        def job() -> None:
            with self._state:
                path = self.outputs.stop_recording()
            self.recordingChanged.emit(False, str(path or ""))

        self._submit(job)

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
            self.outputs.close()
            if self.puppeteer is not None:
                self.puppeteer.close()
                self.puppeteer = None
