"""The weight-free renderer: exact at rest, accurate where it moves, still where it should be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from app import landmarks as lm
from app.avatar import load_avatar
from app.render import Renderer
from app.retarget import Motion, RetargetSettings, apply_motion
from models.warp_field import DEFAULT_FIT_STEPS, WarpField
from engines.torch_engine import TorchFieldEngine


@pytest.fixture(scope="module")
def avatar(data_dir):
    return load_avatar(data_dir / "portraits" / "grace_hopper.jpg")


def _turned(avatar, yaw=0.25, roll=0.1):
    m = Motion.neutral()
    moved = Motion(np.array([0.05, yaw, roll]), np.array([0.03, 0.0]), 0.0, m.expression, m.eye_openness, m.gaze)
    return apply_motion(avatar.face, moved, RetargetSettings())


def test_neutral_pose_renders_the_avatar_unchanged(avatar):
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    neutral = apply_motion(avatar.face, Motion.neutral(), RetargetSettings())
    out = renderer.render(neutral)
    assert np.abs(out.astype(int) - avatar.image).max() <= 1


def _landed() -> list[int]:
    """The landmarks a map can send home: not the lids and lips, which meet (not invertible)."""
    skip = set(lm.part_indices()["eyes"]) | set(lm.INNER_LIPS)
    return [i for i in range(lm.NUM_LANDMARKS) if i not in skip]


def _landing_error(avatar, posed) -> np.ndarray:
    """Pixels between where the map samples each posed landmark and the avatar's own."""
    mx, my = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size)).sampling_maps(posed)
    c = avatar.rig.crop
    idx = _landed()
    dst = np.round(posed.landmarks[idx, :2] - (c.x0, c.y0)).astype(int)
    src = avatar.face.landmarks[idx, :2] - (c.x0, c.y0)
    return np.hypot(mx[dst[:, 1], dst[:, 0]] - src[:, 0], my[dst[:, 1], dst[:, 0]] - src[:, 1])


def test_backward_map_sends_posed_landmarks_home(avatar):
    """Sampling the output at a posed landmark must read the avatar at that landmark."""
    # A turn of 0.15 rad about the neck swings the face across its still skull by about 12 px.
    posed = _turned(avatar, yaw=0.15)
    err = _landing_error(avatar, posed)
    idx = _landed()
    moved = np.hypot(*(posed.landmarks[idx, :2] - avatar.face.landmarks[idx, :2]).T)
    assert moved.mean() > 8  # the pose really moves the face
    # Sub-pixel at the median; the tail is landmarks in folds of a 96x96 grid (nose side on a turn).
    assert np.median(err) < 1.0 and np.percentile(err, 95) < 4.0


def test_a_shifted_head_lands_where_it_was_asked(data_dir):
    """The head's shift is a flow of its own: one field carrying the shift and the face's own
    motion sent every point across the face's field on the way, and the fit fell short (on the
    old model this shift landed at a median 0.9 px, p95 3.6 px; on lp_d12's laugh with a turn,
    6 px off and a crease across the cheek). lp_s9: a crown with room above it to move
    (fr_obama's, by the picture's top, keeps the head near its place: test below)."""
    portrait = load_avatar(data_dir / "portraits" / "lp_s9.jpg")
    m = Motion.neutral()
    shifted = Motion(np.zeros(3), np.array([0.2, 0.1]), 0.0, m.expression, m.eye_openness, m.gaze)
    posed = apply_motion(portrait.face, shifted, RetargetSettings())
    moved = np.linalg.norm(posed.ring_transform.translation)
    assert moved > 0.12 * portrait.face.size  # the head really shifts
    err = _landing_error(portrait, posed)
    assert np.median(err) < 0.6 and np.percentile(err, 95) < 2.5, (np.median(err), np.percentile(err, 95))


def _crown_moves(avatar, posed) -> np.ndarray:
    """(N, 2) where the top of the person's outline at rest (the background plate's person
    layer, columns over the face) lands in the rendered frame, minus where it was: each
    point found by inverting the final map (the output pixel that samples nearest to it)."""
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    mx, my = renderer.frame_maps(posed)
    person = avatar.background.alpha > 128
    c = avatar.rig.crop
    oval = avatar.face.landmarks[list(lm.FACE_OVAL), 0] - c.x0
    lo, hi = np.percentile(oval, [10, 90])
    cols = np.arange(int(lo), int(hi), 4)
    tops = np.array([[x, np.argmax(person[:, x])] for x in cols if person[:, x].any()], np.float64)
    ys, xs = np.mgrid[0:mx.shape[0], 0:mx.shape[1]]
    out = []
    for sx, sy in tops:
        d = (mx - sx) ** 2 + (my - sy) ** 2
        k = np.unravel_index(np.argmin(d), d.shape)
        out.append([xs[k] - sx, ys[k] - sy])
    return np.array(out)


