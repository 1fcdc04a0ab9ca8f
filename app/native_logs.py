"""Keeps MediaPipe's and TensorFlow Lite's C++ start-up log lines off the user's terminal.

Why at the file-descriptor level: those lines are written by C++ (absl logging, TFLite's own
logger) straight to fd 2, from worker threads, and since mediapipe 0.10 neither GLOG_minloglevel
nor TF_CPP_MIN_LOG_LEVEL silences them ("W0000 ... inference_feedback_manager.cc:114] Feedback
manager requires ..."). So fd 2 is pointed at a pipe and a thread forwards everything except
those lines to the real stderr. Partial lines (a progress bar's "\\r...") are forwarded at once
unless they could be the start of such a log line. Used by `python -m app` unless --verbose.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWE]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\] "
    rb"|INFO: Created TensorFlow Lite"
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called)"
)
_PREFIXES = (b"I0", b"W0", b"E0", b"INFO: ", b"WARNING: All")


def _could_become_log_line(segment: bytes) -> bool:
    return any(p.startswith(segment) or segment.startswith(p) for p in _PREFIXES) if segment else False


class NativeLogFilter:
    """fd 2 through a filtering pipe until `close()` (registered with atexit by `install`)."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self._real = os.dup(2)
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._read = read_end
        self._thread = threading.Thread(target=self._forward, name="native-log-filter", daemon=True)
        self._thread.start()

    def _forward(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                break
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not NATIVE_LOG_LINE.match(line))
            if pending and not _could_become_log_line(pending):
                out, pending = out + pending, b""
            if out:
                os.write(self._real, out)
        if pending and not NATIVE_LOG_LINE.match(pending):
            os.write(self._real, pending)

    def close(self) -> None:
        """Restore fd 2 and forward what is still in the pipe."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._real, 2)  # closes the pipe's last write end: the thread sees EOF
        self._thread.join(timeout=2.0)
        os.close(self._read)


def install() -> NativeLogFilter | None:
    """Start filtering (where fd 2 exists); undone at interpreter exit."""
    try:
        os.fstat(2)
    except OSError:
        return None
    flt = NativeLogFilter()
    atexit.register(flt.close)
    return flt


class native_stderr_silenced:
    """Mute fd 2 altogether while a block runs (the tracker starting inside a tool whose own
    output matters, e.g. a benchmark table); Python exceptions still propagate and print after
    it is restored."""

    def __enter__(self) -> "native_stderr_silenced":
        try:
            sys.stderr.flush()
            self._saved: int | None = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:
            self._saved = None
        return self

    def __exit__(self, *exc) -> None:
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
