"""What is evaluated: the clips and portraits in a data folder, the fixed cross-reenactment pairs,
and the face-centred square crop that brings any clip to 256x256."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
EVAL_SIZE = 256  # the literature's resolution: every image metric is taken at 256x256
CROP_FACE_SCALE = 2.0  # crop side = 2 face sizes (VoxCeleb-like), at most the frame's short side

# Cross-reenactment: (portrait, driving clip). Chosen to cover photos, paintings, black-and-white,
# a three-quarter view and hard cases, each driven by a clip with a different kind of motion.
DEFAULT_PAIRS: tuple[tuple[str, str], ...] = (
    ("grace_hopper.jpg", "lp_d0.mp4"),            # photo; smile, blink
    ("lp_s9.jpg", "lp_d3.mp4"),                   # Mona Lisa; head turns, frown, surprise
    ("lp_s10.jpg", "lp_d10.mp4"),                 # 3/4-turned painting; talking, brows
    ("fr_obama.jpg", "vox_jackie.mp4"),           # photo; VoxCeleb-style talking
    ("lp_s2.jpg", "lp_d6.mp4"),                   # black-and-white photo; grimaces, tongue
    ("astronaut.png", "lp_d9.mp4"),               # photo; cheek puffing, lip pursing
    ("st_art_20.png", "webcam_crop_expressions.mp4"),  # wrinkled painting; eyes shut, mouth open
    ("tpsmm_source.png", "hdtf_aoc.mp4"),         # photo; speech, mild head motion
    ("lp_s7.jpg", "webcam_raw_singing.mp4"),      # 3-D cartoon; raw webcam frame, singing
    ("lp_s4.jpg", "hard_hamilton_cuts.mp4"),      # painting; scene cuts, faces lost and found
)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    """../shared/data beside the checkout, or $PUPPETCAM_DATA (see app.data_dir)."""
    from app.data_dir import default_data_dir as shared_default

    return shared_default()


@dataclass(frozen=True)
class DataSet:
    folder: Path
    clips: tuple[Path, ...]
    portraits: tuple[Path, ...]


def _files(folder: Path, suffixes: tuple[str, ...]) -> tuple[Path, ...]:
    if not folder.is_dir():
        return ()
    return tuple(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes))


def discover(folder: Path) -> DataSet:
    """Clips from FOLDER/driving (or FOLDER itself), portraits from FOLDER/portraits."""
    folder = Path(folder)
    clips = _files(folder / "driving", VIDEO_SUFFIXES) or _files(folder, VIDEO_SUFFIXES)
    portraits = _files(folder / "portraits", IMAGE_SUFFIXES)
    return DataSet(folder, clips, portraits)


def choose_pairs(data: DataSet, limit: int | None = None) -> list[tuple[Path, Path]]:
    """The fixed pairs present in the folder; for a folder holding none of them, portraits and
    clips are paired in sorted order (deterministic), one pair per clip."""
    by_name_p = {p.name: p for p in data.portraits}
    by_name_c = {c.name: c for c in data.clips}
    pairs = [(by_name_p[p], by_name_c[c]) for p, c in DEFAULT_PAIRS if p in by_name_p and c in by_name_c]
    if not pairs and data.portraits and data.clips:
        pairs = [(data.portraits[i % len(data.portraits)], c) for i, c in enumerate(data.clips)]
    return pairs[:limit] if limit else pairs


@dataclass(frozen=True)
class SquareCrop:
    """A fixed square crop of a frame, resized to size x size."""

    x0: int
    y0: int
    side: int
    size: int = EVAL_SIZE

    @staticmethod
    def around(frame_size: tuple[int, int], centre: np.ndarray, face: float, size: int = EVAL_SIZE,
               face_scale: float = CROP_FACE_SCALE) -> "SquareCrop":
        w, h = frame_size
        side = int(round(min(min(w, h), face_scale * face)))
        x0 = int(round(np.clip(centre[0] - side / 2, 0, w - side)))
        y0 = int(round(np.clip(centre[1] - side / 2, 0, h - side)))
        return SquareCrop(x0, y0, side, size)

    @property
    def scale(self) -> float:
        return self.size / self.side

    def apply(self, image: np.ndarray) -> np.ndarray:
        patch = image[self.y0:self.y0 + self.side, self.x0:self.x0 + self.side]
        interp = cv2.INTER_AREA if self.side > self.size else cv2.INTER_CUBIC
        return cv2.resize(patch, (self.size, self.size), interpolation=interp)

    def points(self, pts: np.ndarray) -> np.ndarray:
        """Landmarks (x, y, z) from frame pixels to crop pixels."""
        out = np.asarray(pts, np.float64).copy()
        out[:, 0] = (out[:, 0] - self.x0) * self.scale
        out[:, 1] = (out[:, 1] - self.y0) * self.scale
        if out.shape[1] > 2:
            out[:, 2] *= self.scale
        return out