@pytest.mark.parametrize("shift", [(0.065, 0.115), (0.25, 0.0), (-0.15, 0.1)])
def test_a_crown_by_the_pictures_top_keeps_its_shape_when_the_head_moves(data_dir, shift):
    """fr_obama's hair nearly touches the picture's top, where the rig holds the warp still.
    The ring over the hair was held point by point: its top stayed while its sides followed
    the head, and the crown was drawn into a cone, leaning the other way on a sideways move
    (lp_d12, frames 150-170). Now the ring over the hair moves as one, by its most held
    point's share, and the face slides under a held crown no further than the hair between
    can stretch evenly: every point of the crown's outline moves alike (on the old rig its
    points' moves differed by 10-30 px)."""
    obama = load_avatar(data_dir / "portraits" / "fr_obama.jpg")
    m = Motion.neutral()
    posed = apply_motion(obama.face, Motion(np.zeros(3), np.array(shift), 0.0, m.expression, m.eye_openness, m.gaze),
                         RetargetSettings())
    moves = _crown_moves(obama, posed)
    assert len(moves) >= 10
    spread = np.percentile(moves, 95, axis=0) - np.percentile(moves, 5, axis=0)
    assert spread.max() <= 4.0, (spread, moves)


def test_fitted_flow_lands_closer_than_the_plain_first_guess(avatar):
    """The flow's fit steps bring the warp's forward map closer to where the landmarks ask."""
    posed = _turned(avatar, yaw=0.45)
    rig = avatar.rig
    disp = torch.from_numpy(rig.displacement(posed.landmarks, posed.head.apply)[None])
    idx, wgt = torch.from_numpy(rig.tri_index[None]), torch.from_numpy(rig.tri_weight[None])
    forward = lambda grid: grid + torch.nn.functional.grid_sample(  # noqa: E731
        _forward_field(idx, wgt, disp, rig.grid_size), grid, align_corners=True).permute(0, 2, 3, 1)
    errors = []
    for steps in (0, DEFAULT_FIT_STEPS):  # the fit the app runs, not a longer one
        x = WarpField(rig.grid_size, steps)(idx, wgt, disp)
        errors.append((forward(x) - WarpField(rig.grid_size, 0).identity).abs().mean().item())
    assert errors[1] < errors[0] * 0.5


def _forward_field(idx, wgt, disp, g):
    corners = disp[0][idx[0]]  # (G*G, 3, 2)
    return (corners * wgt[0].unsqueeze(-1)).sum(1).reshape(1, g, g, 2).permute(0, 3, 1, 2)


def test_nothing_outside_the_head_crop_moves(avatar):
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    out = renderer.render(_turned(avatar))
    c = avatar.rig.crop
    mask = np.ones(out.shape[:2], bool)
    mask[c.y0:c.y1, c.x0:c.x1] = False
    assert np.array_equal(out[mask], avatar.image[mask])
    # ...and the crop's own border rows are unchanged too: nothing to blend, no seam.
    border = np.concatenate([out[c.y0, c.x0:c.x1], out[c.y1 - 1, c.x0:c.x1]]).astype(int)
    ref = np.concatenate([avatar.image[c.y0, c.x0:c.x1], avatar.image[c.y1 - 1, c.x0:c.x1]]).astype(int)
    assert np.abs(border - ref).max() <= 2


def test_rig_and_retarget_import_without_mediapipe():
    """Importing MediaPipe costs seconds: the per-part landmark sets are computed on first use."""
    code = "import sys, app.retarget, app.rig; print('mediapipe' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_head_turn_with_a_shift_does_not_fold_the_warp(avatar):
    """A 32-degree turn with a tilt and a shift: the far cheek's landmarks cross and the head
    ring runs towards the still band, yet the map that is rendered has no fold."""
    from app import warp_quality as wq

    m = Motion.neutral()
    moved = Motion(np.array([0.1, 0.55, 0.1]), np.array([0.1, 0.15]), 0.0, m.expression, m.eye_openness, m.gaze)
    posed = apply_motion(avatar.face, moved, RetargetSettings())
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    mx, my = renderer.frame_maps(posed)
    q = wq.analyse_map(mx, my, wq.openings_mask(mx.shape, mx, my, renderer.local_landmarks(posed),
                                                renderer.rest_landmarks))
    assert q.animated_pixels > 10000 and q.fold_pct == 0.0 and q.duplicated_pct < 0.05


def test_mouth_cavity_stays_dark_on_a_brighter_avatar():
    """A bright painting's cavity is a shadow of its own lips, far darker than its skin (a
    skin-coloured blob reads as a closed mouth)."""
    import cv2

    from app.mouth import MouthPalette, interior

    skin_bgr = cv2.cvtColor(np.array([[[207, 132, 157]]], np.uint8), cv2.COLOR_LAB2BGR)
    lip_bgr = cv2.cvtColor(np.array([[[150, 160, 150]]], np.uint8), cv2.COLOR_LAB2BGR)
    palette = MouthPalette(np.array([33.0, 147.0, 141.0]), np.array([75.0, 147.0, 141.0]), np.array([220.0, 129.0, 135.0]),
                           np.array([90.0, 150.0, 140.0]))
    poly = np.array([[2, 10], [20, 4], [38, 10], [20, 16]], float)
    out = interior(poly, poly[[0, 2]], (40, 20), palette, 0.02, bite=poly[:3])  # the jaw dropped
    l_out = cv2.cvtColor(out, cv2.COLOR_BGR2LAB)[10, 15:25, 0].mean()
    assert l_out < 0.5 * 207 and skin_bgr.any() and lip_bgr.any()


