"""Ctrl-C and SIGTERM turned into an orderly stop, so that the file being written still plays.

Why not just catch KeyboardInterrupt: Python raises it wherever the main thread happens to be,
possibly between encoding a frame and muxing it, and SIGTERM by default kills the process
without running any cleanup at all. Here both signals only set a flag while a file is being
written (`deferred`); the loop checks `requested` between frames and stops there. Before
anything is written (avatar loading, model start-up) a signal stops at once.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Callable

HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopRequested(BaseException):
    """Raised to unwind the main thread on Ctrl-C / SIGTERM. A BaseException, like
    KeyboardInterrupt, so that `except Exception` blocks do not swallow it."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        """The shell's convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
        return 128 + self.signum


class StopSignals:
    """Installs SIGINT/SIGTERM handlers for a `with` block (main thread only; elsewhere a no-op).

    `deferred=False`: a signal raises StopRequested at once. `deferred=True`: it is only recorded
    in `requested`, for the loop to act on between frames. A second signal while deferred is
    ignored, so the file can be finished even when someone presses Ctrl-C twice.
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self.deferred = False
        self._previous: dict[int, Callable | int | None] = {}
        self._event = threading.Event()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested is None:
            self.requested = signum
            self._event.set()
        if not self.deferred:
            raise StopRequested(signum)

    def check(self) -> None:
        """Raise StopRequested if a signal has arrived (call between frames)."""
        if self.requested is not None:
            raise StopRequested(self.requested)

    def wait(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early on a signal; True if one arrived."""
        return self._event.wait(timeout)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in HANDLED:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
        self._previous.clear()
