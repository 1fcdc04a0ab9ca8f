"""The one terminal line a live session keeps up to date: fps, latency, face, virtual camera."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass
class LiveStatus:
    """What the status line shows; `text()` is the line itself."""

    fps: float = 0.0
    latency_ms: float = 0.0
    face: bool | None = None  # None: no frame processed yet
    virtual_camera: str = "off"
    recorded_s: float | None = None  # None: not recording

    def text(self) -> str:
        face = "-" if self.face is None else ("yes" if self.face else "NO")
        parts = [f"{self.fps:5.1f} fps", f"latency {self.latency_ms:4.0f} ms", f"face {face}",
                 f"virtual camera {self.virtual_camera}"]
        if self.recorded_s is not None:
            parts.append(f"recording {int(self.recorded_s // 60):02d}:{int(self.recorded_s % 60):02d}")
        return "live: " + " | ".join(parts)


def face_found(result: Any) -> bool:
    """Whether a frame result (one face or a group) had a driver face."""
    if getattr(result, "face", None) is not None:
        return True
    return any(f is not None for f in getattr(result, "faces", None) or ())


class StatusLine:
    """On a terminal, the line is redrawn in place (carriage return) a few times a second; when
    the output is a file or a pipe, a full line every `log_every_s` seconds, so logs stay short."""

    def __init__(self, stream: TextIO, every_s: float = 0.25, log_every_s: float = 2.0) -> None:
        self.stream = stream
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.every_s = every_s if self.tty else log_every_s
        self._last = 0.0
        self._drawn = False

    def update(self, status: LiveStatus, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.every_s:
            return
        self._last = now
        line = status.text()
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns
            self.stream.write("\r" + line[: width - 1].ljust(width - 1))
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def end(self) -> None:
        """Move off the status line so later messages start on a fresh line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