def test_the_painted_mouth_carries_the_portraits_own_grain_and_moves_it_with_the_mouth(data_dir):
    """The interior the renderer paints was smooth: on a grainy photo (Grace Hopper) a plastic
    insert. It now carries the portrait's own grain, as strong as its cheeks' at the interior's
    lightness (grain goes as the square root of the light), a smooth cartoon's staying smooth;
    the grain is fixed to the mouth (a mouth moved by whole pixels is painted the same, moved)
    and the same every frame (no flicker)."""
    import dataclasses

    import cv2

    from app.mouth import fill_mouth, interior, mouth_palette

    def fine(lightness: np.ndarray) -> np.ndarray:
        lightness = lightness.astype(np.float32)
        return lightness - cv2.GaussianBlur(lightness, (0, 0), 1.0)

    poly = np.array([[10, 40], [40, 20], [70, 22], [100, 20], [130, 40], [100, 70], [70, 75], [40, 70]], float)
    bite = np.array([[10.0, 30.0], [130.0, 30.0]])
    texture = {}
    for name in ("grace_hopper.jpg", "lp_s7.jpg"):
        avatar = load_avatar(data_dir / "portraits" / name)
        palette = mouth_palette(avatar.image, avatar.face.landmarks, avatar.skin_lab)
        assert palette.grain is not None
        lab = cv2.cvtColor(interior(poly, poly[[0, 4]], (140, 90), palette, 0.3, bite), cv2.COLOR_BGR2LAB)
        middle = (slice(44, 58), slice(45, 95))  # the cavity's dark middle
        lightness = cv2.cvtColor(avatar.image, cv2.COLOR_BGR2LAB)[..., 0]
        cheeks = np.zeros(lightness.shape, np.uint8)
        for idx in (lm.CHEEKS[:5], lm.CHEEKS[5:]):
            cv2.fillConvexPoly(cheeks, cv2.convexHull(np.round(avatar.face.landmarks[list(idx), :2]).astype(np.int32)), 255)
        cheeks = cv2.erode(cheeks, np.ones((3, 3), np.uint8)) > 0
        expected = fine(lightness)[cheeks].std() * np.sqrt(lab[middle][..., 0].mean() / lightness[cheeks].mean())
        texture[name] = (float(fine(lab[..., 0])[middle].std()), float(expected))
        if name == "grace_hopper.jpg":
            plain = dataclasses.replace(palette, grain=None)
            smooth = cv2.cvtColor(interior(poly, poly[[0, 4]], (140, 90), plain, 0.3, bite), cv2.COLOR_BGR2LAB)
            assert fine(smooth[..., 0])[middle].std() < 1.0  # what it was: a smooth gradient
            grainy = (avatar, palette)
    seen, expected = texture["grace_hopper.jpg"]
    assert 0.5 * expected < seen < 1.5 * expected, texture
    assert texture["lp_s7.jpg"][0] < 1.5, texture

    avatar, palette = grainy
    posed = avatar.face.landmarks[:, :2].copy()
    corners = list(lm.MOUTH_CORNERS)
    width = float(np.linalg.norm(posed[corners[0]] - posed[corners[1]]))
    posed[list(lm.UPPER_INNER_LIP), 1] -= 0.15 * width  # wide open
    posed[list(lm.LOWER_INNER_LIP), 1] += 0.15 * width
    teeth = posed[corners]
    canvas = np.full((avatar.image.shape[0] + 10, avatar.image.shape[1] + 10, 3), 128, np.uint8)
    first, again, moved = canvas.copy(), canvas.copy(), canvas.copy()
    for out, shift in ((first, (0, 0)), (again, (0, 0)), (moved, (3, 2))):
        fill_mouth(out, posed + shift, 0.0, palette, teeth + shift)
    assert np.array_equal(first, again)
    assert np.array_equal(first[:-2, :-3], moved[2:, 3:])
    assert (first != 128).any()
    # Opened further (the patch's corner moves), the grain round the mouth's middle stays put.
    wider = posed.copy()
    wider[list(lm.UPPER_INNER_LIP), 1] -= 0.05 * width
    wider[list(lm.LOWER_INNER_LIP), 1] += 0.05 * width
    opened = canvas.copy()
    fill_mouth(opened, wider, 0.0, palette, teeth)
    cx, cy = np.round(posed[corners].mean(axis=0)).astype(int)
    near = (slice(cy + 2, cy + 8), slice(cx - 12, cx + 12))  # below the teeth, in the cavity
    a = fine(cv2.cvtColor(first, cv2.COLOR_BGR2LAB)[..., 0])[near].ravel()
    b = fine(cv2.cvtColor(opened, cv2.COLOR_BGR2LAB)[..., 0])[near].ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.7


