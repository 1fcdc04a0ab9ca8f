"""`python -m app.bench`: per-stage milliseconds and end-to-end fps on real footage.

Two end-to-end numbers: sequential (one thread does everything, as the live loop does) and
pipelined (decode + track in one thread, retarget + render in another: two cores, two stages).
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
import queue
import sys
import threading
import time
from typing import Iterator

import numpy as np

from . import DEFAULT_AVATAR
from .avatar import load_avatar
from .capture import Frame, VideoFileSource
from .cast import layout_cells, single_cast, tiled_cast
from .data_dir import default_data_dir, missing_data_message
from .framing import Framing
from .multiclip import tile_people
from .pipeline import PipelineSettings, Puppeteer



def _frames(path: Path, limit: int):
    with VideoFileSource(path) as src:
        out = []
        while len(out) < limit and (f := src.read()) is not None:
            out.append(f)
    return out


def bench(avatar_path: Path, driver: Path, size: int, limit: int, engine: str) -> dict[str, float]:
    cast = single_cast(load_avatar(avatar_path, Framing(size, size, "fill")))
    t = time.perf_counter()
    frames = _frames(driver, limit)
    decode_ms = (time.perf_counter() - t) * 1e3 / max(len(frames), 1)
    settings = PipelineSettings(framing=Framing(size, size), engine=engine)
    with _closing(Puppeteer(cast, settings)) as puppeteer:
        for f in frames[:5]:  # warm-up: first calls allocate
            puppeteer.process(f)

    times: dict[str, list[float]] = {"track": [], "retarget": [], "render": []}
    with _closing(Puppeteer(cast, settings)) as puppeteer:
        t0 = time.perf_counter()
        passes: dict[str, list[float]] = {}
        for f in frames:
            r = puppeteer.process(f)
            for k in times:
                times[k].append(r.times[k])
            for k, v in getattr(puppeteer.animators[0].renderer, "pass_ms", {}).items():
                passes.setdefault(k, []).append(v)
        seq = (time.perf_counter() - t0) / len(frames)

    # Pipelined: tracking of frame n+1 (in a second thread) overlaps rendering of frame n.
    with _closing(Puppeteer(cast, settings)) as puppeteer:
        q: queue.Queue = queue.Queue(maxsize=2)

        def produce() -> None:
            for f in frames:
                q.put(puppeteer.track(f))
            q.put(None)

        t0 = time.perf_counter()
        threading.Thread(target=produce, daemon=True).start()
        while (tracked := q.get()) is not None:
            puppeteer.process(tracked)
        pipe = (time.perf_counter() - t0) / len(frames)
        name = puppeteer.engine.name

    result = {f"{k}_ms": float(np.mean(v)) for k, v in times.items()}
    result.update(decode_ms=decode_ms, sequential_fps=1.0 / seq, pipelined_fps=1.0 / pipe,
                  render_p95_ms=float(np.percentile(times["render"], 95)), engine=name,
                  passes={k: (float(np.mean(v)), float(np.percentile(v, 95))) for k, v in passes.items()})
    return result


@contextmanager
def _closing(puppeteer: Puppeteer) -> Iterator[Puppeteer]:
    try:
        yield puppeteer
    finally:
        puppeteer.close()


FACE_DRIVERS = ("lp_d3.mp4", "lp_d10.mp4", "lp_d6.mp4", "webcam_crop_expressions.mp4")


def bench_faces(avatar_path: Path, driving: Path, counts: list[int], limit: int, engine: str,
                output: int | None = None) -> list[dict]:
    """Several faces: N tiles of the avatar, driven by N real clips tiled into one camera frame.
    Tiles are 512x512 each, or (with `output`) share one output of output x output pixels.

    `model_unbatched_ms` runs the same displacements through the model one face at a time, in
    the same loop, so the batching win is a ratio measured under the same load.
    """
    rows = []
    for n in counts:
        layout = "grid" if n > 2 else "row"
        cells = layout_cells(n, layout)
        cols, nrows = max(c for c, _ in cells) + 1, max(r for _, r in cells) + 1
        tile = (512, 512) if output is None else (output // cols, output // nrows)
        avatar = load_avatar(avatar_path, Framing(tile[0], tile[1], "fill"))
        frames = tile_people([driving / FACE_DRIVERS[k % len(FACE_DRIVERS)] for k in range(n)], limit + 5,
                             height=360, columns=2 if n > 2 else n)
        cast = tiled_cast([avatar] * n, layout)
        group = Puppeteer(cast, PipelineSettings(engine=engine))
        times: dict[str, list[float]] = {"track": [], "retarget": [], "model": [], "render": [], "total": [],
                                         "model_unbatched": []}
        found = 0
        for i, image in enumerate(frames):
            t0 = time.perf_counter()
            r = group.process(Frame(image, i, i / 30.0))
            total = (time.perf_counter() - t0) * 1e3
            disp = [a.renderer.displacement(p)[None] for a, p in zip(group.animators, r.posed)]
            t1 = time.perf_counter()
            for a, d in zip(group.animators, disp):
                group.engine(*a.renderer.rig_tensors, d)
            unbatched = (time.perf_counter() - t1) * 1e3
            if i < 5:
                continue  # warm-up: first calls allocate
            found += sum(f is not None for f in r.faces)
            for k in ("track", "retarget", "model", "render"):
                times[k].append(r.times[k])
            times["total"].append(total)
            times["model_unbatched"].append(unbatched)
        group.close()
        row = {f"{k}_ms": float(np.mean(v)) for k, v in times.items()}
        row.update(faces=n, output=cast.size, driven=found / (n * max(len(times["total"]), 1)), engine=group.engine.name)
        rows.append(row)
    return rows


def _print_faces(rows: list[dict]) -> None:
    print(f"{'faces':>5} {'output':>10} {'driven':>6} {'track':>7} {'retarget':>8} {'model':>7} {'model x1':>8} "
          f"{'render':>7} {'total':>7} {'fps':>6} {'total/1 face':>12}")
    base = rows[0]["total_ms"]
    for r in rows:
        print(f"{r['faces']:>5} {r['output'][0]:>5}x{r['output'][1]:<4} {r['driven']:6.0%} {r['track_ms']:7.2f} "
              f"{r['retarget_ms']:8.2f} {r['model_ms']:7.2f} {r['model_unbatched_ms']:8.2f} {r['render_ms']:7.2f} "
              f"{r['total_ms']:7.2f} {1e3 / r['total_ms']:6.1f} {r['total_ms'] / base:12.2f}")
    print("milliseconds per frame; model = the warp model for every face in one batch, model x1 = the same "
          "faces one call each; render includes model")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__)
    p.add_argument("--avatar", type=Path, default=DEFAULT_AVATAR)
    p.add_argument("--driver", type=Path, default=None,
                   help="driving clip (default: driving/lp_d3.mp4 in the footage folder, ../shared/data or $PUPPETCAM_DATA)")
    p.add_argument("--size", type=int, nargs="+", default=[512])
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--engine", default="auto")
    p.add_argument("--faces", type=int, nargs="+", default=None,
                   help="instead: several faces at once, e.g. --faces 1 2 4 (tiles of the avatar, real clips tiled)")
    p.add_argument("--faces-output", type=int, default=None, metavar="PIXELS",
                   help="with --faces: all faces share one PIXELSxPIXELS output (default: 512x512 per face)")
    args = p.parse_args(argv)
    if args.driver is None:
        args.driver = default_data_dir() / "driving" / "lp_d3.mp4"
        if not args.driver.is_file():
            print(missing_data_message("python -m app.bench", args.driver), file=sys.stderr)
            return 2
    if args.faces:
        driving = args.driver.parent
        missing = [n for n in FACE_DRIVERS if not (driving / n).is_file()]
        if missing:
            print(f"driving clips {', '.join(missing)} not found in {driving}: pass --driver VIDEO from that folder")
            return 1
        tiles = "512x512 tiles" if args.faces_output is None else f"tiles of one {args.faces_output}px output"
        print(f"avatar {args.avatar.name} in {tiles}, drivers {', '.join(FACE_DRIVERS)} tiled, {args.frames} frames")
        _print_faces(bench_faces(args.avatar, driving, args.faces, args.frames, args.engine, args.faces_output))
        return 0
    if not args.driver.is_file():
        print(f"python -m app.bench: driving video {args.driver} not found: pass --driver VIDEO", file=sys.stderr)
        return 1
    print(f"avatar {args.avatar.name}, driver {args.driver.name}, {args.frames} frames")
    print(f"{'size':>9} {'engine':>12} {'decode':>7} {'track':>7} {'retarget':>8} {'render':>7} {'p95':>6} "
          f"{'seq fps':>8} {'pipe fps':>8}")
    for size in args.size:
        r = bench(args.avatar, args.driver, size, args.frames, args.engine)
        print(f"{size:>4}x{size:<4} {r['engine']:>12} {r['decode_ms']:7.2f} {r['track_ms']:7.2f} "
              f"{r['retarget_ms']:8.2f} {r['render_ms']:7.2f} {r['render_p95_ms']:6.2f} "
              f"{r['sequential_fps']:8.1f} {r['pipelined_fps']:8.1f}")
        if r["passes"]:
            print("          render's passes, mean/p95: " + ", ".join(
                f"{k} {m:.2f}/{p:.2f}" for k, (m, p) in r["passes"].items()))
    print("milliseconds per frame; render = warp field + full-resolution remap + eyes + mouth; its passes:\n"
          "maps = the field upsampled to full resolution, lids/lips = pixel-resolution lids and inner lips, remap, gaze = iris\n"
          "layer, lashes = shut-eye lash line, mouth = interior (the rest of render is pasting)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
