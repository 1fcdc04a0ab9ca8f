"""Several people in one camera, made from real single-person clips placed side by side.

There is no multi-person webcam footage to test and benchmark on, so it is built: each clip
is scaled to one height and the frames are laid next to each other (as two people sitting
side by side are seen by one camera).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .capture import VideoFileSource


def read_clip(path: Path, limit: int, height: int) -> list[np.ndarray]:
    frames = []
    with VideoFileSource(path) as src:
        while len(frames) < limit and (f := src.read()) is not None:
            h, w = f.image.shape[:2]
            frames.append(cv2.resize(f.image, (round(w * height / h), height), interpolation=cv2.INTER_AREA))
    return frames


def side_by_side(clips: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Frame k is frame k of every clip, left to right; as long as the shortest clip."""
    return [np.hstack(frames) for frames in zip(*clips)]


def in_grid(clips: Sequence[Sequence[np.ndarray]], columns: int) -> list[np.ndarray]:
    """Rows of `columns` clips side by side, stacked (a face detector sees small faces in a very
    wide frame: four people in a row would be too small for MediaPipe's short-range model)."""
    rows = [side_by_side(clips[i:i + columns]) for i in range(0, len(clips), columns)]
    width = max(r[0].shape[1] for r in rows)
    padded = [[np.pad(f, ((0, 0), (0, width - f.shape[1]), (0, 0))) for f in r] for r in rows]
    return [np.vstack(frames) for frames in zip(*padded)]


def tile_people(paths: Sequence[Path], limit: int = 150, height: int = 360, columns: int | None = None) -> list[np.ndarray]:
    clips = [read_clip(p, limit, height) for p in paths]
    return in_grid(clips, columns or len(clips))


def main(argv: list[str] | None = None) -> int:
    """`python -m app.multiclip A.mp4 B.mp4 [...] --out two.mp4`: real clips side by side."""
    import argparse

    from .sinks import VideoFileSink

    parser = argparse.ArgumentParser(prog="python -m app.multiclip", description=main.__doc__)
    parser.add_argument("clips", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--columns", type=int, default=None, help="clips per row (default: all in one row)")
    args = parser.parse_args(argv)
    with VideoFileSource(args.clips[0]) as first:
        fps = first.fps
    frames = tile_people(args.clips, args.frames, args.height, args.columns)
    sink = VideoFileSink(args.out, fps, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        sink.write(f)
    sink.close()
    print(f"wrote {len(frames)} frames of {frames[0].shape[1]}x{frames[0].shape[0]} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