def test_a_wide_mouth_shows_a_tongue_and_a_row_of_shaded_teeth_not_a_hole_and_a_bar():
    """On a wide opening the lower part of the cavity is the tongue (lighter than the cavity's
    middle), and the teeth are darker at the corners and where neighbouring teeth meet than
    in the middle of a tooth (a flat white bar over a black hole read as a sticker)."""
    import cv2

    from app.mouth import BITE_DROP, TOOTH_JOINS, MouthPalette, interior

    palette = MouthPalette(np.array([30.0, 150.0, 140.0]), np.array([70.0, 150.0, 140.0]), np.array([200.0, 129.0, 135.0]),
                           np.array([100.0, 150.0, 140.0]))
    poly = np.array([[10, 40], [40, 20], [70, 22], [100, 20], [130, 40], [100, 70], [70, 75], [40, 70]], float)
    bite = np.array([[10.0, 30.0], [130.0, 30.0]])  # the lips met here: the upper one rose, the jaw dropped
    out = cv2.cvtColor(interior(poly, poly[[0, 4]], (140, 90), palette, 0.3, bite), cv2.COLOR_BGR2LAB)[..., 0]
    out = out.astype(float)
    width = 120.0
    edge = int(30 + BITE_DROP * width) - 3  # near the biting edge
    assert out[68, 70] > out[50, 70] + 15  # the tongue, low in the mouth, above the dark middle
    join = int(round(70 + TOOTH_JOINS[1] * width))
    tooth = int(round(70 + (TOOTH_JOINS[1] + TOOTH_JOINS[2]) / 2 * width))
    assert out[edge, join] < out[edge, tooth] - 3  # teeth meet in a darker line
    assert out[edge, 70 + int(0.3 * width)] < out[edge, tooth] - 10  # and turn dark towards the corners
    assert out[edge + 6, 70] < 100  # the cavity under the teeth


def test_a_dropped_jaw_opens_the_dark_under_the_teeth_edge():
    """Lips 18 px apart on a 120 px mouth, the lower one dropped from where they met: the upper
    teeth's edge shows under the upper lip, down to `BITE_DROP` below where the lips met, and
    the cavity under it (a teeth band filling the whole gap read as a grey strip)."""
    import cv2

    from app.mouth import BITE_DROP, MouthPalette, interior

    palette = MouthPalette(np.array([30.0, 150.0, 140.0]), np.array([70.0, 150.0, 140.0]), np.array([200.0, 129.0, 135.0]),
                           np.array([100.0, 150.0, 140.0]))
    poly = np.array([[10, 30], [40, 24], [70, 24], [100, 24], [130, 30], [100, 42], [70, 42], [40, 42]], float)
    bite = np.array([[10.0, 25.0], [130.0, 25.0]])
    out = cv2.cvtColor(interior(poly, poly[[0, 4]], (140, 60), palette, 0.1, bite), cv2.COLOR_BGR2LAB)[..., 0]
    edge = 25 + BITE_DROP * 120
    incisor = 70 + 6  # the middle of a front tooth, half a tenth of the bite line from the middle
    assert out[25:int(edge), incisor].min() > 150  # the teeth, under the upper lip
    assert out[int(edge) + 2:42, incisor].max() < 100  # the cavity, above the lower lip


def test_a_smile_that_lifts_the_upper_lip_shows_its_teeth_whole_not_a_see_through_strip():
    """The upper lip raised 10 px off where the lips met, the lower lip where it was: what
    shows is the upper teeth, opaque, down to the lower lip, even on this small an opening.
    (A band at most 60% of the gap, faded in by the opening's size, was a half see-through grey
    strip over the dark on a smile where the driver showed white teeth.)"""
    import cv2

    from app.mouth import MouthPalette, interior

    palette = MouthPalette(np.array([30.0, 150.0, 140.0]), np.array([70.0, 150.0, 140.0]), np.array([200.0, 129.0, 135.0]),
                           np.array([100.0, 150.0, 140.0]))
    poly = np.array([[10, 34], [40, 25], [70, 24], [100, 25], [130, 34], [100, 35], [70, 35], [40, 35]], float)
    bite = poly[[0, 7, 6, 5, 4]]  # the lower lip has not moved
    out = cv2.cvtColor(interior(poly, poly[[0, 4]], (140, 60), palette, 0.06, bite), cv2.COLOR_BGR2LAB)[..., 0]
    column = out[25:34, 76].astype(float)  # the middle of a front tooth
    assert column[1:].min() > 150, column


