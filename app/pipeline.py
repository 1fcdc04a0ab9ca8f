"""The pipeline: capture -> track -> retarget -> render -> composite -> sinks, as one object
that the CLI, the desktop app, the benchmark and the tests all drive."""

from __future__ import annotations

from dataclasses import dataclass, field
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from engines.base import FieldEngine

from .animator import AnimatedFrame, Animator, AnimatorSettings
from .avatar import DEFAULT_FRAMING, Avatar
from .composite import Framing
from .capture import CameraSource, Frame, FrameSource, LatestFrameGrabber
from .sinks import SinkFanout
from .tracking import FaceObservation, FaceTracker, TrackerSettings

if TYPE_CHECKING:
    from engines import EngineChoice

    from .group import GroupFrameResult


@dataclass(frozen=True)
class PipelineSettings:
    framing: Framing | None = DEFAULT_FRAMING  # None: the avatar's own size
    animator: AnimatorSettings = AnimatorSettings()
    engine: str = "auto"  # see engines.select_engine
    mirror_input: bool = False  # a selfie view: the avatar moves like a mirror image


def make_engine(name: str, grid_size: int) -> FieldEngine:
    return choose_engine(name, grid_size).engine


def choose_engine(name: str, grid_size: int) -> "EngineChoice":
    """The engine and, for every backend, why it was or was not used (for the CLI and app to show)."""
    from engines import select_engine

    return select_engine(name, grid_size)


