"""Real inputs for the per-frame models: a portrait driven by real footage.

The WarpField's inputs come out of the real pipeline (track -> stabilise/retarget -> rig), so
the parity checks and the benchmark see the displacements the app actually produces, not noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .paths import default_data_dir

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


def footage_available(data_dir: Path | None = None) -> bool:
    d = Path(data_dir) if data_dir is not None else default_data_dir()
    return (d / DEFAULT_PORTRAIT).is_file() and (d / DEFAULT_DRIVER).is_file()


def drive(frames: int = 30, size: int = 512, grid_size: int | None = None, data_dir: Path | None = None,
          portrait: str = DEFAULT_PORTRAIT, driver: str = DEFAULT_DRIVER) -> DrivenSequence:
    """Animate `portrait` with the first `frames` frames of `driver` (both under data_dir)
    through the app's own Animator, collecting what the renderer is fed each frame."""
    import cv2

    from app.animator import Animator
    from app.avatar import Framing, load_avatar, skin_colour
    from app.mouth import MouthSource
    from app.rig import DEFAULT_GRID_SIZE
    from app.tracking import FaceTracker
    from engines.torch_engine import TorchFieldEngine

    d = Path(data_dir) if data_dir is not None else default_data_dir()
    g = grid_size or DEFAULT_GRID_SIZE
    avatar = load_avatar(d / portrait, Framing(size, size), grid_size=g)
    animator = Animator(avatar, TorchFieldEngine(g))
    cap = cv2.VideoCapture(str(d / driver))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    posed, mouths, disps = [], [], []
    try:
        with FaceTracker() as tracker:
            for i in range(frames):
                ok, frame = cap.read()
                if not ok:
                    break
                found = tracker.detect(frame)
                face = found[0] if found else None
                p = animator.step(frame, face, i / fps).posed
                posed.append(p)
                mouths.append(MouthSource(frame, face.landmarks, skin_colour(frame, face.landmarks))
                              if face is not None else None)
                disps.append(avatar.rig.displacement(p.landmarks, lambda ring, p=p: p.head.apply(ring)))
    finally:
        cap.release()
    if not disps:
        raise RuntimeError(f"no frame could be read from {d / driver}")
    return DrivenSequence(avatar, posed, mouths, np.stack(disps).astype(np.float32),
                          f"{portrait} driven by {len(disps)} frames of {driver}")


def synthetic(frames: int = 30, grid_size: int | None = None) -> DrivenSequence:
    """Without the footage folder: the bundled avatar with a smooth made-up head motion."""
    from app import DEFAULT_AVATAR
    from app.avatar import Framing, load_avatar
    from app.pose import Similarity
    from app.retarget import PosedFace
    from app.rig import DEFAULT_GRID_SIZE

    avatar = load_avatar(DEFAULT_AVATAR, Framing(512, 512), grid_size=grid_size or DEFAULT_GRID_SIZE)
    pts = avatar.face.landmarks
    centre = pts[:, :2].mean(axis=0)
    posed, disps = [], []
    for i in range(frames):
        a = 0.15 * np.sin(i / 5.0)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        head = Similarity(1.0, rot, centre - centre @ rot.T + np.array([6.0 * np.sin(i / 7.0), 0.0]))
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
    return synthetic(frames, grid_size)
