"""Sinks by name, pyvirtualcam-style: a sink class registers itself with what it needs, and
the command line opens it with `--sink NAME`.

    @register_sink("memory", needs=("size",))
    class MemorySink: ...

A factory is called with keyword arguments for what it `needs`, taken from `SinkContext`.
The built-in sinks (virtual camera, preview window, video file) are registered at the bottom;
the CLI's --virtual-cam, --preview and --record open them by name like any other.

`SINKS` is module-level by necessity: a sink registers itself when its module is imported,
before any object exists to hold the registry.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
import time
from typing import Callable

from .errors import PuppetCamError
from .sinks import FrameSink, PreviewSink, VideoFileSink, VirtualCameraSink


@dataclass(frozen=True)
class SinkContext:
    """What a sink may need to open: the output's size and rate, and a path when given."""

    size: tuple[int, int]
    fps: float
    path: Path | None = None


@dataclass(frozen=True)
class SinkEntry:
    name: str
    factory: Callable[..., FrameSink]
    needs: tuple[str, ...]
    help: str = ""


class SinkRegistry:
    def __init__(self) -> None:
        self._entries: dict[str, SinkEntry] = {}

    def register(self, name: str, factory: Callable[..., FrameSink], needs: tuple[str, ...] = (),
                 help: str = "") -> None:
        known = {f.name for f in fields(SinkContext)}
        unknown = set(needs) - known
        if unknown:
            raise ValueError(f"sink {name!r} needs {sorted(unknown)}; a sink can need {sorted(known)}")
        self._entries[name] = SinkEntry(name, factory, tuple(needs), help)

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def open(self, name: str, context: SinkContext) -> FrameSink:
        entry = self._entries.get(name)
        if entry is None:
            raise PuppetCamError(f"No sink is called {name!r}.", f"Use one of: {', '.join(self.names()) or 'none'}.")
        missing = [k for k in entry.needs if getattr(context, k) is None]
        if missing:
            raise PuppetCamError(f"The sink {name!r} needs {' and '.join(missing)}.", "Use --record OUT.mp4 for a file.")
        return entry.factory(**{k: getattr(context, k) for k in entry.needs})


SINKS = SinkRegistry()


def register_sink(name: str, needs: tuple[str, ...] = (), help: str = "") -> Callable[[type], type]:
    """Class decorator: `cls(**needs)` becomes the sink `name`."""

    def wrap(cls: type) -> type:
        SINKS.register(name, cls, needs, help)
        return cls

    return wrap


# ------------------------------------------------------------ the built-in sinks

def _virtual_camera(size: tuple[int, int], fps: float) -> FrameSink:
    # The output is already as the user wants to see it: mirroring is the capture's business.
    return VirtualCameraSink(size[0], size[1], fps, mirror=False)


def _video_file(path: Path, fps: float, size: tuple[int, int]) -> FrameSink:
    # Stamped with the wall clock: the file plays as long as the session ran, whatever rate
    # the pipeline or the driver reached.
    return VideoFileSink(path, fps, size, clock=time.monotonic)


SINKS.register("virtual-camera", _virtual_camera, ("size", "fps"),
               "a virtual camera (v4l2loopback, OBS Virtual Camera) via pyvirtualcam")
SINKS.register("preview", PreviewSink, (), "a preview window; keys: c calibrate, q or Esc quit")
SINKS.register("file", _video_file, ("path", "fps", "size"), "an .mp4 file, timed as it was shown")
