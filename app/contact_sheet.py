"""`python -m app.contact_sheet`: driver | avatar pairs at a few moments per clip, as one image.

Made for docs/: a photo, a painting, a statue and a cartoon, each driven by a different clip;
`--group` makes the several-faces sheet instead: a photo of two people driven by two real
clips side by side.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from .avatar import load_avatar
from .capture import VideoFileSource
from .framing import Framing, frame_to_output
from .data_dir import default_data_dir, missing_data_message
from .pipeline import PipelineSettings, Puppeteer

PAIRS = (  # (avatar, kind, driving clip)
    ("portraits/grace_hopper.jpg", "photo", "driving/webcam_crop_expressions.mp4"),
    ("portraits/lp_s9.jpg", "painting", "driving/lp_d3.mp4"),
    ("portraits/lp_s6.jpg", "statue", "driving/lp_d0.mp4"),
    ("portraits/lp_s7.jpg", "cartoon", "driving/lp_d10.mp4"),
)


def sheet_rows(avatar_path: Path, clip: Path, moments: int = 4, tile: int = 192) -> np.ndarray:
    avatar = load_avatar(avatar_path, Framing(512, 512, "fill"))
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings())
    src = VideoFileSource(clip)
    total = src.frame_count
    picks = set(np.linspace(total * 0.15, total * 0.9, moments).astype(int))
    tiles = []
    while (f := src.read()) is not None:
        r = puppeteer.process(f)
        if f.index in picks:
            d = frame_to_output(f.image, Framing(tile, tile, "fill"),
                                tuple(r.faces[0].center) if r.faces[0] is not None else None)
            tiles.append(np.hstack([d, cv2.resize(r.image, (tile, tile), interpolation=cv2.INTER_AREA)]))
    src.close()
    puppeteer.close()
    return np.hstack(tiles)


GROUP = ("portraits/fr_two_people.jpg", ("driving/webcam_crop_expressions.mp4", "driving/lp_d10.mp4"))


def group_sheet(data: Path, moments: int = 3, width: int = 512) -> np.ndarray:
    """Rows of (two-person driver frame | group portrait output) at a few moments."""
    from .capture import Frame
    from .cast import load_cast
    from .multiclip import tile_people

    portrait, clips = GROUP
    cast = load_cast([data / portrait], faces=2)
    frames = tile_people([data / c for c in clips], limit=240, height=360)
    group = Puppeteer(cast, PipelineSettings())
    picks = set(np.linspace(len(frames) * 0.2, len(frames) - 1, moments).astype(int))
    rows = []
    for i, image in enumerate(frames):
        r = group.process(Frame(image, i, i / 30.0))
        if i in picks:
            d = cv2.resize(image, (width, round(image.shape[0] * width / image.shape[1])), interpolation=cv2.INTER_AREA)
            o = cv2.resize(r.image, (round(r.image.shape[1] * d.shape[0] / r.image.shape[0]), d.shape[0]),
                           interpolation=cv2.INTER_AREA)
            rows.append(np.hstack([d, o]))
    group.close()
    return np.vstack(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m app.contact_sheet", description=__doc__)
    p.add_argument("--data", type=Path, default=None,
                   help="real footage folder (default: ../shared/data beside the checkout, or $PUPPETCAM_DATA)")
    p.add_argument("--out", type=Path, default=None, help="default docs/contact_sheet.jpg (docs/group_sheet.jpg)")
    p.add_argument("--group", action="store_true", help="the several-faces sheet")
    args = p.parse_args(argv)
    args.data = args.data or default_data_dir()
    needed = [GROUP[0], *GROUP[1]] if args.group else [name for pair in PAIRS for name in (pair[0], pair[2])]
    absent = [args.data / n for n in needed if not (args.data / n).is_file()]
    if absent:
        print(missing_data_message("python -m app.contact_sheet", absent[0]), file=sys.stderr)
        return 2
    if args.group:
        out = args.out or Path("docs/group_sheet.jpg")
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out), group_sheet(args.data), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"wrote {out}")
        return 0
    args.out = args.out or Path("docs/contact_sheet.jpg")
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
