"""The animation follows the driver: landmarks found on the rendered frames move like the
driver's, the image far from the face does not change, and the head keeps its size."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from app import landmarks as lm
from app.avatar import load_avatar
from app.capture import Frame
from app.framing import Framing
from app.pipeline import PipelineSettings, Puppeteer
from app.tracking import FaceTracker

from .helpers import correlation, eye_open, head_angles, mouth_open, read_frames


@dataclass
class Run:
    driver: list  # driver landmarks per frame (None when no face)
    output: list  # landmarks detected on the rendered frames
    posed: list
    images: list
    avatar_image: np.ndarray
    crop: object


def _drive(data_dir, avatar_name: str, clip: str, limit: int, step: int = 1) -> Run:
    avatar = load_avatar(data_dir / "portraits" / avatar_name, Framing(512, 512, "fill"))
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(engine="torch"))
    checker = FaceTracker()
    frames = read_frames(data_dir / "driving" / clip, limit=limit, step=step)
    run = Run([], [], [], [], avatar.image, avatar.rig.crop)
    for i, image in enumerate(frames):
        result = puppeteer.process(Frame(image, i, i * step / 30.0))
        found = checker.detect(result.image)
        run.driver.append(None if result.faces[0] is None else result.faces[0].landmarks)
        run.output.append(found[0].landmarks if found else None)
        run.posed.append(result.posed[0].landmarks)
        run.images.append(result.image)
    puppeteer.close()
    checker.close()
    return run


@pytest.fixture(scope="module")
def turning_run(data_dir) -> Run:
    # A woman turning and tilting her head, frowning and widening her eyes, on a photo avatar.
    return _drive(data_dir, "lp_s42.jpg", "lp_d3.mp4", limit=120, step=2)


@pytest.fixture(scope="module")
def expressions_run(data_dir) -> Run:
    # A webcam crop closing the eyes, opening the mouth and smiling, on a painting.
    return _drive(data_dir, "lp_s10.jpg", "webcam_crop_expressions.mp4", limit=160, step=3)


def _paired(run: Run):
    keep = [i for i, (d, o) in enumerate(zip(run.driver, run.output)) if d is not None and o is not None]
    return keep, [run.driver[i] for i in keep], [run.output[i] for i in keep]


def test_output_keeps_a_detectable_face(turning_run, expressions_run):
    for run in (turning_run, expressions_run):
        detected = sum(o is not None for o in run.output) / len(run.output)
        assert detected > 0.95


def test_head_rotation_follows_driver(turning_run):
    keep, drv, out = _paired(turning_run)
    d_angles = np.array([head_angles(drv[0], p) for p in drv])
    o_angles = np.array([head_angles(out[0], p) for p in out])
    for axis, name in enumerate(("yaw", "pitch", "roll")):
        if d_angles[:, axis].std() > 2.0:  # only axes the driver really moves
            assert correlation(d_angles[:, axis], o_angles[:, axis]) > 0.7, name
    assert d_angles[:, 0].std() > 2.0  # the clip does turn: the test is not vacuous


def test_mouth_and_eyes_follow_driver(expressions_run):
    keep, drv, out = _paired(expressions_run)
    assert correlation([mouth_open(p) for p in drv], [mouth_open(p) for p in out]) > 0.7
    assert correlation([eye_open(p) for p in drv], [eye_open(p) for p in out]) > 0.6


def test_eyes_close_fully_on_a_blink(expressions_run):
    keep, drv, out = _paired(expressions_run)
    d = np.array([eye_open(p) for p in drv])
    o = np.array([eye_open(p) for p in out])
    closed = d < 0.35 * np.median(d)
    assert closed.any(), "the clip has closed eyes"
    # MediaPipe reads a painted closed lid as partly open, so the bar is set by what an eye
    # that does not close reads: about 0.8 of open (this renderer before lids were painted).
    output_ratio = np.median(o[closed]) / np.median(o[~closed])
    # Relaxed to 0.65/0.45 for a while (issue 11): a squint-shaped blink curve (0.4/0.75) kept
    # half-shut frames, and the lash line darkened by a fixed share; restored with the curve
    # that shuts only a shut eye and the lash line drawn to the avatar's own lash colour.
    assert output_ratio < 0.6, output_ratio
    # The deepest moment reads shut.
    assert o[closed].min() / np.median(o[~closed]) < 0.4, o[closed].min() / np.median(o[~closed])


@pytest.fixture(scope="module")
def blinking_run(data_dir) -> Run:
    # A man blinking and squinting (lp_d9) on a photo: the eyes must read shut, not half open.
    return _drive(data_dir, "astronaut.png", "lp_d9.mp4", limit=120, step=3)


def test_shut_eyes_read_shut_on_a_photo(blinking_run):
    """MediaPipe on the output, at the driver's closed-eye frames, against its open frames.
    The grid warp alone left a shut eye's opening a few pixels tall and an inpainted lid over
    it read as half open (0.47 of open here); lids closed at pixel resolution read 0.26."""
    keep, drv, out = _paired(blinking_run)
    d = np.array([eye_open(p) for p in drv])
    o = np.array([eye_open(p) for p in out])
    closed = d < 0.35 * np.median(d)
    assert closed.sum() >= 3, "the clip has closed eyes"
    assert np.median(o[closed]) / np.median(o[~closed]) < 0.4


def test_background_far_from_face_is_unchanged(expressions_run):
    c = expressions_run.crop
    outside = np.ones(expressions_run.avatar_image.shape[:2], bool)
    outside[c.y0:c.y1, c.x0:c.x1] = False
    for image in expressions_run.images[::10]:
        assert np.array_equal(image[outside], expressions_run.avatar_image[outside])


def test_head_does_not_grow_when_driver_leans_in(data_dir):
    from app.retarget import DriverReference, RetargetSettings, apply_motion, face_size, measure_motion
    from app.tracking import FaceTracker

    avatar = load_avatar(data_dir / "portraits" / "grace_hopper.jpg", Framing(512, 512))
    with FaceTracker() as tracker:
        face = tracker.detect(read_frames(data_dir / "driving" / "lp_d0.mp4", limit=1)[0])[0].landmarks
    reference = DriverReference.from_landmarks(face)
    centre = face.mean(axis=0)
    leaning = (face - centre) * 1.3 + centre  # the driver's face 30% bigger: leaning in
    posed = apply_motion(avatar.face, measure_motion(reference, leaning), RetargetSettings(), reference)
    assert face_size(posed.landmarks) == pytest.approx(avatar.face.size, rel=0.02)
    follow = apply_motion(avatar.face, measure_motion(reference, leaning), RetargetSettings(scale_gain=1.0), reference)
    assert face_size(follow.landmarks) == pytest.approx(avatar.face.size * 1.3, rel=0.03)


def test_lips_close_but_do_not_cross(data_dir):
    """A driver whose neutral mouth is slightly open presses the lips shut: an avatar whose lips
    are closed at rest has no room for that closing. Applied as is, its lips passed through each
    other, which folds the warp and reads as an opening (+2.7% of the face size asked for while
    the driver closed by 2.8%). They must meet instead, and a real opening still carries over."""
    from app.retarget import DriverReference, RetargetSettings, apply_motion, face_size, measure_motion

    upper, lower = [191, 80, 81, 82, 13, 312, 311, 310, 415], [95, 88, 178, 87, 14, 317, 402, 318, 324]

    def signed_gaps(points):  # lower minus upper inner lip, along the face's downward direction
        a, b = points[lm.MOUTH_CORNERS[0], :2], points[lm.MOUTH_CORNERS[1], :2]
        along = (b - a) / np.linalg.norm(b - a)
        down = np.array([-along[1], along[0]])
        down = down if (points[152, :2] - (a + b) / 2) @ down > 0 else -down
        return (points[lower, :2] - points[upper, :2]) @ down / face_size(points) * 100

    avatar = load_avatar(data_dir / "portraits" / "st_art_20.png", Framing(512, 512))
    frames = read_frames(data_dir / "driving" / "webcam_crop_expressions.mp4", limit=163)
    with FaceTracker() as tracker:
        neutral, pressed, wide = (tracker.detect(frames[i])[0].landmarks for i in (0, 100, 162))
    reference = DriverReference.from_landmarks(neutral)
    assert signed_gaps(pressed)[4] - signed_gaps(neutral)[4] < -1.5  # the driver closes by >1.5%
    rest = signed_gaps(avatar.face.landmarks)
    closed = signed_gaps(apply_motion(avatar.face, measure_motion(reference, pressed), RetargetSettings(),
                                      reference).landmarks)
    assert np.all(closed >= np.minimum(rest, 0.0) - 0.05)
    opened = signed_gaps(apply_motion(avatar.face, measure_motion(reference, wide), RetargetSettings(),
                                      reference).landmarks)
    asked = signed_gaps(wide) - signed_gaps(neutral)
    assert opened[4] - rest[4] > 0.8 * asked[4] > 5.0


def test_a_frame_filling_face_does_not_slide_off_its_neck(data_dir):
    """The singer sits up by 0.25 face sizes; a portrait whose face fills the frame has little
    band to move in, so its head shifts by what its rig has room for, not by the driver's 0.25."""
    from app.retarget import ROOM_SHARE

    avatar = load_avatar(data_dir / "portraits" / "st_art_6.png")
    room = avatar.face.room / avatar.face.size
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(engine="torch"))
    frames = read_frames(data_dir / "driving" / "webcam_raw_singing.mp4", limit=25)
    results = [puppeteer.process(Frame(f, i, i / 30)) for i, f in enumerate(frames)]
    puppeteer.close()
    asked = abs(results[-1].motions[0].translation[1])
    assert asked > 0.12  # the driver really moved (measured from the most neutral frame seen so far)
    # The skull (hair, ears, the band round the head) is what would slide off the neck; the
    # face inside it also swings with the driver's nod.
    centre = avatar.face.landmarks[list(lm.RIGID), :2].mean(axis=0)
    moved = (results[-1].posed[0].ring_transform.apply(centre) - centre) / avatar.face.size
    limit = ROOM_SHARE * room[2]  # the driver moved up: the room above the head
    assert abs(moved[1]) < limit + 0.01 < asked / 3, (moved, limit, asked)


