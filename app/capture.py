"""Frame sources: video files and cameras, plus a grabber that always hands out the newest frame.

Every source yields `Frame`s holding BGR uint8 images. Opening problems raise `CaptureError`
with a message that names the file or camera and says what to do.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Generic, Iterator, Protocol, Self, TypeVar, runtime_checkable

import cv2
import numpy as np

from app.errors import CaptureError

# Used when a file does not declare its frame rate (some webm/mkv): a webcam-like guess is
# better than refusing the file, and it only affects pacing and timestamps.
FALLBACK_FPS = 30.0
# A camera may fail a few reads right after opening or on a USB hiccup; only this many
# failures in a row mean it is gone.
CAMERA_MAX_FAILED_READS = 10
_OPENCV_LOG_SILENT = 0  # cv::utils::logging::LOG_LEVEL_SILENT

T = TypeVar("T")


@dataclass(frozen=True)
class Frame:
    """One captured image.

    `index` counts frames since the source was opened and keeps counting across loops of a
    file, so indices and timestamps are strictly increasing (trackers in video mode need that).
    `timestamp` is in seconds: media time (index / fps) for files, `time.monotonic()` for cameras.
    """

    image: np.ndarray
    index: int
    timestamp: float


@runtime_checkable
class FrameSource(Protocol):
    """Anything that produces frames: a camera, a video file, a test fake."""

    @property
    def fps(self) -> float: ...

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        ...

    @property
    def name(self) -> str:
        """The device or file, as shown in messages."""
        ...

    def read(self) -> Frame | None:
        """The next frame, or None at the end of the stream."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class _ClosesOnExit:
    """Context-manager plumbing: `with x:` closes x at the end."""

    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _SourceBase(_ClosesOnExit):
    """Plumbing shared by the concrete sources."""

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:  # type: ignore[attr-defined]
            yield frame


@contextlib.contextmanager
def _quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's own log while probing; probing absent devices is expected to fail."""
    # The pip wheel exposes only cv2.setLogLevel/getLogLevel, without the level constants.
    previous = cv2.getLogLevel()
    cv2.setLogLevel(_OPENCV_LOG_SILENT)
    try:
        yield
    finally:
        cv2.setLogLevel(previous)


class VideoFileSource(_SourceBase):
    """Frames of a video file, decoded by OpenCV (FFmpeg).

    A frame that fails to decode (truncated or damaged file) ends the stream quietly instead of
    raising, because a partly usable driving video is still useful. With `loop=True` the file is
    reopened at its end and plays again, indices and timestamps continuing to increase.
    """

    def __init__(self, path: str | Path, loop: bool = False) -> None:
        self.path = Path(path)
        self.loop = loop
        if not self.path.exists():
            raise CaptureError(
                f"Video file {self.path} does not exist.",
                "Check the path, or use a webcam with --camera N (e.g. --camera 0).",
            )
        if not self.path.is_file():
            raise CaptureError(
                f"{self.path} is not a file.",
                "Pass the path of a video file (e.g. .mp4), or a camera number.",
            )
        self._cap = self._open()
        self.fps = self._declared_fps(self._cap)
        self.frame_count = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        # Decode the first frames now so "not a video" is reported at open time, not later in
        # a worker thread; they are kept and handed out by read() so nothing is lost.
        self._pending: list[np.ndarray] = []
        for _ in range(2):
            ok, image = self._cap.read()
            if not ok or image is None:
                break
            self._pending.append(image)
        if not self._pending:
            self._cap.release()
            raise CaptureError(
                f"No video frame could be decoded from {self.path}.",
                "The file is damaged or in an unsupported format; re-export it as H.264 .mp4.",
            )
        if len(self._pending) == 1 and self.frame_count <= 1:
            # FFmpeg happily opens a .jpg as a one-frame video; that cannot drive anything.
            self._cap.release()
            raise CaptureError(
                f"{self.path} holds a single still image, not a video.",
                "Pass a video file (e.g. .mp4) or a camera number as the driver.",
            )
        height, width = self._pending[0].shape[:2]
        self.size = (int(width), int(height))
        self.name = str(self.path)
        self._next_index = 0
        self._frames_this_pass = 0
        self._ended = False
        self._closed = False

    def _open(self) -> cv2.VideoCapture:
        # FFmpeg explicitly: every opencv-python wheel bundles it, and letting CAP_ANY try
        # the other backends on a bad file only adds noise and backend-dependent behaviour.
        with _quiet_opencv():
            cap = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            raise CaptureError(
                f"Video file {self.path} could not be opened as a video.",
                "Check that it is a complete (not truncated) video file such as .mp4; "
                "re-export or re-download it if needed.",
            )
        return cap

    @staticmethod
    def _declared_fps(cap: cv2.VideoCapture) -> float:
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        return fps if np.isfinite(fps) and 0.0 < fps <= 1000.0 else FALLBACK_FPS

    def _decode(self) -> np.ndarray | None:
        if self._pending:
            return self._pending.pop(0)
        ok, image = self._cap.read()
        return image if ok and image is not None else None

    def read(self) -> Frame | None:
        """The next frame; None at the end of the file (or where it stops decoding)."""
        if self._closed or self._ended:
            return None
        image = self._decode()
        if image is None and self.loop and self._frames_this_pass > 0:
            # Reopening is more reliable than seeking to 0 on damaged or VFR files.
            self._cap.release()
            self._cap = self._open()
            self._frames_this_pass = 0
            image = self._decode()
        if image is None:
            # FFmpeg may decode again after a damaged packet; ending here keeps "None means
            # end of stream" true for callers.
            self._ended = True
            return None
        self._frames_this_pass += 1
        index = self._next_index
        self._next_index += 1
        return Frame(image=image, index=index, timestamp=index / self.fps)

    def close(self) -> None:
        self._closed = True
        self._pending.clear()
        self._cap.release()


