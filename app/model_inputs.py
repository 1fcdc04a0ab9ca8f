"""Real inputs for the per-frame models: a portrait driven by real footage through the app.

The WarpField's inputs come out of the real pipeline (track -> stabilise/retarget -> rig), so
the parity checks and the benchmark see the displacements the app actually produces, not noise.
This lives in the app, not in export/: making them takes the tracker, the Animator and the rig,
and export sits below the app. Export gets them as data instead:

    python -m app.model_inputs --out FILE.npz [--frames 30] [--grid 96]   # record
    python -m export --inputs FILE.npz                                     # ORT vs torch on them
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
import pickle
import sys

import numpy as np

from models.warp_field import DEFAULT_GRID_SIZE

from .data_dir import default_data_dir

DEFAULT_PORTRAIT = "portraits/lp_s9.jpg"
DEFAULT_DRIVER = "driving/lp_d3.mp4"


@dataclass
class DrivenSequence:
    """A portrait animated by `len(posed)` frames of a driving video."""

    avatar: object  # app.avatar.Avatar
    posed: list  # app.retarget.PosedFace per frame
    mouths: list  # app.mouth.MouthSource | None per frame
    displacements: np.ndarray  # (N, V, 2) float32, the WarpField's per-frame input
    source: str  # where the motion came from, for messages

    @property
    def tri_index(self) -> np.ndarray:
        return self.avatar.rig.tri_index[None]

    @property
    def tri_weight(self) -> np.ndarray:
        return self.avatar.rig.tri_weight[None]

    def warp_field_inputs(self) -> dict[str, np.ndarray]:
        """The WarpField's inputs by name, as export/recorded.py keeps them."""
        return {"tri_index": self.tri_index, "tri_weight": self.tri_weight, "displacement": self.displacements}


def footage_available(data_dir: Path | None = None) -> bool:
    d = Path(data_dir) if data_dir is not None else default_data_dir()
    return (d / DEFAULT_PORTRAIT).is_file() and (d / DEFAULT_DRIVER).is_file()


def drive_sizes(sizes: tuple[int, ...] = (512,), frames: int = 30, grid_size: int | None = None,
                data_dir: Path | None = None, portrait: str = DEFAULT_PORTRAIT,
                driver: str = DEFAULT_DRIVER) -> dict[int, DrivenSequence]:
    """Animate `portrait`, framed at each output size, with the first `frames` frames of `driver`
    (both under data_dir) through the app's own Animator; the driver is tracked once and its
    frames (MouthSource) are shared between sizes."""
    import cv2

    from engines.torch_engine import TorchFieldEngine

    from .animator import Animator
    from .avatar import Framing, load_avatar, skin_colour
    from .mouth import MouthSource
    from .tracking import FaceTracker

    d = Path(data_dir) if data_dir is not None else default_data_dir()
    g = grid_size or DEFAULT_GRID_SIZE
    avatars = {s: load_avatar(d / portrait, Framing(s, s), grid_size=g) for s in sizes}
    engine = TorchFieldEngine(g)
    animators = {s: Animator(a, engine) for s, a in avatars.items()}
    cap = cv2.VideoCapture(str(d / driver))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    posed: dict[int, list] = {s: [] for s in sizes}
    disps: dict[int, list] = {s: [] for s in sizes}
    mouths: list = []
    try:
        with FaceTracker() as tracker:
            for i in range(frames):
                ok, frame = cap.read()
                if not ok:
                    break
                found = tracker.detect(frame)
                face = found[0] if found else None
                mouths.append(MouthSource(frame, face.landmarks, skin_colour(frame, face.landmarks))
                              if face is not None else None)
                for s, animator in animators.items():
                    p = animator.step(frame, face, i / fps).posed
                    posed[s].append(p)
                    disps[s].append(avatars[s].rig.displacement(p.landmarks, lambda ring, p=p: p.head.apply(ring)))
    finally:
        cap.release()
    if not mouths:
        raise RuntimeError(f"no frame could be read from {d / driver}")
    return {s: DrivenSequence(avatars[s], posed[s], list(mouths), np.stack(disps[s]).astype(np.float32),
                              f"{portrait} driven by {len(mouths)} frames of {driver}") for s in sizes}


