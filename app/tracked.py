"""Frames with their faces found, and the tracker that finds them across threads."""

from __future__ import annotations

from dataclasses import dataclass
import threading
import time

from .capture import Frame
from .tracking import FaceObservation, FaceTracker, TrackerSettings


@dataclass(frozen=True)
class TrackedFrame(Frame):
    """A frame with the faces found in it. `image` is what the tracker saw (mirrored when the
    settings ask for a selfie view), so animating it needs no second flip."""

    faces: tuple[FaceObservation, ...] = ()
    track_ms: float = 0.0


class GuardedTracker:
    """A `FaceTracker` that is safe to close while another thread tracks: `close` waits for a
    detection in progress, and a frame tracked after it finds no face (the live loop may still
    be tracking when the app swaps casts; one frame without a face is held, invisibly)."""

    def __init__(self, settings: TrackerSettings) -> None:
        self.max_faces = settings.max_faces
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
