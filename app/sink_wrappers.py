"""Sinks around sinks, for outputs added and removed while a session runs: a constant frame
rate against the wall clock, and closing from another thread."""

from __future__ import annotations

import threading
import time
from typing import Callable

import numpy as np

from .sinks import FrameSink


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