def drive(frames: int = 30, size: int = 512, grid_size: int | None = None, data_dir: Path | None = None,
          portrait: str = DEFAULT_PORTRAIT, driver: str = DEFAULT_DRIVER) -> DrivenSequence:
    """One output size of drive_sizes."""
    return drive_sizes((size,), frames, grid_size, data_dir, portrait, driver)[size]


def synthetic(frames: int = 30, grid_size: int | None = None, size: int = 512) -> DrivenSequence:
    """Without the footage folder: the bundled avatar with a smooth made-up head motion."""
    from . import DEFAULT_AVATAR
    from .avatar import Framing, load_avatar
    from .pose import Similarity
    from .retarget import PosedFace

    avatar = load_avatar(DEFAULT_AVATAR, Framing(size, size), grid_size=grid_size or DEFAULT_GRID_SIZE)
    pts = avatar.face.landmarks
    k = size / 512.0
    centre = pts[:, :2].mean(axis=0)
    posed, disps = [], []
    for i in range(frames):
        a = 0.15 * np.sin(i / 5.0)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        head = Similarity(1.0, rot, centre - centre @ rot.T + np.array([6.0 * k * np.sin(i / 7.0), 0.0]))
        lm = pts.copy()
        lm[:, :2] = head.apply(pts[:, :2])
        p = PosedFace(lm, head)
        posed.append(p)
        disps.append(avatar.rig.displacement(lm, head.apply))
    return DrivenSequence(avatar, posed, [None] * frames, np.stack(disps).astype(np.float32),
                          f"bundled {DEFAULT_AVATAR.name} with a synthetic head motion (footage folder not found)")


def real_or_synthetic(frames: int = 30, grid_size: int | None = None, data_dir: Path | None = None,
                      size: int = 512) -> DrivenSequence:
    if footage_available(data_dir):
        return drive(frames, size=size, grid_size=grid_size, data_dir=data_dir)
    return synthetic(frames, grid_size, size)


def load_or_drive(cache_file: Path | str, frames: int = 30, size: int = 512, data_dir: Path | None = None,
                  grid_size: int | None = None) -> DrivenSequence:
    """drive(), memoised in a pickle (tests and benchmarks share one tracking pass)."""
    cache_file = Path(cache_file)
    if cache_file.is_file():
        with open(cache_file, "rb") as f:
            return pickle.load(f)
    seq = drive(frames, size=size, grid_size=grid_size, data_dir=data_dir)
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache_file.with_name(f".{cache_file.name}.tmp")
    with open(tmp, "wb") as f:
        pickle.dump(seq, f, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(cache_file)
    return seq


def record(seq: DrivenSequence, path: Path | str) -> Path:
    """Save the sequence's model inputs for `python -m export --inputs`."""
    from export.recorded import save_inputs

    return save_inputs(path, {"warp_field": seq.warp_field_inputs()}, seq.source)


def main(argv: list[str] | None = None) -> int:
    from .native_logs import native_stderr_silenced

    p = argparse.ArgumentParser(prog="python -m app.model_inputs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="the .npz file to write")
    p.add_argument("--frames", type=int, default=30, help="frames of the driving video (default 30)")
    p.add_argument("--grid", type=int, default=DEFAULT_GRID_SIZE, help=f"warp grid size (default {DEFAULT_GRID_SIZE})")
    p.add_argument("--size", type=int, default=512, help="output size the portrait is framed at (default 512)")
    p.add_argument("--data", type=Path, default=None, help="real footage folder (default ../shared/data)")
    args = p.parse_args(argv)

    with native_stderr_silenced():  # MediaPipe's start-up lines
        seq = real_or_synthetic(args.frames, args.grid, args.data, args.size)
    path = record(seq, args.out)
    print(f"{path}: WarpField inputs, {len(seq.displacements)} frames of {seq.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
