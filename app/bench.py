"""`python -m app.bench`: per-stage milliseconds and end-to-end fps on real footage.

Two end-to-end numbers: sequential (one thread does everything, as the live loop does) and
pipelined (decode + track in one thread, retarget + render in another: two cores, two stages).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import queue
import threading
import time

import numpy as np

from . import DEFAULT_AVATAR
from .avatar import load_avatar
from .capture import VideoFileSource
from .composite import Framing
from .pipeline import PipelineSettings, Puppeteer
from .tracking import FaceTracker

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _frames(path: Path, limit: int):
    with VideoFileSource(path) as src:
        out = []
        while len(out) < limit and (f := src.read()) is not None:
            out.append(f)
    return out


def bench(avatar_path: Path, driver: Path, size: int, limit: int, engine: str) -> dict[str, float]:
    avatar = load_avatar(avatar_path, Framing(size, size, "fill"))
    t = time.perf_counter()
    frames = _frames(driver, limit)
    decode_ms = (time.perf_counter() - t) * 1e3 / max(len(frames), 1)
    puppeteer = Puppeteer(avatar, PipelineSettings(framing=Framing(size, size), engine=engine))
    for f in frames[:5]:  # warm-up: first calls allocate
        puppeteer.process(f)
    puppeteer.close()

    puppeteer = Puppeteer(avatar, PipelineSettings(framing=Framing(size, size), engine=engine))
    times: dict[str, list[float]] = {"track": [], "retarget": [], "render": []}
    t0 = time.perf_counter()
    for f in frames:
        r = puppeteer.process(f)
        for k in times:
            times[k].append(r.times[k])
    seq = (time.perf_counter() - t0) / len(frames)
    puppeteer.close()

    # Pipelined: tracking of frame n+1 overlaps rendering of frame n.
    puppeteer = Puppeteer(avatar, PipelineSettings(framing=Framing(size, size), engine=engine))
    tracker = FaceTracker()
    q: queue.Queue = queue.Queue(maxsize=2)

    def produce() -> None:
        for f in frames:
            faces = tracker.detect(f.image)
            q.put((f, faces[0] if faces else None))
        q.put(None)

    t0 = time.perf_counter()
    threading.Thread(target=produce, daemon=True).start()
    while (item := q.get()) is not None:
        f, face = item
        puppeteer.animator.step(f.image, face, f.timestamp)
    pipe = (time.perf_counter() - t0) / len(frames)
    tracker.close()
    puppeteer.close()

    result = {f"{k}_ms": float(np.mean(v)) for k, v in times.items()}
    result.update(decode_ms=decode_ms, sequential_fps=1.0 / seq, pipelined_fps=1.0 / pipe,
                  render_p95_ms=float(np.percentile(times["render"], 95)), engine=puppeteer.engine.name)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__)
    p.add_argument("--avatar", type=Path, default=DEFAULT_AVATAR)
    p.add_argument("--driver", type=Path, default=DATA / "driving" / "lp_d3.mp4")
    p.add_argument("--size", type=int, nargs="+", default=[512])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--engine", default="auto")
    args = p.parse_args(argv)
    if not args.driver.is_file():
        print(f"driving video {args.driver} not found: pass --driver VIDEO")
        return 1
    print(f"avatar {args.avatar.name}, driver {args.driver.name}, {args.frames} frames")
    print(f"{'size':>9} {'engine':>12} {'decode':>7} {'track':>7} {'retarget':>8} {'render':>7} {'p95':>6} "
          f"{'seq fps':>8} {'pipe fps':>8}")
    for size in args.size:
        r = bench(args.avatar, args.driver, size, args.frames, args.engine)
        print(f"{size:>4}x{size:<4} {r['engine']:>12} {r['decode_ms']:7.2f} {r['track_ms']:7.2f} "
              f"{r['retarget_ms']:8.2f} {r['render_ms']:7.2f} {r['render_p95_ms']:6.2f} "
              f"{r['sequential_fps']:8.1f} {r['pipelined_fps']:8.1f}")
    print("milliseconds per frame; render = warp field + full-resolution remap + eyes + mouth")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
