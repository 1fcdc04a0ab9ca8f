"""Frame sinks: where finished BGR frames go (video file, virtual camera, preview window).

`SinkFanout` sends each frame to several sinks and drops one that fails, so that e.g. a
closed preview window does not stop the virtual camera.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable, Protocol, runtime_checkable

import cv2
import numpy as np
import pyvirtualcam

from app.errors import PuppetCamError, VirtualCameraUnavailable
from app.video_writer import LIVE_ENCODER, RENDER_ENCODER, AtomicVideoWriter, EncoderSettings

LINUX_MODPROBE = (
    'sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="PuppetCam" exclusive_caps=1'
)
ESCAPE_KEY = 27


@runtime_checkable
class FrameSink(Protocol):
    """Anything that consumes finished frames."""

    name: str

    def write(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


def _fit_size(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`image` at (w, h) = size; a plain resize because the pipeline already hands this size."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


class VideoFileSink:
    """Writes frames to an H.264 .mp4 file (see `app.video_writer`), finished atomically on close.

    `clock`: stamp each frame with the clock's time when it was written (a live recording plays
    as long as the session ran); None: frame n at n / fps (a render). `audio_from`: carry that
    file's audio track across. A write error raises `OutputWriteError` and no file is left; a
    `close` after such an error does nothing.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int],
                 clock: Callable[[], float] | None = None, audio_from: str | Path | None = None,
                 encoder: EncoderSettings | None = None) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        if encoder is None:
            encoder = LIVE_ENCODER if clock is not None else RENDER_ENCODER
        self._writer = AtomicVideoWriter(self.path, size, fps, clock=clock, audio_from=audio_from, encoder=encoder)
        self.size = self._writer.size
        self._failed = False

    @property
    def frames_written(self) -> int:
        return self._writer.frames_written

    @property
    def duration(self) -> float:
        return self._writer.duration

    def write(self, image: np.ndarray) -> None:
        try:
            self._writer.write(image)
        except PuppetCamError:
            self._failed = True
            raise

    def mark_end(self) -> None:
        """A live recording ends now (see AtomicVideoWriter.mark_end)."""
        self._writer.mark_end()

    def close(self) -> None:
        """Finish the file (or, after a failed write, leave nothing). Raises OutputWriteError."""
        if self._failed:
            return
        try:
            self._writer.finish()
        except PuppetCamError:
            self._failed = True
            raise

    def abort(self) -> None:
        """Stop without keeping a file."""
        self._failed = True
        self._writer.abort()

    def __enter__(self) -> VideoFileSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def virtual_camera_help(platform: str | None = None) -> str:
    """How to get a virtual-camera device on this OS (one sentence or two)."""
    platform = sys.platform if platform is None else platform
    if platform.startswith("linux"):
        # exclusive_caps=1 makes the device advertise capture-only, which Chrome, Zoom and
        # Teams require before they list it as a camera.
        return (
            "Install v4l2loopback with `sudo apt install v4l2loopback-dkms` and load it with "
            f"`{LINUX_MODPROBE}`, then start PuppetCam again."
        )
    if platform == "darwin":
        return (
            "Install OBS Studio 30 or newer (https://obsproject.com), click 'Start Virtual Camera' "
            "once and allow its system extension when asked, then start PuppetCam again."
        )
    if platform.startswith(("win32", "cygwin")):
        return (
            "Install OBS Studio (https://obsproject.com) and click 'Start Virtual Camera' once "
            "(you can then close OBS), then start PuppetCam again."
        )
    return "No virtual-camera driver is known for this system; use --record OUT.mp4 or --preview instead."


def pyvirtualcam_backends() -> list[str]:
    """Names of the pyvirtualcam backends registered in this process."""
    return list(pyvirtualcam.camera.BACKENDS)


