"""Frame sinks: where finished BGR frames go (video file, virtual camera, preview window).

`SinkFanout` sends each frame to several sinks and drops one that fails, so that e.g. a
closed preview window does not stop the virtual camera.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterable, Protocol, runtime_checkable

import cv2
import numpy as np
import pyvirtualcam

from app.errors import PuppetCamError, VirtualCameraUnavailable

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
    """Writes frames to an .mp4 file ('mp4v' codec, readable by OpenCV and most players)."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]) -> None:
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        self.name = str(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PuppetCamError(
                f"Cannot create the folder {self.path.parent} for the output video ({exc.strerror}).",
                "Choose an output path in a folder you can write to.",
            ) from exc
        self._writer = cv2.VideoWriter(
            str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), self.size
        )
        if not self._writer.isOpened():
            raise PuppetCamError(
                f"Cannot write the video file {self.path}.",
                "Check that the folder is writable, the disk is not full and the name ends "
                "in .mp4, or choose another output path.",
            )

    def write(self, image: np.ndarray) -> None:
        self._writer.write(_fit_size(image, self.size))

    def close(self) -> None:
        self._writer.release()

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
    return "No virtual-camera driver is known for this system; use --output FILE instead."


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
    """Why an OpenCV window cannot be shown here, or None if it can.

    On Linux the OpenCV wheel's Qt aborts the whole process (no exception) when it cannot
    reach a display, so it is checked beforehand, in a throwaway subprocess when needed.
    """
    if not sys.platform.startswith("linux"):
        return None
    if not os.environ.get("DISPLAY"):
        return "no display is available (DISPLAY is not set)"
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform and not platform.startswith("xcb"):
        return f"QT_QPA_PLATFORM={platform} is set, and OpenCV's window support only has 'xcb'"
    probe = "import cv2; cv2.namedWindow('probe'); cv2.waitKey(1); cv2.destroyAllWindows()"
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
    """Shows frames in an OpenCV window; `last_key` is the key pressed during the last write.

    Keys the CLI handles: c = calibrate, q or Esc = quit (see `quit_requested`).
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
                "--output FILE or the virtual camera.",
            )
        self._opened = False

    def write(self, image: np.ndarray) -> None:
        try:
            if not self._opened:
                cv2.namedWindow(self.window_name, cv2.WINDOW_NORMAL)
                self._opened = True
            cv2.imshow(self.window_name, image)
            key = cv2.waitKey(1)
        except cv2.error as exc:
            raise PuppetCamError(
                "The preview window cannot be shown: the preview needs a display.",
                "Run PuppetCam from a desktop session, or leave out --preview.",
            ) from exc
        self.last_key = key & 0xFF if key != -1 else -1

    @property
    def quit_requested(self) -> bool:
        """True if q or Esc was pressed during the last write, or the window was closed."""
        if self.last_key in (ord("q"), ESCAPE_KEY):
            return True
        if not self._opened:
            return False
        try:
            return cv2.getWindowProperty(self.window_name, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:
            return True

    def close(self) -> None:
        if self._opened:
            try:
                cv2.destroyWindow(self.window_name)
                cv2.waitKey(1)  # lets the GUI loop actually remove the window
            except cv2.error:
                pass
            self._opened = False


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
