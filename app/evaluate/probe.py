"""Memory and speed of one pipeline in a fresh process: `python -m app.evaluate.probe PORTRAIT CLIP FRAMES`.

Prints one JSON line: frames, fps, the process's peak resident set (getrusage) and the peak of
Python/NumPy allocations (tracemalloc) while the frames run.
"""

from __future__ import annotations

import os

os.environ.setdefault("GLOG_minloglevel", "2")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402


def peak_rss_mib() -> float:
    """This process's peak resident set. VmHWM, not getrusage: Linux carries ru_maxrss over
    from the parent across fork and exec, so a child would report its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv: list[str]) -> int:
    from app.avatar import load_avatar
    from app.capture import VideoFileSource
    from app.pipeline import PipelineSettings, Puppeteer

    from .reenactment import CROSS_FRAMING

    portrait, clip, frames = argv[0], argv[1], int(argv[2])
    avatar = load_avatar(portrait, CROSS_FRAMING)
    source = VideoFileSource(clip, loop=True)
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(framing=CROSS_FRAMING))
    tracemalloc.start()
    t0 = time.perf_counter()
    n = 0
    try:
        for _ in range(frames):
            frame = source.read()
            if frame is None:
                break
            puppeteer.process(frame)
            n += 1
        elapsed = time.perf_counter() - t0
        _, py_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        puppeteer.close()
        source.close()
    print(json.dumps({"frames": n, "fps": n / elapsed if elapsed > 0 else 0.0,
                      "peak_rss_mib": peak_rss_mib(),
                      "python_peak_mib": py_peak / 2**20}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
