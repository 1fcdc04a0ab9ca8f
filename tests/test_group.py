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
from app.pipeline import FrameResult, Puppeteer
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


def _run(cast: Cast, frames: list[np.ndarray], **kw) -> tuple[list[FrameResult], list[str]]:
    said: list[str] = []
    puppeteer = Puppeteer(cast, engine=TorchFieldEngine(), on_change=said.append, **kw)
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


def test_people_keep_their_avatar_faces_when_they_trade_places(group: Cast, clips) -> None:
    # One cut: the two people swap sides. Position alone would swap the avatars too.
    frames = side_by_side([clips["a"][:40], clips["b"][:40]]) + side_by_side([clips["b"][40:80], clips["a"][40:80]])
    results, said = _run(group, frames)
    width = frames[0].shape[1]
    after = results[45:]
    assert all(r.people == [1, 2] for r in after)
    # Person 1 (clip a) is now on the right and still drives avatar face 1.
    assert all(r.faces[0] is not None and r.faces[0].center[0] > width / 2 for r in after)
    assert all(r.faces[1] is not None and r.faces[1].center[0] < width / 2 for r in after)
    assert not [s for s in said if "swapped" in s or "drives" in s][2:], said


def test_a_face_that_leaves_eases_to_neutral_and_gets_its_avatar_back(group: Cast, clips) -> None:
    a, b = clips["a"], clips["b"]
    gone = 100  # 3.3 s: longer than the slot is kept, so they are recognised, not just held
    frames = (side_by_side([a[:40], b[:40]])
              + side_by_side([[_gray(a[0])] * gone, b[40:40 + gone]])
              + side_by_side([a[40:80], b[40 + gone:80 + gone]]))
    results, said = _run(group, frames)
    from app.retarget import close_rest_lips

    # Neutral is the portrait's own face, with its lips closed where they are apart at rest.
    rest = close_rest_lips(group.faces[0].avatar.face.landmarks)[:, :2]
    away = results[40 + gone - 1]
    assert away.faces[0] is None and away.faces[1] is not None
    # Eased back to neutral: the posed face is the portrait's own, within a pixel.
    assert np.abs(away.posed[0].landmarks[:, :2] - rest).max() < 1.0
    x0, y0, x1, y1 = group.faces[0].canvas_box
    assert np.array_equal(away.image[y0:y1, x0:x1], group.canvas[y0:y1, x0:x1])  # idle: the still portrait
    back = results[-1]
    assert back.people == [1, 2] and back.faces[0] is not None
    assert "person 1 is back on avatar face 1" in said


def test_a_newcomer_does_not_take_an_avatar_face_in_use(group: Cast, clips) -> None:
    a, b, c = clips["a"], clips["b"], clips["c"]
    pause = 10
    frames = (side_by_side([a[:40], b[:40]])
              + side_by_side([[_gray(a[0])] * pause, b[40:40 + pause]])
              + side_by_side([c[:110], b[40 + pause:150 + pause]]))
    results, said = _run(group, frames)
    keep = AssignSettings().keep_seconds
    left_at = 39 / FPS
    waiting = [r for r in results[40 + pause:] if (r.index / FPS) - left_at < keep - 0.1]
    assert len(waiting) > 30
    assert all(r.people[0] == 1 and r.faces[0] is None for r in waiting)  # person 1's face waits for them
    assert results[-1].people == [3, 2] and results[-1].faces[0] is not None
    assert "person 3 drives avatar face 1" in said


def test_outside_the_faces_the_group_canvas_never_changes(group: Cast, clips) -> None:
    frames = side_by_side([clips["a"][:30], clips["b"][:30]])
    results, _ = _run(group, frames)
    moving = np.zeros(group.canvas.shape[:2], bool)
    for f in group.faces:
        x0, y0, x1, y1 = f.canvas_box
        moving[y0:y1, x0:x1] |= f.support
    for r in results:
        assert np.array_equal(r.image[~moving], group.canvas[~moving])
    assert np.abs(results[-1].image.astype(int) - group.canvas).max() > 30  # the faces do move


def test_assignment_order_can_be_chosen(group: Cast, clips) -> None:
    frames = side_by_side([clips["a"][:10], clips["b"][:10]])
    results, _ = _run(group, frames, assign=AssignSettings(order=(1, 0)))
    # Person 1 (first assigned: the leftmost) was sent to avatar face 2.
    assert results[-1].people == [2, 1]


def test_tiled_cast_lays_avatars_out_and_repeats_a_single_portrait(data_dir: Path) -> None:
    p = data_dir / "portraits"
    row = load_cast([p / "lp_s10.jpg", p / "grace_hopper.jpg"], faces=2)
    assert row.size == (1024, 512) and len(row.faces) == 2
    assert [f.origin for f in row.faces] == [(0, 0), (512, 0)]
    grid = load_cast([p / "lp_s10.jpg"], faces=4, size=(512, 512), layout="grid")
    assert grid.size == (512, 512) and [f.origin for f in grid.faces] == [(0, 0), (256, 0), (0, 256), (256, 256)]
    assert layout_cells(3, "column") == [(0, 0), (0, 1), (0, 2)]


def _write_clip(path: Path, frames: list[np.ndarray]) -> None:
    from app.sinks import VideoFileSink

    sink = VideoFileSink(path, FPS, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        sink.write(f)
    sink.close()


def test_cli_renders_a_group_portrait_with_two_drivers(data_dir: Path, clips, tmp_path: Path, capsys) -> None:
    import cv2

    from app.cli import main

    driver, out = tmp_path / "two.mp4", tmp_path / "out.mp4"
    _write_clip(driver, side_by_side([clips["a"][:20], clips["b"][:20]]))
    portrait = str(data_dir / "portraits" / "fr_two_people.jpg")
    assert main(["render", "--avatar", portrait, "--faces", "2", "--driver", str(driver), "--out", str(out),
                 "--quiet", "--assign", "2,1"]) == 0
    said = capsys.readouterr().out
    assert "2 avatar faces" in said and "person 1 drives avatar face 2" in said
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (1024, 576)
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 20
    cap.release()
    assert main(["render", "--avatar", portrait, "--faces", "2", "--driver", str(driver), "--out", str(out),
                 "--assign", "3,1"]) == 1
    assert "--assign names avatar face 3" in capsys.readouterr().err