class VirtualCameraSink:
    """Sends frames to a virtual camera (v4l2loopback, OBS Virtual Camera) via pyvirtualcam.

    Frames are sent as soon as they are written: the live pipeline paces itself, so
    pyvirtualcam's sleep_until_next_frame() would only add latency.
    """

    def __init__(
        self,
        width: int,
        height: int,
        fps: float,
        mirror: bool = False,
        backend: str | None = None,
    ) -> None:
        self.size = (int(width), int(height))
        self.mirror = mirror
        known = sorted(pyvirtualcam_backends())
        if backend is not None and backend not in known:
            # Checked here: pyvirtualcam would raise a bare KeyError for it.
            raise VirtualCameraUnavailable(
                f"The virtual-camera backend '{backend}' does not exist on this system "
                f"(available: {', '.join(known) or 'none'}).",
                virtual_camera_help(),
            )
        try:
            self._camera = pyvirtualcam.Camera(
                self.size[0],
                self.size[1],
                fps,
                fmt=pyvirtualcam.PixelFormat.BGR,
                backend=backend,
            )
        except Exception as exc:  # RuntimeError for "no device"; anything else means the same
            detail = " ".join(str(exc).split()).rstrip(".") or "no backend for this system"
            raise VirtualCameraUnavailable(
                f"No virtual camera could be opened ({detail}).", virtual_camera_help()
            ) from exc
        self.device: str = self._camera.device
        self.name = f"virtual camera {self.device}"

    def write(self, image: np.ndarray) -> None:
        image = _fit_size(image, self.size)
        if self.mirror:
            image = cv2.flip(image, 1)
        self._camera.send(np.ascontiguousarray(image))

    def close(self) -> None:
        self._camera.close()

    def __enter__(self) -> VirtualCameraSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _display_problem() -> str | None:
    """Why a Qt window cannot be shown here, or None if it can.

    On Linux Qt aborts the whole process (no exception) when it cannot reach a display, so it
    is checked beforehand, in a throwaway subprocess when needed. An explicit non-xcb
    QT_QPA_PLATFORM (wayland, offscreen) is trusted as the user's choice.
    """
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return None
    if not os.environ.get("DISPLAY"):
        if os.environ.get("WAYLAND_DISPLAY") and not platform:
            return None
        return "no display is available (DISPLAY is not set)"
    probe = "from PySide6.QtWidgets import QApplication; QApplication([])"
    try:
        result = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, timeout=20, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"the display check failed ({exc})"
    if result.returncode != 0:
        return f"display {os.environ['DISPLAY']} cannot be reached"
    return None


class PreviewSink:
    """A preview window (Qt, through PySide6) that any thread may `write` to.

    Why not cv2.imshow: OpenCV's Qt window belongs to the thread that first touched it, and the
    live loop writes from its own thread, so `cv2.waitKey` in `close()` (main thread) hung with
    "Timers can only be used with threads started with QThread". Here `write` only stores the
    newest frame; the main thread calls `pump()`, which shows it and handles keys and the close
    button. `last_key` is the last key pressed (an ASCII code, 27 for Esc), -1 when consumed.
    Keys the CLI handles: c calibrate, s swap faces, q or Esc quit (see `quit_requested`).
    """

    def __init__(self, window_name: str = "PuppetCam") -> None:
        self.window_name = window_name
        self.name = f"preview window '{window_name}'"
        self.last_key = -1
        problem = _display_problem()
        if problem is not None:
            raise PuppetCamError(
                f"The preview window cannot be shown: {problem}.",
                "Run PuppetCam from a desktop session, or leave out --preview and use "
                "--record OUT.mp4 or --virtual-cam.",
            )
        from PySide6.QtWidgets import QApplication

        self._app = QApplication.instance() or QApplication([window_name])
        self._lock = threading.Lock()
        self._latest: np.ndarray | None = None
        self._shown_once = False
        self._window = _make_preview_window(window_name, self._key_pressed)

    def _key_pressed(self, code: int) -> None:
        self.last_key = code

    def write(self, image: np.ndarray) -> None:
        with self._lock:
            self._latest = image

    def pump(self, wait_s: float = 0.0) -> None:
        """Show the newest frame and handle window events (main thread only), for up to `wait_s`."""
        from PySide6.QtCore import QEventLoop

        with self._lock:
            image, self._latest = self._latest, None
        if image is not None and self._window is not None and not self._window.closed:
            self._window.show_image(image)
            if not self._shown_once:
                self._window.show()
                self._shown_once = True
        deadline = time.monotonic() + wait_s
        while True:
            self._app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.005)

    @property
    def quit_requested(self) -> bool:
        """True once q or Esc was pressed or the window was closed."""
        if self.last_key in (ord("q"), ESCAPE_KEY):
            return True
        return self._window is None or self._window.closed

    def request_close(self) -> None:
        """Close the window as its close button would (tests, other front ends)."""
        if self._window is not None:
            self._window.close()

    def close(self) -> None:
        window, self._window = self._window, None
        if window is not None:
            window.close()
            window.deleteLater()
            self._app.processEvents()


