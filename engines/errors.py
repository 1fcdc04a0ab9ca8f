"""Errors of engine selection, shown to the user as they are.

`PuppetCamError`, the base of every error the app shows as it is, lives here rather than in
`app.errors` (which re-exports it) so that the engines need nothing from the app.
"""

from __future__ import annotations


class PuppetCamError(Exception):
    """An error shown to the user as it is; `str(err)` is the whole message."""

    def __init__(self, what: str, what_to_do: str) -> None:
        self.what = what
        self.what_to_do = what_to_do
        super().__init__(f"{what} {what_to_do}".strip())


class EngineUnavailable(PuppetCamError):
    """A backend that was asked for by name cannot run here; says why and what to do."""

    def __init__(self, engine: str, why: str, what_to_do: str = "") -> None:
        self.engine = engine
        self.why = why
        todo = what_to_do or "Use --engine auto to run on the fastest backend available."
        super().__init__(f"Engine {engine!r} is not available: {why}.", todo)


class UnknownEngine(PuppetCamError, ValueError):
    """A backend name that does not exist."""
