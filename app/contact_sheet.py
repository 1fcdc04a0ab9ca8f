"""`python -m app.contact_sheet`: driver | avatar pairs at a few moments per clip, as one image.

Made for docs/: a photo, a painting, a statue and a cartoon, each driven by a different clip.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from .avatar import load_avatar
from .capture import VideoFileSource
from .composite import Framing, frame_to_output
from .pipeline import PipelineSettings, Puppeteer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAIRS = (  # (avatar, kind, driving clip)
    ("portraits/grace_hopper.jpg", "photo", "driving/webcam_crop_expressions.mp4"),
    ("portraits/lp_s9.jpg", "painting", "driving/lp_d3.mp4"),
    ("portraits/lp_s6.jpg", "statue", "driving/lp_d0.mp4"),
    ("portraits/lp_s7.jpg", "cartoon", "driving/lp_d10.mp4"),
)


def sheet_rows(avatar_path: Path, clip: Path, moments: int = 4, tile: int = 192) -> np.ndarray:
    avatar = load_avatar(avatar_path, Framing(512, 512, "fill"))
    puppeteer = Puppeteer(avatar, PipelineSettings())
    src = VideoFileSource(clip)
    total = src.frame_count
    picks = set(np.linspace(total * 0.15, total * 0.9, moments).astype(int))
    tiles = []
    while (f := src.read()) is not None:
        r = puppeteer.process(f)
        if f.index in picks:
            d = frame_to_output(f.image, Framing(tile, tile, "fill"),
                                tuple(r.face.center) if r.face is not None else None)
            tiles.append(np.hstack([d, cv2.resize(r.image, (tile, tile), interpolation=cv2.INTER_AREA)]))
    src.close()
    puppeteer.close()
    return np.hstack(tiles)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.contact_sheet", description=__doc__)
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--out", type=Path, default=Path("docs/contact_sheet.jpg"))
    args = p.parse_args(argv)
    rows = []
    for avatar, kind, clip in PAIRS:
        row = sheet_rows(args.data / avatar, args.data / clip)
        label = f"{kind}: {Path(avatar).name} driven by {Path(clip).name}"
        bar = np.full((28, row.shape[1], 3), 255, np.uint8)
        cv2.putText(bar, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
        rows.append(np.vstack([bar, row]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), np.vstack(rows), [cv2.IMWRITE_JPEG_QUALITY, 85])
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