def test_a_turn_in_place_swings_the_face_and_leaves_the_skull_where_it_was(avatar):
    """A driver turning in place (its head rotating about the depth of its side outline, by the
    ears, where the neck turns it) reads as no shift: the skull (hair, ears and the band round
    them) stays where it was and the face swings across it. Measured at the rigid points'
    centroid, the turn's swing was a shift of 0.15 face sizes that the skull followed: on lp_d12
    the background behind the head was dragged into a ghost of it and the far ear floated off."""
    from app.pose import euler_to_rotation
    from app.retarget import DriverReference, measure_motion, turn_axis

    driver = avatar.face.landmarks
    axis = turn_axis(driver)
    turned = (driver - axis) @ euler_to_rotation(25.0, 0.0, 0.0).T + axis
    reference = DriverReference.from_landmarks(driver)
    motion = measure_motion(reference, turned)
    assert np.abs(motion.translation).max() < 0.01, motion.translation
    posed = apply_motion(avatar.face, motion, RetargetSettings(), reference)
    ring = posed.ring_transform
    corners = np.array([[0.0, 0.0], [512.0, 0.0], [0.0, 512.0], [512.0, 512.0]])
    assert np.abs(ring.apply(corners) - corners).max() < 1.0
    nose = posed.landmarks[1, :2] - avatar.face.landmarks[1, :2]
    assert abs(nose[0]) > 0.15 * avatar.face.size  # the face did turn


def _swept_driver(points: np.ndarray, axis: str, degrees: float) -> np.ndarray:
    """The driver's landmarks rotated in 3-D about their centre."""
    from app.pose import euler_to_rotation

    angles = {"yaw": (degrees, 0, 0), "pitch": (0, degrees, 0), "roll": (0, 0, degrees)}[axis]
    centre = points.mean(axis=0)
    return (points - centre) @ euler_to_rotation(*angles).T + centre


def test_a_face_that_fills_its_picture_turns_only_as_far_as_its_margin_allows(avatar, data_dir):
    """A 30-degree turn with a 15-degree roll: on tight_grace_hopper (her face reaches the
    picture's edges) it is scaled back until her outline moves no further than her margin, and
    the rendered map neither folds nor stretches the band by the picture's side (it folded on
    lp_d3 in 14% of frames, stretched pixels p95 11.5%); a portrait with room round the face
    keeps the whole turn."""
    from app import warp_quality as wq
    from app.pose import rotvec_to_matrix
    from app.retarget import turn_within_margin

    m = Motion.neutral()
    turn = Motion(np.array([0.0, 0.52, 0.26]), np.zeros(2), 0.0, m.expression, m.eye_openness, m.gaze)
    rotation = rotvec_to_matrix(turn.rotation)
    assert np.array_equal(turn_within_margin(rotation, avatar.face), rotation)

    tight = load_avatar(data_dir / "portraits" / "tight_grace_hopper.jpg")
    posed = apply_motion(tight.face, turn, RetargetSettings())
    oval = list(lm.FACE_OVAL)
    moved = np.linalg.norm(posed.landmarks[oval, :2] - tight.face.landmarks[oval, :2], axis=1).max()
    assert 0.0 < moved <= max(tight.face.margin.max(), 0.03 * tight.face.size) + 1.0
    renderer = Renderer(tight, TorchFieldEngine(tight.rig.grid_size))
    mx, my = renderer.frame_maps(posed)
    q = wq.analyse_map(mx, my, wq.openings_mask(mx.shape, mx, my, renderer.local_landmarks(posed),
                                                renderer.rest_landmarks))
    assert q.fold_pct == 0.0 and q.stretch_pct < 1.0, q


@pytest.mark.parametrize("axis", ["yaw", "pitch"])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_a_face_that_fills_its_picture_still_turns_as_far_as_the_band_by_its_edge_allows(data_dir, axis, sign):
    """The head turns about the depth of its side outline, so a turn swings the forehead and the
    chin furthest; on tight_grace_hopper they lie on the picture's top and bottom edges, where
    the rig holds the warp still. Counted whole, their swing cut her turn to 3.6 degrees (5.4
    to 6.2 about the shallower axis before); counted by what reaches the warp, she turns about
    as far as before, and the band by the picture's edge still neither folds nor stretches."""
    from app import warp_quality as wq
    from app.pose import euler_to_rotation, matrix_to_rotvec, rotation_to_euler
    from app.retarget import turn_within_margin

    tight = load_avatar(data_dir / "portraits" / "tight_grace_hopper.jpg")
    k = {"yaw": 0, "pitch": 1}[axis]
    angles = [0.0, 0.0, 0.0]
    angles[k] = 30.0 * sign
    allowed = rotation_to_euler(turn_within_margin(euler_to_rotation(*angles), tight.face))[k]
    assert 4.5 <= abs(allowed) < 30.0 and np.sign(allowed) == sign, allowed
    m = Motion.neutral()
    turn = Motion(matrix_to_rotvec(euler_to_rotation(*angles)), np.zeros(2), 0.0, m.expression, m.eye_openness,
                  m.gaze)
    posed = apply_motion(tight.face, turn, RetargetSettings())
    renderer = Renderer(tight, TorchFieldEngine(tight.rig.grid_size))
    mx, my = renderer.frame_maps(posed)
    q = wq.analyse_map(mx, my, wq.openings_mask(mx.shape, mx, my, renderer.local_landmarks(posed),
                                                renderer.rest_landmarks))
    assert q.fold_pct == 0.0 and q.stretch_pct < 1.0, q


