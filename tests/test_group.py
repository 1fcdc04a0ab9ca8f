"""Several faces: each avatar face follows its own driver, identities stay put, real footage.

Two-person driving video is built from real single-person clips placed side by side
(app/multiclip.py), as two people sitting next to each other are seen by one camera.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from app.assign import AssignSettings
from app.capture import Frame
from app.cast import Cast, layout_cells, load_cast
from app.group import GroupFrameResult, GroupPuppeteer
from app.multiclip import read_clip, side_by_side
from app.tracking import FaceTracker
from engines.torch_engine import TorchFieldEngine

from .helpers import correlation, mouth_open

FPS = 30.0
HEIGHT = 300


@pytest.fixture(scope="module")
def clips(data_dir: Path) -> dict[str, list[np.ndarray]]:
    d = data_dir / "driving"
    return {"a": read_clip(d / "webcam_crop_expressions.mp4", 200, HEIGHT),
            "b": read_clip(d / "lp_d10.mp4", 200, HEIGHT),
            "c": read_clip(d / "vox_jackie.mp4", 200, HEIGHT)}


@pytest.fixture(scope="module")
def group(data_dir: Path) -> Cast:
    return load_cast([data_dir / "portraits" / "fr_two_people.jpg"], faces=2)


def _run(cast: Cast, frames: list[np.ndarray], **kw) -> tuple[list[GroupFrameResult], list[str]]:
    said: list[str] = []
    puppeteer = GroupPuppeteer(cast, engine=TorchFieldEngine(), on_change=said.append, **kw)
    try:
        return [puppeteer.process(Frame(im, i, i / FPS)) for i, im in enumerate(frames)], said
    finally:
        puppeteer.close()


def _driver_mouth(frames: list[np.ndarray]) -> np.ndarray:
    with FaceTracker() as tracker:
        vals = []
        for im in frames:
            faces = tracker.detect(im)
            vals.append(mouth_open(faces[0].landmarks) if faces else np.nan)
    return np.array(vals)


def _gray(like: np.ndarray) -> np.ndarray:
    return np.full_like(like, 120)


def test_group_portrait_has_two_faces_that_do_not_overlap(group: Cast) -> None:
    assert len(group.faces) == 2
    assert group.slot_x()[0] < 0.5 < group.slot_x()[1]  # left to right
    a, b = group.faces
    masks = []
    for f in group.faces:
        m = np.zeros(group.canvas.shape[:2], bool)
        x0, y0, x1, y1 = f.canvas_box
        m[y0:y1, x0:x1] = f.support
        masks.append(m)
    assert not (masks[0] & masks[1]).any()
    cx, cy = a.canvas_center()
    assert group.face_at(cx, cy) == 0 and group.face_at(*b.canvas_center()) == 1


def test_each_avatar_face_follows_its_own_driver(group: Cast, clips) -> None:
    n = 120
    frames = side_by_side([clips["a"][:n], clips["b"][:n]])
    results, said = _run(group, frames)
    assert said[:2] == ["person 1 drives avatar face 1", "person 2 drives avatar face 2"]
    drivers = [_driver_mouth(clips["a"][:n]), _driver_mouth(clips["b"][:n])]
    # What the viewer sees: MediaPipe on each avatar face's region of the output (one
    # video-mode tracker per region, as each is a stream of its own).
    shown = []
    for f in group.faces:
        x0, y0, x1, y1 = f.canvas_box
        shown.append(_driver_mouth([np.ascontiguousarray(r.image[y0:y1, x0:x1]) for r in results]))
    for k in range(2):
        own, other = drivers[k], drivers[1 - k]
        ok = ~np.isnan(own) & ~np.isnan(other) & ~np.isnan(shown[k])
        assert ok.mean() > 0.9
        r_own = correlation(shown[k][ok], own[ok])
        r_other = correlation(shown[k][ok], other[ok])
        assert r_own > 0.6 and r_own > r_other + 0.4, (k, r_own, r_other)