def test_a_face_cut_off_under_its_mouth_neither_stretches_its_lip_nor_folds(data_dir):
    """A webcam frame cut off just under the mouth as the portrait (self-reenactment's set-up),
    driven by the same clip as the singer sits up: the head may not rise (there is nothing
    under its chin to fill the gap), so the final map stretches almost nothing. Risen, its
    lower lip was stretched into red streaks down to the frame's edge (3.7% of the animated
    pixels stretched over 4x)."""
    from app.avatar import prepare_avatar
    from app.evaluate.data import SquareCrop
    from app.face_metrics import face_size
    from app.warp_quality import analyse_map

    frames = read_frames(data_dir / "driving" / "webcam_raw_singing.mp4", limit=170)
    with FaceTracker() as tracker:
        first = tracker.detect(frames[0])[0].landmarks
    crop = SquareCrop.around(frames[0].shape[1::-1], first[list(lm.FACE_OVAL), :2].mean(axis=0), face_size(first))
    avatar = prepare_avatar(crop.apply(frames[0]), Framing(256, 256), name="singer")
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(framing=Framing(256, 256), engine="torch"))
    puppeteer.calibrate()
    renderer = puppeteer.animators[0].renderer
    folds = []
    for i, f in enumerate(frames):
        result = puppeteer.process(Frame(crop.apply(f), i, i / 30))
        if i == 124:
            risen = result.motions[0].translation[1]
            quality = analyse_map(*renderer.frame_maps(result.posed[0]))
        if i >= 150:  # the head turns 35 degrees with the mouth at the crop border
            folds.append(analyse_map(*renderer.frame_maps(result.posed[0])).fold_pct)
    puppeteer.close()
    assert risen < -0.2  # the driver did sit up
    assert quality.stretch_pct < 1.0, quality
    # The lip pass there changed by 3 pixels from one station to the next and folded a few
    # pixels (frame 165) before its strength was eased along the mouth; turned further (a face
    # cut off by its frame turns as far as its band allows), its margins' move at the far corner
    # jumped 6 pixels a station until that was bounded (`lips._bounded_shear`).
    assert max(folds) == 0.0, folds