@pytest.mark.parametrize("axis,limit", [("yaw", 45), ("pitch", 30), ("roll", 40)])
def test_head_sweep_renders_without_folds_or_pops(avatar, data_dir, axis, limit):
    """A driver turning its head through the whole range: the final sampling map (what
    cv2.remap reads) never folds, shows nothing twice, and moves smoothly from step to step."""
    from app import warp_quality as wq
    from app.retarget import DriverReference, measure_motion

    driver = load_avatar(data_dir / "portraits" / "lp_s42.jpg").face.landmarks
    reference = DriverReference.from_landmarks(driver)
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    prev = prev_lm = prev_open = None
    pops, turned = [], []
    for degrees in np.arange(-limit, limit + 0.1, 3.0):
        motion = measure_motion(reference, _swept_driver(driver, axis, degrees))
        posed = apply_motion(avatar.face, motion, RetargetSettings(), reference)
        mx, my = renderer.frame_maps(posed)
        local = renderer.local_landmarks(posed)
        openings = wq.openings_mask(mx.shape, mx, my, local, renderer.rest_landmarks)
        q = wq.analyse_map(mx, my, openings)
        assert q.fold_pct == 0.0, f"{axis} {degrees}: {q}"
        assert q.duplicated_pct < 0.05, f"{axis} {degrees}: {q}"
        if prev is not None:
            pops.append(wq.pop(prev, (mx, my), float(np.abs(local[:, :2] - prev_lm[:, :2]).max()), openings | prev_open))
        prev, prev_lm, prev_open = (mx, my), local, openings
        turned.append(np.hypot(*(local[:, :2] - renderer.rest_landmarks).T).max())
    assert max(turned) > 0.1 * avatar.face.size  # the sweep really turns the head
    assert max(pops) < 2.0, pops


@pytest.mark.parametrize("portrait,roll,shift,yaw", [
    ("fr_obama", 0.5, -0.25, 0.0), ("fr_obama", -0.5, 0.25, 0.0), ("fr_obama", 0.5, 0.25, 0.4),
    ("lp_s9", 0.5, -0.25, 0.0)])
def test_a_rolled_head_shifted_to_the_crop_edge_does_not_tear_at_the_crown(data_dir, portrait, roll, shift, yaw):
    """A 29-degree roll with the largest shift squeezes the band between the crown and the crop
    border: the two flows are each fold-free, but their composition on the grid turned a few
    cells over there (10-200 pixels of tear, a crease one pixel wide), until `_unfold`."""
    from app import warp_quality as wq

    face = load_avatar(data_dir / "portraits" / f"{portrait}.jpg")
    m = Motion.neutral()
    moved = Motion(np.array([0.0, yaw, roll]), np.array([shift, 0.1]), 0.0, m.expression, m.eye_openness, m.gaze)
    posed = apply_motion(face.face, moved, RetargetSettings())
    renderer = Renderer(face, TorchFieldEngine(face.rig.grid_size))
    mx, my = renderer.frame_maps(posed)
    openings = wq.openings_mask(mx.shape, mx, my, renderer.local_landmarks(posed), renderer.rest_landmarks)
    q, flags = wq.analyse_map(mx, my, openings, flags=True)
    assert q.animated_pixels > 10000
    assert not flags.fold.any(), np.argwhere(flags.fold)[:10]


def test_a_fold_and_a_duplication_planted_in_a_map_are_caught():
    from app import warp_quality as wq

    h, w = 200, 200
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = xs + 3.0 * np.sin(ys / 30.0), ys + 2.0 * np.cos(xs / 25.0)  # smooth, moved everywhere
    clean = wq.analyse_map(mx, my)
    assert clean.fold_pct == 0.0 and clean.duplicated_pct == 0.0 and clean.animated_pixels > 0.9 * h * w
    folded = mx.copy()
    folded[60:90, 60:90] = (2 * 75 - xs[60:90, 60:90])  # a mirrored patch: the map turns over
    assert wq.analyse_map(folded, my).fold_pct > 1.0
    crease = mx.copy()
    crease[:, 100] += 1.5  # column 100 samples past column 101: a tear one pixel wide
    assert (np.diff(crease[:, 99:102], axis=1) < 0).any() and (crease[:, 101] > crease[:, 99]).all()
    flagged = wq.analyse_map(crease, my, flags=True)[1].fold
    assert flagged[:-1, 100].all() and flagged.sum() <= 2 * h  # caught (every cell of it), and nowhere else
    dup_x, dup_y = mx.copy(), my.copy()
    dup_x[140:170, 20:50], dup_y[140:170, 20:50] = mx[30:60, 120:150], my[30:60, 120:150]  # shown twice
    q, flags = wq.analyse_map(dup_x, dup_y, flags=True)
    assert q.duplicated_pct > 1.0
    assert flags.duplicated[150, 35] and flags.duplicated[45, 135]  # both copies are flagged
    assert not flags.duplicated[100, 100]


