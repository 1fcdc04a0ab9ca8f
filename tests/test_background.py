"""The still background plate: head turns no longer drag the background next to the head."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app import landmarks as lm
from app.avatar import load_avatar
from app.background import composite, person_layer, plate_from_mask
from app.render import Renderer, RenderSettings
from app.retarget import Motion, RetargetSettings, apply_motion
from app.rig import RING_POINTS
from engines.torch_engine import TorchFieldEngine


def _posed(avatar, yaw=0.0, pitch=0.0, roll=0.0, shift=(0.0, 0.0)):
    m = Motion.neutral()
    moved = Motion(np.array([pitch, yaw, roll]), np.array(shift), 0.0, m.expression, m.eye_openness, m.gaze)
    return apply_motion(avatar.face, moved, RetargetSettings())


def _renderers(avatar):
    engine = TorchFieldEngine(avatar.rig.grid_size)
    return (Renderer(avatar, engine, RenderSettings(still_background=False)),
            Renderer(avatar, engine, RenderSettings(still_background=True)))


def _ring_mask(avatar, which: int) -> np.ndarray:
    """Crop-sized mask inside the inner (0) or outer (1) ring, at rest."""
    c, n = avatar.rig.crop, lm.NUM_LANDMARKS
    ring = avatar.rig.source_points[n + which * RING_POINTS:n + (which + 1) * RING_POINTS]
    mask = np.zeros((c.height, c.width), np.uint8)
    cv2.fillPoly(mask, [np.round(ring).astype(np.int32)], 1)
    return mask.astype(bool)


@pytest.fixture(scope="module")
def hopper(data_dir):
    return load_avatar(data_dir / "portraits" / "grace_hopper.jpg")  # flag behind: stretching shows


@pytest.mark.parametrize("pose", [dict(yaw=0.45, roll=0.1), dict(yaw=-0.35, pitch=0.25, shift=(0.05, 0.03))],
                         ids=["turn", "turn-nod"])
def test_head_turn_leaves_the_background_still(hopper, pose):
    avatar = hopper
    assert avatar.background is not None, "a photo with a clear person/background split gets a plate"
    before, after = _renderers(avatar)
    posed = _posed(avatar, **pose)
    c = avatar.rig.crop
    rest = avatar.image[c.y0:c.y1, c.x0:c.x1].astype(int)
    old, new = before.render_crop(posed).astype(int), after.render_crop(posed).astype(int)

    # Background the person covers in neither pose, a few pixels clear of it, in the band
    # between the rings (where the warp stretches).
    alpha = avatar.background.alpha
    mx, my = after.sampling_maps(posed)
    moved_alpha = cv2.remap(alpha, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    clear = cv2.erode(((alpha == 0) & (moved_alpha == 0)).astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    band = clear & _ring_mask(avatar, 1) & ~_ring_mask(avatar, 0)
    assert band.sum() > 5000
    assert np.abs(new[band] - rest[band]).max() == 0  # still: exactly the avatar's own pixels
    # ...where the plain warp stretched it visibly (the test measures something).
    assert np.abs(old[band] - rest[band]).mean() > 8

    # The face itself still moves as before.
    face = np.zeros(alpha.shape, np.uint8)
    cv2.fillPoly(face, [np.round(posed.landmarks[list(lm.FACE_OVAL), :2] - (c.x0, c.y0)).astype(np.int32)], 1)
    face = cv2.erode(face, np.ones((9, 9), np.uint8)).astype(bool)
    assert np.abs(new[face] - rest[face]).mean() > 8
    assert np.abs(new[face] - old[face]).max() <= 1

    # The crop border is untouched: it pastes back with no seam.
    edge = np.ones(alpha.shape, bool)
    edge[1:-1, 1:-1] = False
    assert np.abs(new[edge] - rest[edge]).max() <= 2


def test_neutral_pose_is_unchanged_by_the_plate(hopper):
    before, after = _renderers(hopper)
    neutral = apply_motion(hopper.face, Motion.neutral(), RetargetSettings())
    assert np.array_equal(before.render(neutral), after.render(neutral))
    # The composite alone, at rest, is the crop bit for bit (the rounded halves add up).
    c = hopper.rig.crop
    crop = np.ascontiguousarray(hopper.image[c.y0:c.y1, c.x0:c.x1])
    assert np.array_equal(composite(person_layer(crop, hopper.background), hopper.background), crop)


def test_a_painting_with_a_soft_split_falls_back_and_still_renders(data_dir):
    """Girl with a Pearl Earring: the dark background melts into her shoulder; the segmenter
    is unsure there, so the crop warps whole, as before the plate existed."""
    avatar = load_avatar(data_dir / "portraits" / "lp_s10.jpg")
    assert avatar.background is None
    before, after = _renderers(avatar)
    neutral = apply_motion(avatar.face, Motion.neutral(), RetargetSettings())
    assert np.array_equal(after.render(neutral), before.render(neutral))
    posed = _posed(avatar, yaw=0.3)
    out = after.render(posed)
    assert np.array_equal(out, before.render(posed))
    assert np.abs(out.astype(int) - avatar.image).mean() > 0.5  # it does move


@pytest.mark.parametrize("case", ["everything", "tiny", "not-the-face", "soft"])
def test_unsure_segmentations_make_no_plate(hopper, case):
    c = hopper.rig.crop
    crop = np.ascontiguousarray(hopper.image[c.y0:c.y1, c.x0:c.x1])
    h, w = crop.shape[:2]
    prob = np.zeros((h, w), np.float32)
    centre = hopper.face.landmarks[list(lm.FACE_OVAL), :2].mean(axis=0) - (c.x0, c.y0)
    if case == "everything":
        prob[:] = 1.0
    elif case == "tiny":
        cv2.circle(prob, tuple(int(v) for v in centre), 6, 1.0, -1)
    elif case == "not-the-face":
        prob[int(h * 0.85):] = 1.0
    else:  # a mask that fades over the whole band, like a painting with no edge
        yy, xx = np.mgrid[0:h, 0:w]
        prob[:] = np.clip(1.2 - np.hypot(xx - centre[0], yy - centre[1]) / (0.5 * w), 0, 1)
    assert plate_from_mask(crop, prob, hopper.rig, hopper.face.landmarks) is None


def test_the_fill_along_the_outline_continues_the_background():
    """Behind the head the plate continues the background next to it, not an average of
    everything round the head: on a flag's stripes the band a moving head uncovers showed a
    pale, flat ghost of the head's outline. Stripes across the outline: the fill just inside it
    keeps their contrast and their colours (mirrored), where an average had neither."""
    from app.background import _fill_from_background

    h, w = 200, 200
    ys, xs = np.mgrid[0:h, 0:w]
    crop = np.where(((ys // 8) % 2 == 0)[..., None], (40, 40, 160), (230, 230, 230)).astype(np.uint8)
    person = np.hypot(xs - 100, ys - 110) < 60
    crop[person] = (60, 120, 200)  # the person: a colour the fill must not take
    fill = _fill_from_background(crop, person).astype(float)
    band = person & (np.hypot(xs - 100, ys - 110) > 56) & (np.abs(xs - 100) > 40)  # the sides' rim
    rows = fill[band]
    # The stripes' own two colours, about half each, not a grey between them.
    near_red = np.abs(rows - (40, 40, 160)).max(axis=1) < 40
    near_white = np.abs(rows - (230, 230, 230)).max(axis=1) < 40
    assert near_red.mean() > 0.25 and near_white.mean() > 0.25, (near_red.mean(), near_white.mean())
    assert not (np.abs(rows - (60, 120, 200)).max(axis=1) < 20).any()  # nothing of the person


def test_a_straight_edge_beside_the_head_goes_on_straight():
    """Horizontal stripes (a shelf's edge, a table, a horizon) meeting the sides of a round
    hole: within 10 px of the outline, the fill keeps each row's own stripe. Reflected across
    the outline, which is tilted there, the stripes came out tilted and in steps (the cabinet
    behind lp_d12's laugh): under half the pixels kept their row's colour."""
    from app.background import _fill_from_background

    h, w = 200, 200
    ys, xs = np.mgrid[0:h, 0:w]
    stripe = (ys // 8) % 2 == 0
    colours = np.where(stripe[..., None], (40, 40, 160), (230, 230, 230))
    crop = colours.astype(np.uint8)
    r = np.hypot(xs - 100, ys - 110)
    person = r < 60
    crop[person] = (60, 120, 200)
    fill = _fill_from_background(crop, person).astype(float)
    rim = person & (r > 50) & (np.abs(xs - 100) > 35) & (ys % 8 >= 2) & (ys % 8 <= 5)  # stripes' middles
    kept = (np.abs(fill[rim] - colours[rim]).max(axis=1) < 60).mean()
    assert kept > 0.9, kept