def test_head_shift_is_soft_limited_by_the_rig_room():
    """By the band it squeezes ahead and the face's margin it stretches behind."""
    from app.retarget import AvatarFace, RetargetSettings, head_shift

    pts = np.zeros((lm.NUM_LANDMARKS, 3))
    pts[list(lm.FACE_OVAL), :2] = np.random.default_rng(0).uniform(100, 200, (len(lm.FACE_OVAL), 2))
    pts[list(lm.FACE_OVAL)[0], :2] = (100, 100)
    pts[list(lm.FACE_OVAL)[1], :2] = (200, 200)
    face = AvatarFace(pts, room=np.array([10.0, 20.0, 0.0, 100.0]),  # face size 100
                      margin=np.array([15.0, 50.0, 60.0, 60.0]))
    settings = RetargetSettings()
    small = head_shift(np.array([0.01, 0.01]), face, settings)
    assert np.allclose(small, [0.01, 0.01], rtol=0.02)  # small moves pass unchanged
    big = head_shift(np.array([1.0, 1.0]), face, settings)  # right and down
    assert 0.9 * 0.15 < big[0] <= 0.15 + 1e-9  # the face's margin on the left, stretched, limits it
    assert 0.9 * settings.max_translation < big[1] <= settings.max_translation + 1e-9
    back = head_shift(np.array([-1.0, -1.0]), face, settings)  # left and up
    assert -0.1 - 1e-9 <= back[0] < -0.09 and back[1] == 0.0  # no room above: the head does not rise
    cut = AvatarFace(pts, room=np.array([10.0, 20.0, 30.0, 100.0]), margin=np.array([15.0, 50.0, 60.0, 0.0]))
    assert head_shift(np.array([0.0, -1.0]), cut, settings)[1] == 0.0  # cut off under the chin: no rise