class CameraSource(_SourceBase):
    """Frames of a webcam opened by index through OpenCV.

    The requested size and fps are hints; `size` and `fps` report what the driver actually gave.
    """

    def __init__(
        self,
        index: int,
        width: int = 1280,
        height: int = 720,
        fps: float = 30,
        api_preference: int = cv2.CAP_ANY,
    ) -> None:
        self.index = int(index)
        self.name = f"Camera {self.index}"
        with _quiet_opencv():
            self._cap = cv2.VideoCapture(self.index, api_preference)
        if not self._cap.isOpened():
            self._cap.release()
            raise CaptureError(
                f"Camera {self.index} could not be opened.",
                "Check that it is plugged in and not used by another app, "
                "or pass --driver VIDEO to use a video file.",
            )
        self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._cap.set(cv2.CAP_PROP_FPS, fps)
        # A one-frame driver buffer keeps latency low where the backend honours it (V4L2, DShow).
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        # Some cameras open fine but deliver nothing when another app holds them: check now.
        first = None
        for _ in range(CAMERA_MAX_FAILED_READS):
            ok, image = self._cap.read()
            if ok and image is not None:
                first = image
                break
        if first is None:
            self._cap.release()
            raise CaptureError(
                f"Camera {self.index} opened but delivers no images.",
                "Close other apps that use it (video calls, OBS), then try again, "
                "or pass --driver VIDEO to use a video file.",
            )
        self._pending: np.ndarray | None = first
        self.size = (int(first.shape[1]), int(first.shape[0]))
        reported = float(self._cap.get(cv2.CAP_PROP_FPS))
        self.fps = reported if np.isfinite(reported) and 0.0 < reported <= 1000.0 else float(fps)
        self._next_index = 0
        self._closed = False

    def read(self) -> Frame | None:
        """The next camera frame; raises CaptureError when the camera stops delivering."""
        if self._closed:
            return None
        image, self._pending = self._pending, None
        failures = 0
        while image is None:
            ok, image = self._cap.read()
            if ok and image is not None:
                break
            image = None
            failures += 1
            if failures >= CAMERA_MAX_FAILED_READS:
                raise CaptureError(
                    f"Camera {self.index} stopped delivering images.",
                    "Check that it is still plugged in and not taken by another app, then restart.",
                )
        index = self._next_index
        self._next_index += 1
        return Frame(image=image, index=index, timestamp=time.monotonic())

    def close(self) -> None:
        self._closed = True
        self._cap.release()


def list_cameras(max_index: int = 8) -> list[int]:
    """Indices of the cameras that open, probing 0..max_index-1 without log spam."""
    found: list[int] = []
    with _quiet_opencv():
        for index in range(max_index):
            cap = cv2.VideoCapture(index)
            try:
                if cap.isOpened():
                    found.append(index)
            finally:
                cap.release()
    return found