def _make_preview_window(title: str, on_key: Callable[[int], None]):  # noqa: ANN202 - Qt type
    """The window class is made here so that importing app.sinks does not import Qt."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPixmap
    from PySide6.QtWidgets import QLabel

    class _PreviewWindow(QLabel):
        def __init__(self) -> None:
            super().__init__()
            self.setWindowTitle(title)
            self.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.setMinimumSize(160, 120)
            self.closed = False
            self._sized = False

        def show_image(self, image: np.ndarray) -> None:
            rgb = np.ascontiguousarray(image[:, :, ::-1])
            h, w = rgb.shape[:2]
            pixmap = QPixmap.fromImage(QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy())
            if not self._sized:
                self.resize(w, h)
                self._sized = True
            self.setPixmap(pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                         Qt.TransformationMode.SmoothTransformation))

        def keyPressEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
            key = event.key()
            if key == Qt.Key.Key_Escape:
                on_key(ESCAPE_KEY)
            elif Qt.Key.Key_A <= key <= Qt.Key.Key_Z:
                on_key(ord("a") + int(key) - int(Qt.Key.Key_A))
            else:
                super().keyPressEvent(event)

        def closeEvent(self, event) -> None:  # noqa: N802, ANN001 - Qt override
            self.closed = True
            super().closeEvent(event)

    return _PreviewWindow()


class SinkFanout:
    """Writes each frame to several sinks; one that fails is closed and dropped.

    The failure is recorded as "<sink name>: <message>" in `errors` and passed to `on_error`,
    and the other sinks keep receiving frames.
    """

    def __init__(
        self,
        sinks: Iterable[FrameSink] = (),
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self._sinks: list[FrameSink] = list(sinks)
        self.on_error = on_error
        self.errors: list[str] = []
        self.name = "fan-out"

    @property
    def sinks(self) -> tuple[FrameSink, ...]:
        return tuple(self._sinks)

    def add(self, sink: FrameSink) -> None:
        self._sinks.append(sink)

    def remove(self, sink: FrameSink) -> bool:
        """Stop sending frames to `sink` (the caller closes it); False if it was not here.

        From another thread, a write already in progress may still reach the sink once.
        """
        try:
            self._sinks.remove(sink)
        except ValueError:
            return False
        return True

    def _record(self, sink: FrameSink, exc: Exception) -> None:
        message = f"{getattr(sink, 'name', type(sink).__name__)}: {exc}"
        self.errors.append(message)
        if self.on_error is not None:
            self.on_error(message)

    def write(self, image: np.ndarray) -> None:
        for sink in list(self._sinks):
            try:
                sink.write(image)
            except Exception as exc:
                self._sinks.remove(sink)
                self._record(sink, exc)
                try:
                    sink.close()
                except Exception:
                    pass  # the write error is the one worth reporting

    def close(self) -> None:
        """Close every sink, even if one of them fails to close (its error is recorded)."""
        sinks, self._sinks = self._sinks, []
        for sink in sinks:
            try:
                sink.close()
            except Exception as exc:
                self._record(sink, exc)

    def __enter__(self) -> SinkFanout:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
