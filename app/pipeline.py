"""The pipeline: capture -> track -> retarget -> render -> composite -> sinks, as one object
that the CLI, the desktop app, the benchmark and the tests all drive."""

from __future__ import annotations

import os
import threading
import time
from typing import Callable

import numpy as np

from .capture import CameraSource, FrameSource, LatestFrameGrabber
from .puppeteer import FrameResult, PipelineSettings, Puppeteer, choose_engine, make_engine
from .sinks import SinkFanout
from .tracked import TrackedFrame
from .tracking import FaceTracker, TrackerSettings

__all__ = ["FrameResult", "LiveSession", "PipelineSettings", "Puppeteer", "TrackedFrame", "TrackingSource",
           "choose_engine", "lookahead_neutral", "make_engine", "run_offline"]


class TrackingSource:
    """A source whose frames come out tracked. Wrapped in the live loop's frame grabber, the
    tracking of frame n+1 runs in the capture thread while frame n renders: two stages on two
    cores (`python -m app.bench`: 49 fps pipelined against 34 sequential at 512x512)."""

    def __init__(self, source: FrameSource, processor: Puppeteer) -> None:
        self.source = source
        self.processor = processor
        self.name = source.name
        self.fps = source.fps

    def read(self) -> TrackedFrame | None:
        frame = self.source.read()
        return None if frame is None else self.processor.track(frame)

    def close(self) -> None:
        self.source.close()


def lookahead_neutral(path: "os.PathLike | str", mirror: bool = False, samples: int = 150,
                      max_faces: int = 1) -> np.ndarray | None:
    """The most neutral driver face in a whole clip (landmarks, pixels), for an offline render
    to measure motion against from its first frame on: a clip that starts mid-word or
    mid-turn is then measured like any other. Cheap: at most `samples` frames are tracked
    (every k-th, so short lip closures of a talking clip are still likely among them).

    Tracking up to `max_faces` faces (the cast's): a clip that shows more than one person has no
    one neutral face, and gets None."""
    from .capture import VideoFileSource
    from .neutral import choose_neutral

    faces: list[np.ndarray] = []
    settings = TrackerSettings(static_images=True, max_faces=max_faces)
    with VideoFileSource(path) as source, FaceTracker(settings) as tracker:
        step = max(1, -(-source.frame_count // samples)) if source.frame_count else 1
        while (frame := source.read()) is not None:
            if frame.index % step:
                continue
            image = frame.image[:, ::-1].copy() if mirror else frame.image
            found = tracker.detect(image)
            if len(found) > 1:
                return None
            if found:
                faces.append(found[0].landmarks)
    best = choose_neutral(faces)
    return None if best is None else faces[best]


def run_offline(processor: Puppeteer, source: FrameSource, sinks: SinkFanout,
                on_frame: Callable[[FrameResult], None] | None = None) -> int:
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

    def __init__(self, puppeteer: Puppeteer, source: FrameSource, sinks: SinkFanout,
                 on_frame: Callable[[FrameResult], None] | None = None, pipelined: bool | None = None) -> None:
        self.puppeteer = puppeteer
        self.source = source
        self.sinks = sinks
        self.on_frame = on_frame
        self.pipelined = (os.cpu_count() or 1) >= 2 if pipelined is None else pipelined
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
