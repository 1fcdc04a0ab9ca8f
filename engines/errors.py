"""Errors of engine selection, shown to the user as they are (see app.errors.PuppetCamError)."""

from __future__ import annotations

from app.errors import PuppetCamError


class EngineUnavailable(PuppetCamError):
    """A backend that was asked for by name cannot run here; says why and what to do."""

    def __init__(self, engine: str, why: str, what_to_do: str = "") -> None:
        self.engine = engine
        self.why = why
        todo = what_to_do or "Use --engine auto to run on the fastest backend available."
        super().__init__(f"Engine {engine!r} is not available: {why}.", todo)


class UnknownEngine(PuppetCamError, ValueError):
    """A backend name that does not exist."""
