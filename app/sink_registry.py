"""Sinks by name, pyvirtualcam-style: a sink class registers itself with what it needs, and
the command line opens it with `--sink NAME`.

    @register_sink("memory", needs=("size",))
    class MemorySink: ...

A factory is called with keyword arguments for what it `needs`, taken from `SinkContext`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable

from .errors import PuppetCamError
from .sinks import FrameSink


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
        return entry.factory(**{k: getattr(context, k) for k in entry.needs})


SINKS = SinkRegistry()


def register_sink(name: str, needs: tuple[str, ...] = (), help: str = "") -> Callable[[type], type]:
    """Class decorator: `cls(**needs)` becomes the sink `name`."""

    def wrap(cls: type) -> type:
        SINKS.register(name, cls, needs, help)
        return cls

    return wrap
