"""Reusable test doubles: fake pyvirtualcam backends (no loopback device needed), a synthetic
frame source.

Note: pyvirtualcam keeps one global backend registry, and `pyvirtualcam.Camera(backend=None)`
tries every registered backend in turn; once the fakes are registered, a camera opened without
a backend name falls through to "puppetcam_fake". Tests that need "no device at all" must name
the broken backend (or call `unregister_fake_backends()`).
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import pyvirtualcam

from app.capture import Frame
from pyvirtualcam.camera import BACKENDS
from pyvirtualcam.util import encode_fourcc

FAKE_BACKEND = "puppetcam_fake"
BROKEN_BACKEND = "puppetcam_broken"

_CHANNELS = {
    encode_fourcc(pyvirtualcam.PixelFormat.BGR.value): 3,
    encode_fourcc(pyvirtualcam.PixelFormat.RGB.value): 3,
    encode_fourcc(pyvirtualcam.PixelFormat.RGBA.value): 4,
    encode_fourcc(pyvirtualcam.PixelFormat.GRAY.value): 1,
}


class RecordingCameraBackend:
    """A pyvirtualcam backend that keeps every frame it is sent, reshaped to HxWxC.

    `frames` is class-level because pyvirtualcam instantiates the backend itself; call
    `reset()` at the start of a test.
    """

    DEVICE = "/dev/fake-puppetcam"
    frames: ClassVar[list[np.ndarray]] = []
    opened: ClassVar[int] = 0
    closed: ClassVar[int] = 0

    def __init__(
        self, *, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: object
    ) -> None:
        if fourcc not in _CHANNELS:
            raise RuntimeError(f"fake backend: unsupported fourcc {fourcc}")
        self._shape = (height, width, _CHANNELS[fourcc])
        self._device = device or self.DEVICE
        type(self).opened += 1

    @classmethod
    def reset(cls) -> None:
        cls.frames.clear()
        cls.opened = 0
        cls.closed = 0

    def send(self, frame: np.ndarray) -> None:
        # pyvirtualcam hands a flat view of the caller's array: copy it.
        type(self).frames.append(frame.reshape(self._shape).copy())

    def close(self) -> None:
        type(self).closed += 1

    def device(self) -> str:
        return self._device

    def native_fourcc(self) -> int | None:
        return None


class BrokenCameraBackend:
    """A backend that fails like v4l2loopback does when no loopback device exists."""

    def __init__(self, **kw: object) -> None:
        raise RuntimeError("No v4l2 loopback device found at /dev/video[0-99] (fake).")


def register_fake_backends() -> None:
    """Register "puppetcam_fake" and "puppetcam_broken" with pyvirtualcam (idempotent)."""
    if BACKENDS.get(FAKE_BACKEND) is not RecordingCameraBackend:
        pyvirtualcam.register_backend(FAKE_BACKEND, RecordingCameraBackend)
    if BACKENDS.get(BROKEN_BACKEND) is not BrokenCameraBackend:
        pyvirtualcam.register_backend(BROKEN_BACKEND, BrokenCameraBackend)


def unregister_fake_backends() -> None:
    """Remove the fakes again, so `backend=None` sees only the real backends."""
    BACKENDS.pop(FAKE_BACKEND, None)
    BACKENDS.pop(BROKEN_BACKEND, None)


class SyntheticSource:
    """A FrameSource of `count` frames whose pixel values encode the frame index.

    `fail_at`: read() raises RuntimeError instead of returning that frame index.
    `read_delay`: seconds each read() takes, like a camera waiting for its next frame.
    """

    def __init__(
        self,
        count: int,
        fps: float = 100.0,
        size: tuple[int, int] = (64, 48),
        fail_at: int | None = None,
        read_delay: float = 0.0,
    ) -> None:
        self.count = count
        self.fps = fps
        self.size = size
        self.name = "synthetic source"
        self.fail_at = fail_at
        self.read_delay = read_delay
        self.closed = False
        self._next = 0

    def read(self) -> Frame | None:
        if self.closed or self._next >= self.count:
            return None
        if self._next == self.fail_at:
            raise RuntimeError(f"synthetic failure at frame {self._next}")
        if self.read_delay:
            time.sleep(self.read_delay)
        index = self._next
        self._next += 1
        image = np.full((self.size[1], self.size[0], 3), index % 256, np.uint8)
        return Frame(image=image, index=index, timestamp=index / self.fps)

    def close(self) -> None:
        self.closed = True

    def __enter__(self) -> SyntheticSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