class _Locked(Generic[T]):
    """A read-only attribute of a LatestFrameGrabber: its private field `name`, read under the
    grabber's lock (the reader thread writes it)."""

    def __init__(self, name: str, doc: str) -> None:
        self.name = name
        self.__doc__ = doc

    def __get__(self, grabber: LatestFrameGrabber | None, owner: type | None = None) -> T:
        if grabber is None:
            return self  # type: ignore[return-value]  # the class attribute, for help()
        with grabber._cond:
            return getattr(grabber, self.name)

    def __set__(self, grabber: LatestFrameGrabber, value: T) -> None:
        raise AttributeError(f"{self.name.lstrip('_')} is read-only")


class LatestFrameGrabber(_ClosesOnExit):
    """Reads a source in a daemon thread and keeps only the newest frame.

    A slow consumer gets the newest frame and the ones it missed are dropped (counted in
    `dropped`): there is no queue, so latency cannot build up. File sources are paced to
    their fps so a file behaves like a live camera; cameras pace themselves.

    The reader thread owns the source: it closes it when it ends (end of stream, error, stop()).
    An exception in the thread is kept in `error` and re-raised by `latest()` / `wait_new()`
    once the frames read before it have been handed out.
    """

    def __init__(self, source: FrameSource, pace: bool | None = None, start: bool = True) -> None:
        self.source = source
        # Cameras block in read() until the next frame; only files need pacing.
        self.pace = (not isinstance(source, CameraSource)) if pace is None else pace
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._latest_arrival = 0.0
        self._handed_index = -1
        self._dropped = 0
        self._delivered = 0
        self._last_latency = 0.0
        self._finished = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"grabber:{source.name}", daemon=True
        )
        if start:
            self.start()

    def start(self) -> None:
        """Start the reader thread (done by the constructor unless start=False)."""
        if not self._thread.is_alive() and not self._finished:
            self._thread.start()

    def _run(self) -> None:
        period = 1.0 / self.source.fps if self.source.fps > 0 else 0.0
        next_due: float | None = None
        try:
            while not self._stop.is_set():
                frame = self.source.read()
                if frame is None:
                    break
                if self.pace and period > 0:
                    now = time.monotonic()
                    if next_due is None or now - next_due > period:
                        # First frame, or decoding fell behind: restart the clock rather than
                        # bursting frames out to catch up.
                        next_due = now
                    elif next_due > now:
                        if self._stop.wait(next_due - now):
                            break
                    next_due += period
                self._publish(frame)
        except Exception as exc:  # handed to the consumer, never lost
            with self._cond:
                self._error = exc
        finally:
            try:
                self.source.close()
            except Exception as exc:
                with self._cond:
                    self._error = self._error or exc
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._latest is not None and self._latest.index > self._handed_index:
                self._dropped += 1
            self._latest = frame
            self._latest_arrival = time.monotonic()
            self._cond.notify_all()

    def wait_new(self, after_index: int, timeout: float | None = 1.0) -> Frame | None:
        """The newest frame with index > after_index, waiting up to `timeout` seconds for it.

        Returns None on timeout or at the end of the stream (check `finished`); re-raises an
        error of the reader thread once no newer frame is left.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                frame = self._latest
                if frame is not None and frame.index > after_index:
                    if frame.index > self._handed_index:
                        self._handed_index = frame.index
                        self._delivered += 1
                    self._last_latency = time.monotonic() - self._latest_arrival
                    return frame
                if self._error is not None:
                    raise self._error
                if self._finished:
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)

    def latest(self, timeout: float | None = 1.0) -> Frame | None:
        """The newest frame not handed out before (so never the same frame twice), or None."""
        with self._cond:
            after = self._handed_index
        return self.wait_new(after, timeout)

    def peek(self) -> Frame | None:
        """The newest frame, handed out before or not, without waiting."""
        with self._cond:
            return self._latest

    dropped: _Locked[int] = _Locked("_dropped", "Frames replaced by a newer one before anyone took them.")
    delivered: _Locked[int] = _Locked("_delivered", "Distinct frames handed out.")
    last_latency: _Locked[float] = _Locked(
        "_last_latency", "Seconds between the last handed-out frame's arrival and its hand-out.")
    finished: _Locked[bool] = _Locked(
        "_finished", "True once the reader thread has ended (end of stream, error or stop()).")
    error: _Locked[BaseException | None] = _Locked("_error", "The exception that ended the reader thread, if any.")

    def stop(self, timeout: float = 2.0) -> None:
        """Stop reading and join the thread (which closes the source)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        elif not self._thread.is_alive() and not self._finished:
            # Never started: the source is still ours to close.
            self.source.close()
            with self._cond:
                self._finished = True

    def close(self) -> None:
        """stop(), for `with`."""
        self.stop()
