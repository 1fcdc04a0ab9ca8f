"""The pipeline: capture -> track -> retarget -> render -> composite -> sinks, as one object
that the CLI, the desktop app, the benchmark and the tests all drive."""

from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from engines.base import FieldEngine

from .animator import AnimatedFrame, Animator, AnimatorSettings
from .avatar import DEFAULT_FRAMING, Avatar
from .composite import Framing
from .capture import Frame, FrameSource, LatestFrameGrabber
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


class Puppeteer:
    """Tracking plus animation for one avatar: the per-frame work without any I/O."""

    def __init__(self, avatar: Avatar, settings: PipelineSettings = PipelineSettings(),
                 engine: FieldEngine | None = None) -> None:
        self.settings = settings
        self.engine = engine or make_engine(settings.engine, avatar.rig.grid_size)
        self.tracker = FaceTracker(TrackerSettings())
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

    def process(self, frame: Frame) -> FrameResult:
        with self._lock:
            t0 = time.perf_counter()
            image = frame.image[:, ::-1].copy() if self.settings.mirror_input else frame.image
            faces = self.tracker.detect(image)
            face = faces[0] if faces else None
            t1 = time.perf_counter()
            animated = self.animator.step(image, face, frame.timestamp)
        times = {"track": (t1 - t0) * 1e3, "retarget": animated.times.retarget, "render": animated.times.render}
        return FrameResult(frame.index, animated.image, image, face, animated, times)

    def close(self) -> None:
        self.tracker.close()


def render_file(avatar: Avatar, source: FrameSource, sinks: SinkFanout,
                settings: PipelineSettings = PipelineSettings(),
                on_frame: Callable[[FrameResult], None] | None = None) -> int:
    """Offline: every frame of the source, in order. Returns the number of frames written."""
    return run_offline(Puppeteer(avatar, settings), source, sinks, on_frame)


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
    `on_frame` and never blocks the render loop.
    """

    def __init__(self, puppeteer: FrameProcessor, source: FrameSource, sinks: SinkFanout,
                 on_frame: Callable[[Any], None] | None = None) -> None:
        self.puppeteer = puppeteer
        self.source = source
        self.sinks = sinks
        self.on_frame = on_frame
        self.fps = 0.0
        self.last_result: FrameResult | None = None
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
        grabber = self._grabber = LatestFrameGrabber(self.source)
        last_index = -1
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
                dt = time.perf_counter() - t0
                ema = dt if ema is None else 0.9 * ema + 0.1 * dt
                self.fps = 1.0 / max(ema, 1e-6)
                result.times["total"] = dt * 1e3
                self.last_result = result
                if self.on_frame:
                    self.on_frame(result)
        except BaseException as exc:  # reported to the caller, never lost in a thread
            self.error = exc
        finally:
            grabber.stop()