def test_a_held_crown_lets_the_face_slide_only_a_little():
    """Where the picture's top holds the ring over the hair (`AvatarFace.crown` 0), the face
    slides under it at most `CROWN_SLIDE` whichever way; half held, half-way between."""
    from app.retarget import CROWN_SLIDE, AvatarFace, RetargetSettings, head_shift

    pts = np.zeros((lm.NUM_LANDMARKS, 3))
    pts[list(lm.FACE_OVAL), :2] = np.random.default_rng(0).uniform(100, 200, (len(lm.FACE_OVAL), 2))
    pts[list(lm.FACE_OVAL)[0], :2] = (100, 100)
    pts[list(lm.FACE_OVAL)[1], :2] = (200, 200)
    room, margin = np.full(4, 100.0), np.full(4, 100.0)
    settings = RetargetSettings()
    free = head_shift(np.array([1.0, -1.0]), AvatarFace(pts, room=room, margin=margin), settings)
    held = head_shift(np.array([1.0, -1.0]), AvatarFace(pts, room=room, margin=margin, crown=0.0), settings)
    half = head_shift(np.array([1.0, -1.0]), AvatarFace(pts, room=room, margin=margin, crown=0.5), settings)
    assert np.all(np.abs(free) > 0.9 * settings.max_translation)
    assert np.all(np.abs(held) <= CROWN_SLIDE + 1e-9) and np.all(np.abs(held) > 0.9 * CROWN_SLIDE)
    assert np.allclose(np.abs(half), (settings.max_translation + CROWN_SLIDE) / 2 * np.tanh(1.0 / ((settings.max_translation + CROWN_SLIDE) / 2)))