def test_a_raised_upper_lip_uncovers_teeth_lighter_than_the_skin(avatar):
    """The renderer with the upper lip lifted off a shut mouth (a smile showing its teeth):
    what shows between the lips is the teeth, lighter than the portrait's skin, since they are
    fixed to the head and the lip rose off them (the teeth faded in by the opening's size were a
    grey strip over the dark: darker than the skin on grace_hopper)."""
    import dataclasses

    import cv2

    from app import landmarks as lm
    from engines.torch_engine import TorchFieldEngine

    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    posed = apply_motion(avatar.face, Motion.neutral(), RetargetSettings())
    pts = posed.landmarks.copy()
    width = float(np.linalg.norm(pts[lm.MOUTH_CORNERS[0], :2] - pts[lm.MOUTH_CORNERS[1], :2]))
    upper = list(lm.UPPER_INNER_LIP) + [185, 40, 39, 37, 0, 267, 269, 270, 409]
    pts[upper, 1] -= 0.08 * width
    image = renderer.render(dataclasses.replace(posed, landmarks=pts))
    # The middle of the opening, between the lips' midpoints, across the front teeth.
    mid = np.round((pts[lm.UPPER_INNER_LIP_MID, :2] + pts[lm.LOWER_INNER_LIP_MID, :2]) / 2).astype(int)
    lightness = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[..., 0][mid[1], mid[0] - 6:mid[0] + 7].astype(float)
    assert np.median(lightness) > avatar.skin_lab[0][0] + 10, lightness


def test_pursed_lips_hide_the_teeth_behind_them():
    """The same upper lip raised off the bite line, the lips' corners drawn in to 0.8 of the
    teeth's width (an "o"): the mouth is dark through them, where spread to the teeth's width
    the teeth show."""
    import cv2

    from app.mouth import MouthPalette, interior

    palette = MouthPalette(np.array([30.0, 150.0, 140.0]), np.array([70.0, 150.0, 140.0]), np.array([200.0, 129.0, 135.0]),
                           np.array([100.0, 150.0, 140.0]))
    bite = np.array([[10.0, 30.0], [130.0, 30.0]])

    def middle(half_width: float) -> np.ndarray:
        poly = np.array([[70 - half_width, 30], [70 - half_width / 2, 22], [70, 21], [70 + half_width / 2, 22],
                         [70 + half_width, 30], [70 + half_width / 2, 40], [70, 42], [70 - half_width / 2, 40]])
        out = cv2.cvtColor(interior(poly, poly[[0, 4]], (140, 60), palette, 0.1, bite), cv2.COLOR_BGR2LAB)[..., 0]
        return out[23:30, 76].astype(float)  # the middle of a front tooth

    assert middle(60).min() > 150  # spread: the teeth
    assert middle(48).max() < 100  # pursed: the dark


def test_the_teeth_ride_with_the_head_in_3d(avatar):
    """With no expression the posed teeth line is the posed lips' own meeting line, whatever the
    nod and turn (a 2-D fit to the upper face put it a few pixels off the lips on a nod)."""
    from app.landmarks import lip_meeting_line

    m = Motion.neutral()
    nod = Motion(np.array([0.3, 0.25, 0.1]), np.array([0.02, 0.01]), 0.05, m.expression, m.eye_openness, m.gaze)
    posed = apply_motion(avatar.face, nod, RetargetSettings())
    np.testing.assert_allclose(posed.teeth, lip_meeting_line(posed.landmarks)[:, :2], atol=1e-6)


def test_the_mouth_is_filled_inside_a_rounded_loop_not_the_landmark_polygon():
    """The inner-lip landmarks joined by straight lines made a wide mouth a polygon (a hexagon
    on lp_s9's widest "O"): the fill's outline is the loop with its corners cut, turning by at
    most half as much at any point, and inside the landmarks' polygon."""
    import cv2

    from app.mouth import _rounded_loop

    square = np.array([[0.0, 0.0], [40.0, 0.0], [40.0, 40.0], [0.0, 40.0]])
    loop = _rounded_loop(square)

    def max_turn(points):
        d = np.diff(np.vstack([points, points[:1]]), axis=0)
        a = np.arctan2(d[:, 1], d[:, 0])
        return np.abs((np.diff(np.append(a, a[0])) + np.pi) % (2 * np.pi) - np.pi).max()

    assert max_turn(loop) <= 0.5 * max_turn(square) + 1e-9
    contour = square.astype(np.float32).reshape(-1, 1, 2)
    assert all(cv2.pointPolygonTest(contour, (float(x), float(y)), False) >= 0 for x, y in loop)


