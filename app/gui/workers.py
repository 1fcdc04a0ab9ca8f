"""What the controller runs off the GUI thread: the jobs of its worker pools, and the video
sources it opens there."""

from __future__ import annotations

from dataclasses import dataclass
import os
from pathlib import Path
import threading
from typing import Callable

from PySide6.QtCore import QRunnable

from app.capture import CameraSource, FrameSource, VideoFileSource

BACKGROUND_NICENESS = 5  # about a third of the CPU share of the render thread under contention


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "camera" or "file"
    camera: int = 0
    path: str = ""

    @property
    def label(self) -> str:
        return f"Camera {self.camera}" if self.kind == "camera" else Path(self.path).name

    def open(self) -> FrameSource:
        if self.kind == "camera":
            return CameraSource(self.camera)
        return VideoFileSource(self.path, loop=True)


class _Job(QRunnable):
    def __init__(self, fn: Callable[[], None], nice: bool) -> None:
        super().__init__()
        self.fn = fn
        self.nice = nice
        self.setAutoDelete(True)

    _niced = threading.local()

    def run(self) -> None:
        if self.nice and not getattr(self._niced, "done", False):
            self._niced.done = True
            try:  # Linux: niceness is per thread; raising it needs no privilege
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)
            except (AttributeError, OSError):
                pass
        self.fn()