class FrameProcessor(Protocol):
    """What the offline and live loops drive: `Puppeteer` (one face) or `GroupPuppeteer`."""

    def track(self, frame: Frame) -> TrackedFrame: ...

    def process(self, frame: Frame) -> "FrameResult | GroupFrameResult": ...

    def calibrate(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class FrameResult:
    """One output frame and what it took, stage by stage (milliseconds)."""

    index: int
    image: np.ndarray
    driver: np.ndarray
    face: FaceObservation | None
    animated: AnimatedFrame
    times: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TrackedFrame(Frame):
    """A frame with the faces found in it. `image` is what the tracker saw (mirrored when the
    settings ask for a selfie view), so animating it needs no second flip."""

    faces: tuple[FaceObservation, ...] = ()
    track_ms: float = 0.0


class FaceTracking:
    """A face tracker that is safe to close while another thread tracks: `close` waits for a
    detection in progress, and a frame tracked after it finds no face (the live loop may still
    be tracking when the app swaps processors; one frame without a face is held, invisibly)."""

    def __init__(self, settings: TrackerSettings) -> None:
        self._tracker: FaceTracker | None = FaceTracker(settings)
        self._lock = threading.Lock()

    def __call__(self, frame: Frame, mirror: bool) -> TrackedFrame:
        if isinstance(frame, TrackedFrame):
            return frame
        with self._lock:
            t0 = time.perf_counter()
            image = frame.image[:, ::-1].copy() if mirror else frame.image
            faces = tuple(self._tracker.detect(image)) if self._tracker is not None else ()
            ms = (time.perf_counter() - t0) * 1e3
        return TrackedFrame(image, frame.index, frame.timestamp, faces, ms)

    def close(self) -> None:
        with self._lock:
            if self._tracker is not None:
                self._tracker.close()
                self._tracker = None


class Puppeteer:
    """Tracking plus animation for one avatar: the per-frame work without any I/O."""

    def __init__(self, avatar: Avatar, settings: PipelineSettings = PipelineSettings(),
                 engine: FieldEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.engine, avatar.rig.grid_size)
        self.tracking = FaceTracking(TrackerSettings())
        self.animator = Animator(avatar, self.engine, settings.animator)
        self._lock = threading.Lock()

    @property
    def avatar(self) -> Avatar:
        return self.animator.avatar

    def set_avatar(self, avatar: Avatar) -> None:
        with self._lock:
            self.animator.set_avatar(avatar)

    def calibrate(self) -> None:
        self.animator.calibrate()

    def track(self, frame: Frame) -> TrackedFrame:
        """The tracking half of `process`; the live loop runs it in the capture thread."""
        return self.tracking(frame, self.settings.mirror_input)

    def process(self, frame: Frame) -> FrameResult:
        """One frame: tracked here unless it comes tracked already (a `TrackedFrame`)."""
        tracked = self.track(frame)
        face = tracked.faces[0] if tracked.faces else None
        with self._lock:
            animated = self.animator.step(tracked.image, face, tracked.timestamp)
        times = {"track": tracked.track_ms, "retarget": animated.times.retarget, "render": animated.times.render}
        return FrameResult(frame.index, animated.image, tracked.image, face, animated, times)

    def close(self) -> None:
        self.tracking.close()


class TrackingSource:
    """A source whose frames come out tracked. Wrapped in the live loop's frame grabber, the
    tracking of frame n+1 runs in the capture thread while frame n renders: two stages on two
    cores (`python -m app.bench`: 49 fps pipelined against 34 sequential at 512x512)."""

    def __init__(self, source: FrameSource, processor: "FrameProcessor") -> None:
        self.source = source
        self.processor = processor
        self.name = source.name
        self.fps = source.fps

    def read(self) -> TrackedFrame | None:
        frame = self.source.read()
        return None if frame is None else self.processor.track(frame)

    def close(self) -> None:
        self.source.close()


def render_file(avatar: Avatar, source: FrameSource, sinks: SinkFanout,
                settings: PipelineSettings = PipelineSettings(),
                on_frame: Callable[[FrameResult], None] | None = None) -> int:
    """Offline: every frame of the source, in order. Returns the number of frames written."""
    return run_offline(Puppeteer(avatar, settings), source, sinks, on_frame)


def lookahead_neutral(path: "os.PathLike | str", mirror: bool = False, samples: int = 150) -> np.ndarray | None:
    """The most neutral driver face in a whole clip (landmarks, pixels), for an offline render
    to measure motion against from its first frame on: a clip that starts mid-word or
    mid-turn is then measured like any other. Cheap: at most `samples` frames are tracked
    (every k-th, so short lip closures of a talking clip are still likely among them)."""
    from .capture import VideoFileSource
    from .neutral import choose_neutral

    faces: list[np.ndarray] = []
    with VideoFileSource(path) as source, FaceTracker(TrackerSettings(static_images=True)) as tracker:
        step = max(1, -(-source.frame_count // samples)) if source.frame_count else 1
        while (frame := source.read()) is not None:
            if frame.index % step:
                continue
            image = frame.image[:, ::-1].copy() if mirror else frame.image
            found = tracker.detect(image)
            if found:
                faces.append(found[0].landmarks)
    best = choose_neutral(faces)
    return None if best is None else faces[best]


def run_offline(processor: FrameProcessor, source: FrameSource, sinks: SinkFanout,
                on_frame: Callable[[Any], None] | None = None) -> int:
    """Every frame of the source through `processor` (closed at the end), in order."""
    count = 0
    try:
        while (frame := source.read()) is not None:
            result = processor.process(frame)
            sinks.write(result.image)
            count += 1
            if on_frame:
                on_frame(result)
    finally:
        processor.close()
    return count


class LiveSession:
    """Live: always the newest camera frame, so latency never creeps up.

    Runs in its own thread (`start`/`stop`) or in the caller's (`run`); the GUI listens through
    `on_frame` and never blocks the render loop. `pipelined` (default: with 2 cores or more)
    tracks in the capture thread while the loop renders the previous frame.
    """

    def __init__(self, puppeteer: FrameProcessor, source: FrameSource, sinks: SinkFanout,
                 on_frame: Callable[[Any], None] | None = None, pipelined: bool | None = None) -> None:
        self.puppeteer = puppeteer
        self.source = source
        self.sinks = sinks
        self.on_frame = on_frame
        self.pipelined = (os.cpu_count() or 1) >= 2 if pipelined is None else pipelined
        self.fps = 0.0
        self.last_result: Any = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._grabber: LatestFrameGrabber | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="puppetcam-live", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        if self.pipelined:
            grabber = LatestFrameGrabber(TrackingSource(self.source, self.puppeteer),
                                         pace=not isinstance(self.source, CameraSource))
        else:
            grabber = LatestFrameGrabber(self.source)
        self._grabber = grabber
        last_index = -1
        last_t: float | None = None
        ema = None
        try:
            while not self._stop.is_set():
                frame = grabber.wait_new(last_index, timeout=0.5)
                if frame is None:
                    if grabber.error is not None:
                        self.error = grabber.error
                        break
                    if grabber.finished:
                        break
                    # No new frame for a while: keep the output alive with the last good frame.
                    if self.last_result is not None:
                        self.sinks.write(self.last_result.image)
                    continue
                last_index = frame.index
                t0 = time.perf_counter()
                result = self.puppeteer.process(frame)
                self.sinks.write(result.image)
                busy = time.perf_counter() - t0
                # The output rate: frames come no faster than the slower stage (or the camera).
                dt = busy if last_t is None else max(busy, t0 - last_t)
                last_t = t0
                ema = dt if ema is None else 0.9 * ema + 0.1 * dt
                self.fps = 1.0 / max(ema, 1e-6)
                result.times["total"] = busy * 1e3
                self.last_result = result
                if self.on_frame:
                    self.on_frame(result)
        except BaseException as exc:  # reported to the caller, never lost in a thread
            self.error = exc
        finally:
            grabber.stop()