def test_teeth_are_rounded_one_by_one_with_faint_joins():
    """Across the row, each tooth is lightest at its middle and darker at its sides, and the
    joins narrow and faint (thin dark lines evenly spaced, full height, read as a comb)."""
    from app.mouth import TOOTH_JOINS, _tooth_relief

    width = 200.0
    off = np.linspace(0.0, 0.3 * width, 601)
    side, join = _tooth_relief(off, width)
    middle = (TOOTH_JOINS[1] + TOOTH_JOINS[2]) / 2 * width
    assert side[np.argmin(np.abs(off - middle))] < 0.05 and side[np.argmin(np.abs(off - TOOTH_JOINS[2] * width))] > 0.95
    assert (join > 0.5).mean() < 0.15  # the joins are narrow lines, not bands


@pytest.mark.parametrize("yaw", [-0.4, 0.4])
def test_a_turned_jaw_keeps_a_smooth_convex_edge_under_the_ear(data_dir, yaw):
    """lp_s7 (a cartoon on a plain background) turned about 23 degrees either way: below the
    near ear the jaw's edge curves in smoothly towards the chin, never notched (locally
    concave). MediaPipe's oval runs a few pixels inside the drawn jaw, so the edge lay in the
    long thin triangles between the oval and the ring round the head, each stretched its own
    way on a turn, and it bent at their seams: a notch 4 px deep under the ear. The jaw's
    control points now lie on the edge (`rig.jaw_offsets`)."""
    import dataclasses

    avatar = load_avatar(data_dir / "portraits" / "lp_s7.jpg")
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    background = np.median(avatar.image[:40, -40:].reshape(-1, 3).astype(float), axis=0)
    posed = apply_motion(avatar.face, dataclasses.replace(Motion.neutral(), rotation=np.array([0.0, yaw, 0.0])),
                         RetargetSettings())
    out = renderer.render(posed).astype(float)
    pts = posed.landmarks
    oval = pts[list(lm.FACE_OVAL), :2]
    near = 1 if oval[:, 0].max() - pts[1, 0] > pts[1, 0] - oval[:, 0].min() else -1  # the wider side
    top, height = pts[lm.FACE_OVAL[0], 1], np.ptp(oval[:, 1])
    edge = []
    for y in range(int(top + 0.55 * height), int(oval[:, 1].max() - 0.1 * height)):
        xs = np.arange(int(oval[:, 0].mean()), out.shape[1]) if near > 0 else np.arange(int(oval[:, 0].mean()), -1, -1)
        outside = xs[np.linalg.norm(out[y, xs] - background, axis=1) <= 30]
        edge.append(outside[0])
    edge = np.array(edge, float)
    below_ear = edge[int(np.abs(np.diff(edge)).argmax()) + 3:]  # the ear's bottom is the edge's one jump
    assert len(below_ear) > 40
    k = 6
    bend = near * (below_ear[2 * k:] - 2 * below_ear[k:-k] + below_ear[:-2 * k])
    assert bend.max() < 2.5, bend.max()


def test_the_jaws_control_points_leave_the_faces_margin_and_reach_as_they_were(data_dir):
    """The jaw's control points lie a little outside its landmarks (`rig.jaw_offsets`), but the
    face's margin to the still ring, which bounds how far a head may turn and shift, is its
    landmarks': measured on the pushed points, a talking head that fills its picture
    (hdtf_aoc's first face, cropped as the evaluation crops it) lost 4 px below the chin, its
    head moved up to 5 px less than the driver's and its self-reenactment AKD rose 4.9 -> 7.4.
    No pushed point enters the band by the crop border where control points are held."""
    import dataclasses

    from app.avatar import prepare_avatar
    from app.evaluate import metrics as M
    from app.evaluate.reenactment import SELF_FRAMING, SquareCrop
    from app.tracking import FaceTracker
    from .helpers import read_frames

    frame = read_frames(data_dir / "driving" / "hdtf_aoc.mp4", limit=1)[0]
    with FaceTracker() as tracker:
        pts = tracker.detect(frame)[0].landmarks
    crop = SquareCrop.around(frame.shape[1::-1], pts[list(lm.FACE_OVAL), :2].mean(axis=0), M.face_size(pts))
    rig = prepare_avatar(crop.apply(frame), SELF_FRAMING, name="aoc").rig
    n = lm.NUM_LANDMARKS
    assert np.abs(rig.landmark_offset).max() > 1.0  # the jaw is pushed out
    plain_points = rig.source_points.copy()
    plain_points[:n] -= rig.landmark_offset
    plain = dataclasses.replace(rig, source_points=plain_points, landmark_offset=None)
    assert np.allclose(rig.face_margin(), plain.face_margin())
    assert np.allclose(rig.landmark_reach(), plain.landmark_reach())
