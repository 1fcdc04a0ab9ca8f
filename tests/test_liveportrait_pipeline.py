"""`--renderer liveportrait` in the pipeline: the missing-weights message, the batch over faces
and the paste-back region (stand-in networks, fast), and a real clip rendered end to end by
`python -m app render` with the recipe's random weights in the released layout (slow: the real
networks take seconds a frame on a CPU)."""

from __future__ import annotations

from pathlib import Path
import time

import av
import numpy as np
import pytest

from app.cli import main
from app.liveportrait_backend import LivePortraitBackend
from app.liveportrait_renderer import LivePortraitSettings, face_box
from app.puppeteer import PipelineSettings, Puppeteer
from app.renderers import EXIT_NO_WEIGHTS, LIVEPORTRAIT, liveportrait_weights_status
from models.liveportrait import expected_files

from .test_liveportrait_renderer import _Stub

PORTRAIT = "lp_s0.jpg"
CLIP = "lp_d0.mp4"


def _cut_clip(src: Path, dst: Path, frames: int) -> float:
    """The first `frames` frames of `src`, re-encoded losslessly enough to track; returns its fps."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        rate = stream_in.average_rate
        stream = out.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        stream.options = {"crf": "10"}
        for i, frame in enumerate(inp.decode(stream_in)):
            if i == frames:
                break
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return float(rate)


def _read_video(path: Path) -> tuple[list[np.ndarray], float]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [f.to_ndarray(format="bgr24") for f in c.decode(s)], float(s.average_rate)


# ---------------------------------------------------------------- without weights


@pytest.mark.parametrize("weights", [None, "empty"])
def test_missing_weights_name_the_files_and_where_to_get_them_exit_2(data_dir, tmp_path, capsys, weights):
    out = tmp_path / "out.mp4"
    args = ["render", "--renderer", LIVEPORTRAIT, "--avatar", str(data_dir / "portraits" / PORTRAIT),
            "--driver", str(data_dir / "driving" / CLIP), "--out", str(out), "--quiet"]
    if weights:
        (tmp_path / weights).mkdir()
        args += ["--weights", str(tmp_path / weights)]
    assert main(args) == EXIT_NO_WEIGHTS
    err = capsys.readouterr().err
    for name in expected_files():
        assert name in err
    assert "huggingface.co/KwaiVGI/LivePortrait" in err and "never downloaded" in err
    assert not out.exists()


def test_weights_status_says_what_is_missing(tmp_path):
    assert not liveportrait_weights_status(None).found
    status = liveportrait_weights_status(tmp_path)
    assert not status.found and set(status.missing) == set(expected_files())
    for name in expected_files():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert liveportrait_weights_status(tmp_path).found


# ---------------------------------------------------------------- stand-in networks


def test_two_faces_one_batch_pasted_inside_their_boxes(data_dir):
    from app.capture import Frame
    from app.cast import load_cast
    from tests.helpers import read_frames

    cast = load_cast([data_dir / "portraits" / PORTRAIT, data_dir / "portraits" / "grace_hopper.jpg"], 2)
    stub = _Stub()
    backend = LivePortraitBackend(stub, "cpu")  # type: ignore[arg-type]
    puppeteer = Puppeteer(cast, PipelineSettings(engine="torch"), renderer=backend)
    assert [c for c, _ in stub.calls] == ["M", "F", "M", "F"]  # per avatar face, once
    frames = read_frames(data_dir / "driving" / CLIP, limit=1)
    image = np.concatenate([frames[0], frames[0]], axis=1)  # two people side by side
    try:
        result = puppeteer.process(Frame(image, 0, 0.0))
    finally:
        puppeteer.close()
    assert all(f is not None for f in result.faces)
    assert stub.calls[4:] == [("M", 2), ("W", 2), ("G", 2)]
    changed = np.abs(result.image.astype(int) - cast.canvas.astype(int)).max(axis=2) > 0
    allowed = np.zeros_like(changed)
    src = LivePortraitSettings().source_crop
    for member in cast.faces:
        b = face_box(member.avatar.face.landmarks, src)
        ox, oy = member.origin
        w, h = member.avatar.size
        x0, y0 = max(b.x0, 0) + ox, max(b.y0, 0) + oy
        allowed[y0:min(b.y0 + b.side, h) + oy, x0:min(b.x0 + b.side, w) + ox] = True
    assert changed.any() and not (changed & ~allowed).any()


# ---------------------------------------------------------------- the real networks, end to end


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory) -> Path:
    """The recipe's deterministic random weights, written in the released layout (~10 s)."""
    from models.liveportrait import LivePortraitNets, save_liveportrait

    root = tmp_path_factory.mktemp("lp") / "pretrained_weights" / "liveportrait"
    save_liveportrait(LivePortraitNets.random(), root)
    return root.parent.parent


@pytest.mark.slow
def test_render_a_real_clip_end_to_end_with_random_weights(data_dir, tmp_path, random_weights, capsys):
    from app.cast import load_cast

    frames = 2  # the real networks take ~10 s a frame on two CPU cores
    driver, out = tmp_path / "driver.mp4", tmp_path / "out.mp4"
    fps = _cut_clip(data_dir / "driving" / CLIP, driver, frames)
    avatar = data_dir / "portraits" / PORTRAIT
    t0 = time.perf_counter()
    rc = main(["render", "--renderer", LIVEPORTRAIT, "--weights", str(random_weights), "--avatar", str(avatar),
               "--driver", str(driver), "--out", str(out), "--quiet", "--engine", "torch"])
    seconds = time.perf_counter() - t0
    assert rc == 0, capsys.readouterr().err
    images, out_fps = _read_video(out)
    assert len(images) == frames and out_fps == pytest.approx(fps)
    print(f"liveportrait render: {frames} frames in {seconds:.1f} s")

    # The paste-back region: the source crop's box; outside it the portrait is untouched
    # (up to the codec), inside it the random networks' noise.
    cast = load_cast([avatar], 1)
    canvas = cast.canvas
    b = face_box(cast.faces[0].avatar.face.landmarks, LivePortraitSettings().source_crop)
    assert 0 < b.side < canvas.shape[1] / 2, "the test needs portrait outside the box"
    margin = 16  # H.264 blocks around the box edge
    for image in images:
        assert image.shape == canvas.shape
        diff = np.abs(image.astype(np.int16) - canvas).mean(axis=2)
        near = np.zeros(diff.shape, bool)
        near[max(b.y0 - margin, 0):b.y0 + b.side + margin, max(b.x0 - margin, 0):b.x0 + b.side + margin] = True
        core = diff[b.y0 + b.side // 4:b.y0 + 3 * b.side // 4, b.x0 + b.side // 4:b.x0 + 3 * b.side // 4]
        assert diff[~near].mean() < 5.0 and core.mean() > 20.0
