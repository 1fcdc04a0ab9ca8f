"""Eyes, mouth and the neutral face on real footage (issue 11): measured with MediaPipe on the
driver and on the output, by the functions in app/face_metrics.py."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from app.animator import MotionStabilizer
from app import landmarks as lm
from app.avatar import load_avatar
from app.face_metrics import mouth_gap, mouth_sync
from app.neutral import NeutralSearch, choose_neutral
from app.pipeline import lookahead_neutral
from app.tracking import FaceObservation, FaceTracker

from .helpers import drive_frames, read_frames


@pytest.fixture(scope="module")
def d10_faces(data_dir) -> tuple[list[np.ndarray], list[np.ndarray]]:
    frames = read_frames(data_dir / "driving" / "lp_d10.mp4", limit=100)
    with FaceTracker() as tracker:
        return frames, [tracker.detect(f)[0].landmarks for f in frames]


def test_shut_eyes_sheet_has_a_rest_and_a_shut_tile_per_portrait(data_dir, tmp_path, capsys):
    """`python -m app.evaluate.closeups --shut-eyes FILE PORTRAIT...` writes one row per
    portrait, at rest and shut, labelled with MediaPipe's reading; a missing clip is a message."""
    from app.evaluate.closeups import TILE, main

    out = tmp_path / "shut.jpg"
    portraits = [str(data_dir / "portraits" / n) for n in ("lp_s9.jpg", "grace_hopper.jpg")]
    assert main(["--shut-eyes", str(out), *portraits]) == 0
    assert cv2.imread(str(out)).shape[:2] == (2 * TILE[1], 2 * TILE[0])
    assert main(["--clip", str(tmp_path / "none.mp4"), "--self-glances", str(tmp_path / "g.jpg")]) == 2
    assert "none.mp4" in capsys.readouterr().err


def test_close_up_moments_are_the_drivers_own_extremes(d10_faces):
    """The close-up sheets (python -m app.evaluate.closeups) show what their labels say: the
    blink is the driver's most shut frame, the open mouth its widest, the glances its iris's
    two extremes, the shut mouth a closed one."""
    from app.evaluate.closeups import pick_moments
    from app.face_metrics import eye_openness, iris_position

    faces = d10_faces[1]
    moments = dict(pick_moments(faces))
    gaps = [mouth_gap(p) for p in faces]
    assert moments["mouth open"] == int(np.argmax(gaps)) and gaps[moments["mouth shut"]] < 0.01
    assert moments["blink"] == int(np.argmin([eye_openness(p).mean() for p in faces]))
    x = [iris_position(p)[:, 0].mean() for p in faces]
    assert x[moments["glance -"]] < np.median(x) < x[moments["glance +"]]


def _obs(points: np.ndarray) -> FaceObservation:
    return FaceObservation(points.astype(np.float32), (512, 512))


def test_neutral_search_prefers_a_closed_mouth(d10_faces):
    _, faces = d10_faces
    gaps = np.array([mouth_gap(p) for p in faces])
    search = NeutralSearch()
    for p in faces[10:]:  # starts mid-word
        search.offer(p)
    assert mouth_gap(search.best) < 0.01 < gaps[10]
    assert mouth_gap(faces[choose_neutral(faces[10:]) + 10]) < 0.01


def test_a_better_neutral_eases_in_without_a_jump(d10_faces):
    """An open mouth held, then a shut one held: the shut one becomes the neutral. The motion
    goes over to it smoothly (measured against both, blended), not in one frame. (Measured on
    the whole motion: expression is measured from each neutral's lips brought together, so the
    lips themselves hardly change with the switch; the pose, brows and lids do.)"""
    _, faces = d10_faces
    stab = MotionStabilizer()
    seq = [faces[12]] * 10 + [faces[56]] * 40
    motions = [stab.update(_obs(p), i / 30) for i, p in enumerate(seq)]
    assert mouth_gap(stab.reference.landmarks) < 0.01  # the shut mouth is the neutral now
    assert abs(motions[-1].expression[14, 1]) < 1e-3  # and at rest against it
    vectors = np.array([m.to_vector() for m in motions])
    left = np.linalg.norm(vectors - vectors[-1], axis=1)  # how far from where it settles
    steps = np.abs(np.diff(left[10:]))  # after the driver's own change at frame 10
    assert left[10] > 0.05  # the switch has something to ease
    assert steps.max() < 0.3 * left[10]
    assert (steps > 0.02 * left[10]).sum() >= 5  # spread over frames


def test_the_first_frame_is_not_eased_in_but_a_face_found_later_is(d10_faces):
    """The very first frame has nothing shown before it to ease from: a clip that starts
    mid-word opens the mouth from its first frame (eased in from the rest face, its first
    third of a second was mute). A face found after frames without one still eases in."""
    _, faces = d10_faces
    open_at = int(np.argmax([mouth_gap(p) for p in faces]))
    stab = MotionStabilizer()
    stab.set_neutral(faces[56])  # a closed mouth, as the offline look-ahead picks
    first = stab.update(_obs(faces[open_at]), 0.0)
    assert abs(first.expression[14, 1]) > 0.02  # the lower lip is down at once
    late = MotionStabilizer()
    late.set_neutral(faces[56])
    for i in range(5):
        late.update(None, i / 30)
    found = late.update(_obs(faces[open_at]), 5 / 30)
    assert abs(found.expression[14, 1]) < 0.2 * abs(first.expression[14, 1])


def test_calibrate_overrides_the_search(d10_faces):
    _, faces = d10_faces
    stab = MotionStabilizer()
    stab.update(_obs(faces[0]), 0.0)
    stab.calibrate()
    stab.update(_obs(faces[12]), 1 / 30)  # open mouth, taken as neutral by request
    for i, p in enumerate(faces[13:70]):
        stab.update(_obs(p), (i + 2) / 30)
    assert np.array_equal(stab.reference.landmarks, faces[12].astype(np.float64))


def test_lip_sync_on_a_clip_that_starts_mid_word(data_dir, tmp_path):
    """lp_d10 cut to start at an open-mouth frame (frame 10). With the first face as neutral
    the portrait's mouth stayed shut for the first 1.5 s and mouth correlation was 0.52
    (opening ratio 0.05); the look-ahead neutral and a faster lip filter give about 0.87."""
    frames = read_frames(data_dir / "driving" / "lp_d10.mp4", limit=190)[10:]
    path = tmp_path / "mid_word.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, frames[0].shape[1::-1])
    for f in frames:
        writer.write(f)
    writer.release()
    neutral = lookahead_neutral(path)
    assert neutral is not None and mouth_gap(neutral) < 0.01
    with FaceTracker() as tracker:
        assert mouth_gap(tracker.detect(frames[0])[0].landmarks) > 0.05  # it does start mid-word
    avatar = load_avatar(data_dir / "portraits" / "grace_hopper.jpg")
    run = drive_frames(avatar, frames, 30, neutral=neutral)
    corr, ratio = mouth_sync(run["driver"], run["output"])
    assert corr >= 0.85 and ratio >= 0.5, (corr, ratio)


def test_iris_follows_the_drivers_glances(data_dir):
    """lp_d10 (glances) on the astronaut, MediaPipe's iris against the eye corners on both.
    With the warp alone the iris barely moved (gain 0.19); the avatar's own iris laid over
    its own sclera follows with correlation 0.91 (gain 0.38); placed against the posed corners
    and lids rather than its rest place, gain 0.54 (MediaPipe under-reads a painted iris: the
    posed landmarks themselves follow at gain 0.95, test below). The iris's old place painted
    out in the eye's own white rather than an inpainted grey (which MediaPipe read as a dark
    eye and centred its iris in), and the layer no longer faded over the first pixel of gaze
    (a ghost of the rest iris): x gain 0.71 corr 0.94, y gain 0.65 corr 0.82. With glances
    carried over as big as they are (retarget.GAZE_READ_GAIN): x gain 1.08 corr 0.96. Up and
    down is measured against the corners' line (face_metrics.iris_position)."""
    from app.face_metrics import gaze_follow

    avatar = load_avatar(data_dir / "portraits" / "astronaut.png")
    frames = read_frames(data_dir / "driving" / "lp_d10.mp4", limit=150, step=2)
    run = drive_frames(avatar, frames, 15)
    g = gaze_follow(run["driver"], run["output"])
    assert g["gaze_corr_x"] >= 0.9 and 0.85 <= g["gaze_gain_x"] <= 1.3, g
    assert g["gaze_corr_y"] >= 0.6 and g["gaze_gain_y"] >= 0.5, g


def test_gaze_is_not_scored_on_a_driver_who_does_not_glance(d10_faces):
    """A clip whose iris barely moves has no gaze to follow: its gain and correlation are NaN,
    not a correlation between two detectors' noise; a clip with glances is scored."""
    from app.face_metrics import gaze_follow

    faces = d10_faces[1]
    rng = np.random.default_rng(0)
    still = [faces[0] + np.pad(rng.normal(0, 0.2, (len(faces[0]), 2)), ((0, 0), (0, 1))) for _ in range(30)]
    g = gaze_follow(still, still[::-1])
    assert np.isnan(g["gaze_corr_x"]) and np.isnan(g["gaze_gain_y"])
    glancing = gaze_follow(faces, faces)
    assert glancing["gaze_corr_x"] == pytest.approx(1.0) and glancing["gaze_gain_x"] == pytest.approx(1.0)


def test_gaze_gain_scales_the_glance_and_zero_keeps_the_iris_still(data_dir):
    """The Gaze slider / --gaze-gain: 0 leaves the iris where it rests whatever the driver's
    glance, 0.5 moves it half as far as 1 (a glance well inside the eye)."""
    import dataclasses

    from app.options import OPTIONS, animator_settings, defaults
    from app.animator import AnimatorSettings
    from app.retarget import Motion, apply_motion

    avatar = load_avatar(data_dir / "portraits" / "astronaut.png")
    glance = dataclasses.replace(Motion.neutral(), gaze=np.array([[0.08, 0.0], [0.08, 0.0]]))
    iris = [lm.RIGHT_IRIS[0], lm.LEFT_IRIS[0]]
    moved = {}
    for gain in (0.0, 0.5, 1.0):
        settings = animator_settings(AnimatorSettings(), {**defaults(), "gaze_gain": gain}).retarget
        posed = apply_motion(avatar.face, glance, settings).landmarks
        moved[gain] = np.linalg.norm(posed[iris, :2] - avatar.face.landmarks[iris, :2], axis=1).mean()
    assert OPTIONS["gaze_gain"].flag == "--gaze-gain"
    assert moved[0.0] < 1e-6 and moved[1.0] > 1.0
    assert moved[0.5] == pytest.approx(moved[1.0] / 2, rel=0.05)


_LIDDED_EYES = ((lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER),
                (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER))


def _lids_drop(rest: np.ndarray, points: np.ndarray) -> list[float]:
    """Per eye (right, left): how far its lid points moved down the image from `rest`, on
    average, in its eye's widths."""
    out = []
    for corners, upper, lower in _LIDDED_EYES:
        width = np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
        idx = [*upper, *lower]
        out.append(float((points[idx, 1] - rest[idx, 1]).mean() / width))
    return out


def test_the_lids_follow_the_drivers_eye_opening_up_and_down(data_dir):
    """A glance down carries the lids down with it (on real footage the lids' midline moves
    with the iris, about a third as far): the driver's eye opening moving as a whole against
    its corners moves the avatar's, as the same share of its eye's width, with the gap kept.
    Placed from the openness alone, the avatar's lids stayed where they rest; a shut eye's
    lids still meet where a blink lays them."""
    from app.retarget import DriverReference, RetargetSettings, apply_motion, measure_motion

    avatar = load_avatar(data_dir / "portraits" / "astronaut.png")
    rest = avatar.face.landmarks
    ref = DriverReference.from_landmarks(rest)
    eyes = _LIDDED_EYES

    def lids_drop(points: np.ndarray) -> list[float]:
        return _lids_drop(rest, points)

    down = rest.copy()
    for corners, upper, lower in eyes:
        width = np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
        down[[*upper, *lower], 1] += 0.04 * width
    posed = apply_motion(avatar.face, measure_motion(ref, down), RetargetSettings(), reference=ref).landmarks
    assert all(0.025 < d < 0.055 for d in lids_drop(posed)), lids_drop(posed)
    gap = [np.linalg.norm(posed[list(u), :2] - posed[list(lo), :2], axis=1).mean()
           / np.linalg.norm(rest[list(u), :2] - rest[list(lo), :2], axis=1).mean() for _, u, lo in eyes]
    assert all(0.9 < g < 1.1 for g in gap), gap

    shut = down.copy()
    for corners, upper, lower in eyes:
        shut[list(upper), :2] = shut[list(lower), :2]  # shut, its lids meeting low in the eye
    shut_posed = apply_motion(avatar.face, measure_motion(ref, shut), RetargetSettings(), reference=ref).landmarks
    plain = apply_motion(avatar.face, measure_motion(ref, rest), RetargetSettings(), reference=ref).landmarks
    for corners, upper, lower in eyes:
        meet = shut_posed[[*upper, *lower], :2].mean(axis=0)
        rest_meet = (0.75 * rest[list(lower), :2] + 0.25 * rest[list(upper), :2]).mean(axis=0)
        assert np.linalg.norm(meet - rest_meet) < 0.02 * np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
    assert np.allclose(lids_drop(plain), 0.0, atol=1e-6)

    thrown = rest.copy()  # a tracking glitch: the lids half an eye width down
    for corners, upper, lower in eyes:
        width = np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
        thrown[[*upper, *lower], 1] += 0.5 * width
    posed = apply_motion(avatar.face, measure_motion(ref, thrown), RetargetSettings(), reference=ref).landmarks
    assert all(d < 0.1 for d in lids_drop(posed)), lids_drop(posed)


def test_the_lids_shared_move_is_one_for_both_eyes_but_not_from_a_shut_one(data_dir):
    """The driver's two eyes' lids read apart (one pair 0.04 of an eye's width down, the other
    still: MediaPipe's noise, or a blink's first frame): both of the portrait's pairs move by
    the same, half of it, instead of one lower than the other. A shutting eye's lids count for
    nothing."""
    import dataclasses

    from app.retarget import DriverReference, RetargetSettings, apply_motion, measure_motion

    avatar = load_avatar(data_dir / "portraits" / "astronaut.png")
    rest = avatar.face.landmarks
    ref = DriverReference.from_landmarks(rest)

    def drops(points: np.ndarray) -> list[float]:
        return _lids_drop(rest, points)

    one = rest.copy()
    corners, upper, lower = _LIDDED_EYES[0]
    one[[*upper, *lower], 1] += 0.04 * np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
    motion = measure_motion(ref, one)
    right, left = drops(apply_motion(avatar.face, motion, RetargetSettings(), reference=ref).landmarks)
    assert abs(right - left) < 0.003 and 0.012 < right < 0.03, (right, left)
    # The other eye shut (a wink): the open eye's lids keep their own move.
    wink = dataclasses.replace(motion, eye_openness=np.array([1.0, 0.05]))
    right, _ = drops(apply_motion(avatar.face, wink, RetargetSettings(), reference=ref).landmarks)
    assert 0.025 < right < 0.055, right


def test_the_upper_lid_rides_on_a_glance_up_and_down(data_dir):
    """A painted iris shows only what its lids leave uncovered: moved down alone, its hidden
    top came out as a flat white cap over a shrunken iris (a startled stare, not a look down),
    and moved up it slid under the upper lid. The upper lid now takes the iris's move across
    the eye with it and the lower lid a little of it, none at the corners; where the driver's
    own lids have already moved that way, that move counts towards it."""
    import dataclasses

    from app.retarget import DriverReference, Motion, RetargetSettings, apply_motion, measure_motion

    avatar = load_avatar(data_dir / "portraits" / "astronaut.png")
    rest = avatar.face.landmarks
    eyes = ((lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER, lm.RIGHT_IRIS),
            (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER, lm.LEFT_IRIS))

    def moves(points: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Per eye: the iris centre's, the upper and lower lids' middles' and the corners' moves
        down the image, in eye widths."""
        out = []
        for corners, upper, lower, iris in eyes:
            width = np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
            mid_up, mid_low = list(upper[2:5]), list(lower[2:5])
            out.append(tuple(float((points[idx, 1] - rest[idx, 1]).mean() / width)
                             for idx in ([iris[0]], mid_up, mid_low, list(corners))))
        return out

    for gy in (-0.1, 0.1):
        glance = dataclasses.replace(Motion.neutral(), gaze=np.array([[0.0, gy], [0.0, gy]]))
        for iris, up, low, corner in moves(apply_motion(avatar.face, glance, RetargetSettings()).landmarks):
            assert abs(iris) > 0.05, iris
            assert 0.8 * abs(iris) < up * np.sign(iris) < 1.3 * abs(iris), (gy, iris, up)
            assert 0.0 < low * np.sign(iris) < 0.5 * abs(iris), (gy, iris, low)
            assert abs(corner) < 1e-9

    # The driver's lids already moved down with its eye: the upper lid goes no further than
    # the iris asks (the two moves are not added).
    ref = DriverReference.from_landmarks(rest)
    down = rest.copy()
    for corners, upper, lower, _ in eyes:
        width = np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
        down[[*upper, *lower], 1] += 0.04 * width
    motion = dataclasses.replace(measure_motion(ref, down), gaze=np.array([[0.0, 0.1], [0.0, 0.1]]))
    for iris, up, _, _ in moves(apply_motion(avatar.face, motion, RetargetSettings(), reference=ref).landmarks):
        assert 0.8 * iris < up < 1.3 * iris, (iris, up)

    # A smile's narrowing lowers the lids; a glance up still lifts the upper one with the iris.
    narrowed = dataclasses.replace(Motion.neutral(), eye_openness=np.array([0.85, 0.85]))
    glancing = dataclasses.replace(narrowed, gaze=np.array([[0.0, -0.1], [0.0, -0.1]]))
    still = moves(apply_motion(avatar.face, narrowed, RetargetSettings()).landmarks)
    for (iris, up, _, _), (_, up0, _, _) in zip(moves(apply_motion(avatar.face, glancing, RetargetSettings()).landmarks),
                                                still):
        assert iris < -0.05 and up - up0 < 0.8 * iris, (iris, up, up0)

    # One eye's noisier height reading does not set one lid lower than the other.
    uneven = dataclasses.replace(Motion.neutral(), gaze=np.array([[0.0, 0.02], [0.0, 0.12]]))
    (iris_r, up_r, _, _), (iris_l, up_l, _, _) = moves(apply_motion(avatar.face, uneven, RetargetSettings()).landmarks)
    assert abs(iris_r - iris_l) < 0.01 and abs(up_r - up_l) < 0.01, (iris_r, iris_l, up_r, up_l)


def test_both_eyes_take_one_height_of_gaze_but_a_shutting_eyes_reading_counts_for_nothing():
    from app.retarget import conjugate_gaze

    gaze = np.array([[0.05, 0.02], [-0.04, 0.12]])
    both = conjugate_gaze(gaze, np.array([1.0, 1.0]))
    assert both[0, 1] == both[1, 1] == pytest.approx(0.07)
    assert np.array_equal(both[:, 0], gaze[:, 0])  # sideways, each eye its own
    one = conjugate_gaze(gaze, np.array([1.0, 0.0]))  # the left eye shutting: its reading is a guess
    assert one[0, 1] == one[1, 1] == pytest.approx(0.02)
    shut = conjugate_gaze(gaze, np.array([0.0, 0.0]))
    assert np.array_equal(shut, gaze)


def test_self_reenacted_glances_read_as_big_as_the_real_ones(data_dir):
    """lp_d10 driving its own first frame: the output's iris, read by MediaPipe, moves about as
    far as the real one in the same frames. Copied as MediaPipe reads the driver, it moved 0.75
    as far sideways (0.52 on lp_d3), the eye's white beside a real glance barely showing."""
    from app.avatar import prepare_avatar
    from app.face_metrics import gaze_follow

    frames = read_frames(data_dir / "driving" / "lp_d10.mp4", limit=150, step=2)
    with FaceTracker() as tracker:
        first = tracker.detect(frames[0])[0].landmarks
    run = drive_frames(prepare_avatar(frames[0]), frames, 15, neutral=first)
    g = gaze_follow(run["driver"], run["output"])
    assert 0.85 <= g["gaze_gain_x"] <= 1.3 and g["gaze_corr_x"] >= 0.9, g


@pytest.mark.parametrize("portrait", ["lp_s9.jpg", "astronaut.png"])
def test_posed_iris_moves_at_the_drivers_amplitude(data_dir, portrait):
    """The retargeted landmarks carry the driver's gaze whole, both axes, measured as the
    metric measures it (iris against the corners), times GAZE_READ_GAIN (what
    MediaPipe's reading of a glance leaves out), as far as the posed eye lets it show. Placing the iris
    at its rest place plus the gaze lost the lids' own move with a glance: x gain 0.63, y 0.6
    on lp_d10."""
    from app.face_metrics import gaze_follow
    from app.retarget import GAZE_READ_GAIN, DriverReference, RetargetSettings, apply_motion, measure_motion

    frames = read_frames(data_dir / "driving" / "lp_d10.mp4", limit=100, step=3)
    with FaceTracker() as tracker:
        faces = [f[0].landmarks for f in map(tracker.detect, frames) if f]
    ref = DriverReference.from_landmarks(faces[choose_neutral(faces)])
    avatar = load_avatar(data_dir / "portraits" / portrait)
    posed = [apply_motion(avatar.face, measure_motion(ref, p), RetargetSettings(), ref).landmarks for p in faces]
    g = gaze_follow(faces, posed)
    assert 0.65 <= g["gaze_gain_x"] / GAZE_READ_GAIN[0] <= 1.15 and g["gaze_corr_x"] >= 0.85, g
    assert 0.65 <= g["gaze_gain_y"] / GAZE_READ_GAIN[1] <= 1.15 and g["gaze_corr_y"] >= 0.75, g
    # However far the driver glances, the iris's centre stays inside the posed opening (an iris
    # sent into the corner, or above a narrow eye's lid, was clipped away to a white eye).
    from app.eyes import eye_contour, openness

    for pts in posed:
        for eye, iris in enumerate((lm.RIGHT_IRIS, lm.LEFT_IRIS)):
            if openness(pts, eye) < 0.5 * openness(avatar.face.landmarks, eye):
                continue  # a closing eye lays its iris between the lids (retarget._between_lids)
            contour = eye_contour(pts, eye).astype(np.float32)
            assert cv2.pointPolygonTest(contour, tuple(map(float, pts[iris[0], :2])), True) > 0


def test_a_stare_keeps_the_iris_and_a_glance_up_moves_it(d10_faces, data_dir):
    """Vertical gaze is the iris against the eye corners, which the lids do not move: a driver
    whose lids open wide (a stare) while the iris stays leaves the portrait's iris where it
    rests, and an iris raised against still corners raises the portrait's. Measured against
    the lids' midline, the stare was carried over as a glance down (the lids' midline rose
    above a still iris) and the portrait's iris dipped by a fifth of its eye's height."""
    from app.eyes import openness
    from app.retarget import DriverReference, RetargetSettings, apply_motion, measure_motion

    faces = d10_faces[1]
    neutral = faces[choose_neutral(faces)].astype(np.float64)
    ref = DriverReference.from_landmarks(neutral)
    avatar = load_avatar(data_dir / "portraits" / "lp_s9.jpg")
    rest = avatar.face.landmarks
    up = [lm.RIGHT_EYE_UPPER, lm.LEFT_EYE_UPPER]
    eyes = list(zip((lm.RIGHT_IRIS, lm.LEFT_IRIS), (lm.RIGHT_EYE_CORNERS, lm.LEFT_EYE_CORNERS)))

    def iris_drop(driver: np.ndarray) -> list[float]:
        posed = apply_motion(avatar.face, measure_motion(ref, driver), RetargetSettings(), ref).landmarks
        drops = []
        for (iris, corners), eye in zip(eyes, (0, 1)):
            assert openness(posed, eye) > openness(rest, eye) or driver is not stare
            height = openness(rest, eye) * np.linalg.norm(rest[corners[0], :2] - rest[corners[1], :2])
            drops.append(float(posed[iris[0], 1] - rest[iris[0], 1]) / height)
        return drops

    stare = neutral.copy()
    for eye, (iris, corners) in enumerate(eyes):
        width = np.linalg.norm(neutral[corners[0], :2] - neutral[corners[1], :2])
        stare[list(up[eye]), 1] -= 0.1 * width  # the upper lid rises a tenth of the eye's width
    assert all(abs(d) < 0.05 for d in iris_drop(stare)), iris_drop(stare)

    glance = neutral.copy()
    for iris, corners in eyes:
        width = np.linalg.norm(neutral[corners[0], :2] - neutral[corners[1], :2])
        glance[list(iris), 1] -= 0.05 * width
    assert all(d < -0.1 for d in iris_drop(glance)), iris_drop(glance)


def test_the_iris_is_painted_out_in_the_eyes_own_white(data_dir):
    """Where the iris moves away from, the eye shows its own sclera, as light as its white
    round the iris, not a grey inpainting of lids and lashes (which read as a dark eye)."""
    from app.gaze import GazeLayer, _sclera_colour
    from app.eyes import eye_contour

    avatar = load_avatar(data_dir / "portraits" / "astronaut.png")
    rest = avatar.face.landmarks[:, :2]
    layer = GazeLayer(avatar.image, rest)
    h, w = avatar.image.shape[:2]
    for eye, iris in enumerate((lm.RIGHT_IRIS, lm.LEFT_IRIS)):
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(opening, [np.round(eye_contour(rest, eye)).astype(np.int32)], 255)
        disc = np.zeros((h, w), np.uint8)
        cv2.circle(disc, tuple(np.round(rest[iris[0]]).astype(int)), int(layer.patches[eye].radius * 0.7), 255, -1)
        inside = (opening > 0) & (disc > 0)
        white = _sclera_colour(avatar.image, opening, disc).sum()
        assert avatar.image[inside].sum(axis=1).mean() < 0.6 * white  # a dark iris was there
        assert layer.plate[inside].sum(axis=1).mean() > 0.85 * white, eye


def test_a_cartoon_iris_is_moved_whole(data_dir):
    """lp_s7's cartoon iris is about a third wider than MediaPipe's human-sized iris: the
    layer takes its painted size (`gaze.iris_extent`), so the plate the iris moves over holds
    none of it. At the landmarks' size, 8% and 24% of each eye's opening stayed blue on the
    plate: a blue ring left behind on every glance, a doubled iris. A photo's iris is taken at
    no more than a fifth over the landmarks' size."""
    from app.gaze import GazeLayer
    from app.eyes import eye_contour

    avatar = load_avatar(data_dir / "portraits" / "lp_s7.jpg")
    rest = avatar.face.landmarks[:, :2]
    layer = GazeLayer(avatar.image, rest)
    h, w = avatar.image.shape[:2]
    image_b = cv2.cvtColor(avatar.image, cv2.COLOR_BGR2LAB)[..., 2]
    plate_b = cv2.cvtColor(layer.plate, cv2.COLOR_BGR2LAB)[..., 2]
    for eye, iris in enumerate((lm.RIGHT_IRIS, lm.LEFT_IRIS)):
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(opening, [np.round(eye_contour(rest, eye)).astype(np.int32)], 255)
        inside = opening > 0
        assert (image_b[inside] < 118).mean() > 0.15  # a blue iris fills much of the eye
        assert (plate_b[inside] < 118).mean() < 0.05, eye
        landmarks = np.linalg.norm(rest[list(iris[1:])] - rest[iris[0]], axis=1).mean()
        assert layer.patches[eye].radius > 1.15 * landmarks
    photo = load_avatar(data_dir / "portraits" / "lp_s2.jpg")
    layer = GazeLayer(photo.image, photo.face.landmarks[:, :2])
    for eye, iris in enumerate((lm.RIGHT_IRIS, lm.LEFT_IRIS)):
        p = photo.face.landmarks[:, :2]
        landmarks = np.linalg.norm(p[list(iris[1:])] - p[iris[0]], axis=1).mean()
        assert layer.patches[eye].radius <= 1.2 * landmarks


def test_a_cartoon_glance_leaves_no_iris_behind(data_dir):
    """lp_s7 glancing sideways: of the painted iris's rest place that the moved iris no
    longer covers, inside the eye, little is still blue. With the iris patch at MediaPipe's
    size and the plate painted out only within the lid landmarks, 41% and 67% was: a second
    iris beside the first. Now the iris beyond the lid landmarks is taken in too
    (`gaze.iris_beyond_lids`); on a photo nothing is (its lashes lie there)."""
    from app.gaze import GazeLayer
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from app.eyes import eye_contour
    from engines.torch_engine import TorchFieldEngine
    import dataclasses

    avatar = load_avatar(data_dir / "portraits" / "lp_s7.jpg")
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    rest = avatar.face.landmarks
    posed = apply_motion(avatar.face, dataclasses.replace(Motion.neutral(), gaze=np.array([[-0.09, 0.0]] * 2)),
                         RetargetSettings())
    blue = cv2.cvtColor(renderer.render(posed), cv2.COLOR_BGR2LAB)[..., 2] < 118
    h, w = blue.shape
    ys, xs = np.mgrid[0:h, 0:w]
    left_blue = []
    for eye, iris in enumerate((lm.RIGHT_IRIS, lm.LEFT_IRIS)):
        c0, c1 = rest[iris[0], :2], posed.landmarks[iris[0], :2]
        painted = 1.3 * np.linalg.norm(rest[list(iris[1:]), :2] - c0, axis=1).mean()
        opening = np.zeros((h, w), np.uint8)
        cv2.fillPoly(opening, [np.round(eye_contour(rest, eye)).astype(np.int32)], 255)
        left = ((np.hypot(xs - c0[0], ys - c0[1]) <= painted) & (np.hypot(xs - c1[0], ys - c1[1]) > painted + 1)
                & (opening > 0))
        assert left.sum() > 50  # the glance uncovers a good part of the rest place
        left_blue.append(blue[left].mean())
    assert max(left_blue) < 0.3 and np.mean(left_blue) < 0.15, left_blue
    assert GazeLayer(avatar.image, rest[:, :2]).beyond.any()
    for photo in ("tight_grace_hopper.jpg", "astronaut.png", "grace_hopper.jpg"):
        other = load_avatar(data_dir / "portraits" / photo)
        assert not GazeLayer(other.image, other.face.landmarks[:, :2]).beyond.any(), photo


def test_a_cartoon_glance_uncovers_the_eyes_white_not_a_ghost_of_its_iris(data_dir):
    """lp_s7 glancing either way: where the painted iris was and no longer is, the eye shows
    its own white. MediaPipe's iris centre lies a pixel or two beside the painted one, and a
    light reflection inside the cartoon's iris cut its measured radius short: a disc about
    the landmarks left a crescent of the iris's rim on the plate, and the fill round it took
    the rim's blue in (a blue-grey band with a hard edge beside every glance, mean ΔE 56 to
    the eye's white). Now the painted iris's own centre and span are found
    (`gaze.iris_extent`)."""
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from app.eyes import eye_contour
    from engines.torch_engine import TorchFieldEngine
    import dataclasses

    avatar = load_avatar(data_dir / "portraits" / "lp_s7.jpg")
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    rest = avatar.face.landmarks
    worst = []
    for gx in (-0.09, 0.09):
        posed = apply_motion(avatar.face, dataclasses.replace(Motion.neutral(), gaze=np.array([[gx, 0.0]] * 2)),
                             RetargetSettings())
        lab = cv2.cvtColor(renderer.render(posed), cv2.COLOR_BGR2LAB).astype(np.float32)
        h, w = lab.shape[:2]
        ys, xs = np.mgrid[0:h, 0:w]
        for eye, iris in enumerate((lm.RIGHT_IRIS, lm.LEFT_IRIS)):
            c0, c1 = rest[iris[0], :2], posed.landmarks[iris[0], :2]
            painted = 1.3 * np.linalg.norm(rest[list(iris[1:]), :2] - c0, axis=1).mean()
            opening = np.zeros((h, w), np.uint8)
            cv2.fillPoly(opening, [np.round(eye_contour(rest, eye)).astype(np.int32)], 255)
            d0, d1 = np.hypot(xs - c0[0], ys - c0[1]), np.hypot(xs - c1[0], ys - c1[1])
            left = (d0 <= painted) & (d1 > painted + 1) & (opening > 0)
            white_area = lab[(opening > 0) & (d0 > painted + 2) & (d1 > painted + 2)]
            white = np.median(white_area[white_area[:, 0] >= np.median(white_area[:, 0])], axis=0)
            assert left.sum() > 100
            worst.append(float(np.linalg.norm(lab[left] - white, axis=1).mean()))
    assert max(worst) < 25, worst


def test_an_iris_hidden_above_and_below_is_completed_ring_by_ring():
    """A narrow eye shows only the iris's middle band; the caps hidden above and below it are
    completed from the band at the same distance from the centre: the dark outer ring goes
    on round the iris, the lighter middle stays lighter. (One flat colour there moved down
    with a glance as a block with a straight top.)"""
    from app.gaze import _complete_iris

    size, c = 21, 10
    ys, xs = np.mgrid[0:size, 0:size]
    r = np.hypot(xs - c, ys - c)
    grey = np.where(r < 5, 40, np.where(r < 7.5, 120, 30)).astype(np.uint8)
    patch = np.repeat(grey[..., None], 3, axis=2)
    seen = (np.abs(ys - c) <= 3) & (r <= 9)
    hidden = patch.copy()
    hidden[~seen] = 255  # what the lids showed there at rest: skin
    done = _complete_iris(hidden, seen, np.array([c, c], float))
    assert done[2, c, 0] < 60  # r = 8: the dark outer ring
    assert done[4, c, 0] > 90  # r = 6: the iris's lighter middle
    assert done[16, c, 0] > 90 and done[18, c, 0] < 60  # and the same below


def test_gaze_layer_keeps_a_still_eye_unchanged(data_dir):
    """At rest the iris is laid back where it was: the eye is the portrait's own."""
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(data_dir / "portraits" / "lp_s9.jpg")
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    rest = renderer.render(apply_motion(avatar.face, Motion.neutral(), RetargetSettings()))
    eye = avatar.face.landmarks[[33, 133, 159, 145], :2]
    (x0, y0), (x1, y1) = eye.min(axis=0).astype(int) - 2, eye.max(axis=0).astype(int) + 3
    diff = np.abs(rest[y0:y1, x0:x1].astype(int) - avatar.image[y0:y1, x0:x1])
    assert diff.mean() < 6, diff.mean()


def test_both_eyes_close_together_but_a_wink_stays_one_sided():
    from app.retarget import RetargetSettings, _paired_blink

    s = RetargetSettings()
    both = _paired_blink(np.array([0.2, 0.45]), s)  # one blink, the lids read a little apart
    assert both[0] == both[1] == 0.2
    wink = _paired_blink(np.array([0.1, 0.9]), s)
    assert wink[0] == 0.1 and wink[1] == 0.9
    squint = _paired_blink(np.array([0.6, 0.65]), s)  # narrowing: kept as it is, not shut
    assert squint.min() == 0.6


def test_a_blink_read_a_frame_apart_closes_both_eyes_as_one():
    """lp_d12 blinks in the middle of a turn and MediaPipe reads its lids a frame apart (0.76
    beside 0.61, then 0.49 beside 0.64): paired only once both were under 0.6, the portrait
    winked. The eyes are now drawn together as soon as the more open one starts closing, fading
    out towards the rest opening and towards a wink's spread, with no step anywhere."""
    from app.retarget import RetargetSettings, _paired_blink

    s = RetargetSettings()
    for pair in ([0.76, 0.61], [0.49, 0.64]):
        out = _paired_blink(np.array(pair), s)
        assert abs(out[0] - out[1]) < 0.07, (pair, out)
        assert out.min() == min(pair)  # the eye further shut leads
    rest = _paired_blink(np.array([1.05, 0.9]), s)  # two open eyes keep their own shapes
    assert rest[0] == 1.05 and rest[1] == 0.9
    wink = _paired_blink(np.array([0.2, 0.95]), s)
    assert wink[0] == 0.2 and wink[1] == 0.95
    for other in (0.3, 0.5):  # no jump as the more open eye or the spread sweeps through
        tops = np.linspace(other, other + 0.7, 141)
        outs = np.array([_paired_blink(np.array([other, t]), s)[1] for t in tops])
        # Steps of 0.005: the old hard line jumped by the two eyes' whole spread (0.25 here).
        assert np.abs(np.diff(outs)).max() < 0.04, np.abs(np.diff(outs)).max()


def test_narrowing_narrows_and_only_a_shut_eye_shuts():
    from app.retarget import RetargetSettings, _blink_curve

    s = RetargetSettings()
    curve = [_blink_curve(r, s.blink_closed_below, s.blink_open_above) for r in np.linspace(0, 1.2, 121)]
    assert np.all(np.diff(curve) >= 0)  # monotone: lids never reopen while the driver's close
    assert _blink_curve(0.25, s.blink_closed_below, s.blink_open_above) == 0.0  # a blink shuts
    for squint in (0.5, 0.57, 0.65):  # a laugh's narrowing (0.57 went to 0.36 with 0.4/0.75)
        assert _blink_curve(squint, s.blink_closed_below, s.blink_open_above) >= 0.75 * squint


def test_shut_lids_take_no_tint_and_no_darker_line_than_their_own_lashes(data_dir):
    """A grey portrait stays grey on a blink, and the lash line is never darker than the
    portrait's own lashes (a fixed 50% darkening drew black lines on pale paintings)."""
    from app.eyes import close_eyes, lash_colours, openness

    image = cv2.cvtColor(cv2.imread(str(data_dir / "portraits" / "lp_s2.jpg"), cv2.IMREAD_GRAYSCALE),
                         cv2.COLOR_GRAY2BGR)
    image = cv2.resize(image, (512, 512), interpolation=cv2.INTER_AREA)
    with FaceTracker() as tracker:
        rest = tracker.detect(image)[0].landmarks.astype(np.float64)
    lashes = lash_colours(image, rest)
    shut = rest.copy()
    for upper, lower in ((lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER), (lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER)):
        meet = (rest[list(upper)] + rest[list(lower)]) / 2
        shut[list(upper)] = shut[list(lower)] = meet
    canvas = image.copy()
    close_eyes(canvas, shut, (openness(rest, 0), openness(rest, 1)), lashes)
    changed = np.any(canvas != image, axis=2)
    assert changed.sum() > 20  # a lash line was drawn
    assert np.ptp(canvas.astype(int), axis=2).max() <= 1  # and no tint
    assert canvas[changed].min() >= lashes.min() - 1  # never darker than the portrait's lashes


@pytest.mark.parametrize("portrait", ["lp_s9.jpg", "astronaut.png"])
def test_a_shut_eye_stretches_its_lid_skin_no_more_than_four_times(data_dir, portrait):
    """The lid skin laid over a shut eye is stretched at most 4 times in area anywhere in the
    eye's band. Squeezed hard towards the lashes it was stretched 8-10 times at the band's top:
    vertical streaks over the eye, and MediaPipe read one eye of a pair open."""
    import dataclasses

    from app.eyes import eye_contour
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from app.warp_quality import jacobian
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(data_dir / "portraits" / portrait)
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    shut = dataclasses.replace(Motion.neutral(), eye_openness=np.array([0.05, 0.05]))
    posed = apply_motion(avatar.face, shut, RetargetSettings())
    mx, my = renderer.frame_maps(posed)
    xx, xy, yx, yy = jacobian(mx, my)
    area = xx * yy - xy * yx  # avatar area per output area: 1/4 is a fourfold stretch
    local = renderer.local_landmarks(posed)
    for eye in (0, 1):
        contour = eye_contour(local, eye)
        width = float(np.ptp(contour[:, 0]))
        (x0, y0), (x1, y1) = contour.min(axis=0) - (0, 0.7 * width), contour.max(axis=0) + (0, 0.7 * width)
        band = area[int(y0):int(y1), int(x0):int(x1)]
        assert band.min() > 0.25, (eye, band.min())


@pytest.mark.parametrize("portrait", ["tight_grace_hopper.jpg", "st_art_6.png"])
def test_a_blink_leaves_a_glasses_rim_where_it_was(data_dir, portrait):
    """Both eyes shut on a portrait with glasses: the rim above each eye moves by under 7% of
    the eye's width (what is left is the coarse warp's own pull). The lids' band reached 0.6
    eye widths up, through the rim, and dragged it down with the lid by 10-13% of the eye's
    width (8-11 px on tight_grace_hopper: a kinked frame on every blink)."""
    import dataclasses

    from app.eyes import _eye_axes, _lid_curves, lid_room
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(data_dir / "portraits" / portrait)
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    rest = renderer.rest_landmarks
    crop = avatar.rig.crop
    room = lid_room(avatar.image[crop.y0:crop.y1, crop.x0:crop.x1], rest)
    shut = dataclasses.replace(Motion.neutral(), eye_openness=np.array([0.05, 0.05]))
    mx, my = renderer.frame_maps(apply_motion(avatar.face, shut, RetargetSettings()))
    for eye in (0, 1):
        su, sl = _lid_curves(rest, eye)
        c0, e, _, width, ns = _eye_axes(su, su, sl)
        us = np.linspace(0.0, 1.0, room.shape[1])
        assert (room[eye] < 0.4 * width).mean() > 0.6  # the rim is found, along the eye
        u = (su - c0) @ e / width
        lid = np.stack([np.interp(us, u, su[:, k]) for k in (0, 1)], 1)
        middle = np.isfinite(room[eye]) & (us > 0.2) & (us < 0.8)
        rim = lid[middle] - (room[eye][middle] + 2.0)[:, None] * ns  # just inside the rim's dark edge
        x, y = rim[:, 0].astype(np.float32), rim[:, 1].astype(np.float32)
        sx = cv2.remap(mx, x[None], y[None], cv2.INTER_LINEAR)[0]
        sy = cv2.remap(my, x[None], y[None], cv2.INTER_LINEAR)[0]
        moved = np.hypot(sx - x, sy - y)
        assert moved.max() < 0.07 * width, (eye, width, moved.round(1))


def test_a_blink_on_a_portrait_without_glasses_is_as_before(data_dir):
    """No hard edge above the lids (the Mona Lisa): the lids' band keeps its whole depth, and a
    blink renders exactly as with no edge search at all (a band cut short everywhere changed
    every portrait's blink, by up to 29 grey levels)."""
    import dataclasses

    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(data_dir / "portraits" / "lp_s9.jpg")
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    for k in (0.05, 0.4):
        posed = apply_motion(avatar.face, dataclasses.replace(Motion.neutral(), eye_openness=np.array([k, k])),
                             RetargetSettings())
        mx, my = renderer.frame_maps(posed)
        renderer._lid_room, room = None, renderer._lid_room
        nx, ny = renderer.frame_maps(posed)
        renderer._lid_room = room
        assert np.array_equal(mx, nx) and np.array_equal(my, ny)


@pytest.fixture(scope="module")
def laughing_portrait(data_dir, tmp_path_factory):
    """A frame of lp_d12 at its widest laugh, saved as an image: an open-mouth portrait."""
    frames = read_frames(data_dir / "driving" / "lp_d12.mp4", step=4)
    with FaceTracker() as tracker:
        gaps = [mouth_gap(f[0].landmarks) if (f := tracker.detect(im)) else 0.0 for im in frames]
    path = tmp_path_factory.mktemp("open_mouth") / "laugh.png"
    cv2.imwrite(str(path), frames[int(np.argmax(gaps))])
    assert max(gaps) > 0.08  # a wide-open mouth
    return path


def test_an_open_mouth_portrait_closes_its_mouth(data_dir, laughing_portrait):
    """Driven by a talking clip, the laughing portrait's lips close wherever the driver's do.
    They stayed open before (the portrait's own gap, about 17% of the face size); posed from
    its lips closed, MediaPipe read a median 1.85% (a sliver of the squeezed interior between
    the lips); with the lips re-laid at pixel resolution (app/lips.py) it reads under 1%."""
    avatar = load_avatar(laughing_portrait)
    frames = read_frames(data_dir / "driving" / "lp_d10.mp4", limit=60, step=3)
    run = drive_frames(avatar, frames, 10, keep_images=True)
    d = np.array([mouth_gap(p) for p in run["driver"]])
    o = np.array([mouth_gap(p) for p in run["output"]])
    closed = d < 0.01
    assert closed.sum() >= 5
    assert np.median(o[closed]) < 0.01, o[closed]
    assert o[~closed].max() > 0.03  # and it still opens with the driver


def test_a_neutral_that_shows_its_teeth_is_carried_over_open(laughing_portrait):
    """Expression is measured from the driver's neutral with its lips brought together, as the
    avatar is posed from its own: a driver whose neutral is an open laugh (Calibrate pressed
    mid-laugh, or self-reenactment of a clip that starts with a smile showing the teeth) drives
    an open mouth at that neutral, and a shut one when its lips meet. Measured from the open
    neutral itself, the avatar's mouth was shut at the driver's neutral (lp_src_s29's
    self-reenactment: 6.4% of the face open in the real frame, 0.7% in the posed one)."""
    from app.retarget import DriverReference, RetargetSettings, apply_motion, close_rest_lips, measure_motion

    avatar = load_avatar(laughing_portrait)
    laugh = avatar.face.landmarks
    reference = DriverReference.from_landmarks(laugh)
    at_neutral = apply_motion(avatar.face, measure_motion(reference, laugh), RetargetSettings(), reference)
    assert mouth_gap(at_neutral.landmarks) > 0.9 * mouth_gap(laugh) > 0.07
    # The driver's lips meeting: the avatar is exactly at its own closed-lip pose.
    shut = close_rest_lips(laugh)
    closing = apply_motion(avatar.face, measure_motion(reference, shut), RetargetSettings(), reference)
    assert np.abs(closing.landmarks - shut).max() < 1e-6


def test_a_wide_open_mouth_closes_by_the_jaw_and_keeps_its_lips_whole(laughing_portrait):
    """Closing a laughing portrait's mouth: each lip keeps its own height and the chin rises
    with the lower lip. (The lips' falloff started at the inner lip line, so the outer line
    stayed where it was: the closed lower lip was a pink bulge twice its height, read as a
    tongue stuck out, hdtf_aoc's first frame.)"""
    from app.retarget import close_rest_lips

    open_ = load_avatar(laughing_portrait).face.landmarks
    shut = close_rest_lips(open_)

    def height(p: np.ndarray, outer: int, inner: int) -> float:  # the portrait is upright
        return abs(float(p[outer, 1] - p[inner, 1]))

    gap = height(open_, lm.LOWER_INNER_LIP_MID, lm.UPPER_INNER_LIP_MID)
    assert height(shut, lm.LOWER_INNER_LIP_MID, lm.UPPER_INNER_LIP_MID) < 0.1 * gap  # shut
    for outer, inner in ((0, lm.UPPER_INNER_LIP_MID), (17, lm.LOWER_INNER_LIP_MID)):  # each lip's height
        assert abs(height(shut, outer, inner) - height(open_, outer, inner)) < 0.1 * gap
    rise = open_[lm.CHIN, 1] - shut[lm.CHIN, 1]
    assert rise > 0.3 * gap  # the chin comes up with the lower lip
    upper = shut[lm.UPPER_INNER_LIP_MID, 1] - open_[lm.UPPER_INNER_LIP_MID, 1]
    assert upper < 0.5 * gap  # the jaw does most of it


def test_a_closing_mouth_lifts_the_chin_evenly(laughing_portrait):
    """Closing a laughing portrait's mouth raises the chin's outline as one piece: every face
    oval point below the mouth, between its corners, rises at least three quarters as much as
    the chin's lowest point. Taken from the lips' per-pair gaps (nothing at the corners), the
    middle rose and the sides stayed: the outline was pulled into a V, creased down the chin
    (the oval points near the corners rose a sixth as much as the chin's middle)."""
    from app.retarget import close_rest_lips

    open_ = load_avatar(laughing_portrait).face.landmarks
    shut = close_rest_lips(open_)
    left, right = sorted(open_[list(lm.MOUTH_CORNERS), 0])
    below = [k for k in lm.FACE_OVAL
             if left <= open_[k, 0] <= right and open_[k, 1] > open_[lm.LOWER_INNER_LIP_MID, 1]]
    assert len(below) >= 4
    rise = open_[below, 1] - shut[below, 1]  # the portrait is upright
    chin = open_[lm.CHIN, 1] - shut[lm.CHIN, 1]
    assert chin > 0
    assert rise.min() >= 0.75 * chin, dict(zip(below, np.round(rise / chin, 2)))


def test_an_open_mouth_portraits_shut_lips_meet_on_a_shadow_not_on_its_teeth(laughing_portrait):
    """Its lips brought together, shut or a hair apart: along the line where they meet nothing
    is lighter than the lips themselves. (The warp's pixel centres fell now on a lip's margin,
    now between them on its squeezed teeth: a dotted seam, white and dark, up to L 137 against
    lips of 112.)"""
    import dataclasses

    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(laughing_portrait)
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    posed = apply_motion(avatar.face, Motion.neutral(), RetargetSettings())
    for apart in (0.0, 0.5, 1.0):
        pts = posed.landmarks.copy()
        pts[list(lm.LOWER_INNER_LIP), 1] += apart
        lightness = cv2.cvtColor(renderer.render(dataclasses.replace(posed, landmarks=pts)), cv2.COLOR_BGR2LAB)[..., 0]
        mid = (pts[list(lm.UPPER_INNER_LIP), :2] + pts[list(lm.LOWER_INNER_LIP), :2]) / 2
        t = np.linspace(0.0, len(mid) - 1, 200)
        line = np.stack([np.interp(t, np.arange(len(mid)), mid[:, k]) for k in (0, 1)], 1)
        seam = max(lightness[np.round(line[:, 1] + dy).astype(int), np.round(line[:, 0]).astype(int)].max()
                   for dy in (-1, 0, 1))
        lips = np.zeros(lightness.shape, np.uint8)
        cv2.fillPoly(lips, [np.round(pts[list(lm.OUTER_LIPS), :2]).astype(np.int32)], 1)
        cv2.fillPoly(lips, [np.round(pts[list(lm.INNER_LIPS), :2]).astype(np.int32)], 0)
        assert seam < np.median(lightness[lips > 0]), (apart, seam)


def test_an_open_mouth_portrait_opened_wider_keeps_its_teeth_off_its_lip(data_dir, d10_faces):
    """hdtf_aoc's first frame (mid-word, teeth showing) opened as wide as lp_d10's widest: the
    final map takes the posed lower inner lip from within 1.5 px of the portrait's own lower
    inner lip. Left to the coarse warp above the portrait's own opening, it took it 5-7 px
    inside her mouth: her lower teeth showed as a pale line along the lower lip."""
    import dataclasses

    from app.avatar import prepare_avatar
    from app.render import Renderer
    from app.retarget import DriverReference, RetargetSettings, apply_motion, measure_motion
    from engines.torch_engine import TorchFieldEngine

    _, faces = d10_faces
    gaps = [mouth_gap(p) for p in faces]
    reference = DriverReference.from_landmarks(faces[int(np.argmin(gaps))])
    motion = measure_motion(reference, faces[int(np.argmax(gaps))])
    motion = dataclasses.replace(motion, rotation=np.zeros(3), translation=np.zeros(2), log_scale=0.0)
    avatar = prepare_avatar(read_frames(data_dir / "driving" / "hdtf_aoc.mp4", limit=1)[0])
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    posed = apply_motion(avatar.face, motion, RetargetSettings(), reference)
    assert mouth_gap(posed.landmarks) > mouth_gap(avatar.face.landmarks)  # wider than its own
    mx, my = renderer.frame_maps(posed)
    local, rest = renderer.local_landmarks(posed), renderer._rest_local
    for k in (87, 14, 317):  # the lower inner lip's middle
        q = local[k, :2].astype(np.float32).reshape(1, 1, 2)
        source_y = cv2.remap(my, q[..., 0], q[..., 1], cv2.INTER_LINEAR)[0, 0]
        assert abs(source_y - rest[k, 1]) < 1.5, (k, source_y - rest[k, 1])


def test_closed_lips_of_an_open_mouth_portrait_show_whole(laughing_portrait):
    """The laughing portrait posed with its lips closed: along each lip, from its outer line to
    its inner one (three places on each lip), the final map shows the portrait's own lip over
    most of the posed lip's height. The coarse warp squeezes the lips together with the mouth's
    interior, and the lips' pass re-laid only the line where they meet: a half to three
    quarters of each lip showed (hdtf_aoc's upper lip, a third), the rest was skin or the other
    lip. Now each lip's outer line is a knot of the pass too (`lips._outer_knots`)."""
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(laughing_portrait)
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    posed = apply_motion(avatar.face, Motion.neutral(), RetargetSettings())
    local, rest = renderer.local_landmarks(posed), renderer._rest_local
    mx, my = renderer.frame_maps(posed)
    t = np.linspace(-0.6, 1.0, 161)  # from above the posed outer line down to the inner line
    for outer, inner in ((0, 13), (37, 82), (267, 312), (17, 14), (84, 87), (314, 317)):
        q = (local[outer, :2] + np.outer(t, local[inner, :2] - local[outer, :2])).astype(np.float32)
        src = np.column_stack([cv2.remap(m, q[:, :1], q[:, 1:], cv2.INTER_LINEAR).ravel() for m in (mx, my)])
        lip = rest[inner, :2] - rest[outer, :2]
        s = (src - rest[outer, :2]) @ lip / (lip @ lip)  # 0..1 on the portrait's own lip
        shown = ((s >= 0) & (s <= 1)).sum() / 100.0  # share of the posed lip's height
        assert shown >= 0.8, (outer, inner, shown)


def test_shut_lips_never_fold_the_map(data_dir, laughing_portrait):
    """The laughing portrait driven by a talking clip: the final maps (lids and lips re-laid
    at pixel resolution) never fold, and the lips' re-laying really ran on the closing frames."""
    from app import warp_quality as wq
    from app.render import Renderer
    from app.retarget import DriverReference, RetargetSettings, apply_motion, measure_motion
    from engines.torch_engine import TorchFieldEngine

    avatar = load_avatar(laughing_portrait)
    renderer = Renderer(avatar, TorchFieldEngine(avatar.rig.grid_size))
    frames = read_frames(data_dir / "driving" / "lp_d10.mp4", limit=30, step=3)
    with FaceTracker() as tracker:
        drivers = [f[0].landmarks for im in frames if (f := tracker.detect(im))]
    closed = [k for k, p in enumerate(drivers) if mouth_gap(p) < 0.01]
    reference = DriverReference.from_landmarks(drivers[closed[0]] if closed else drivers[0])
    relaid = 0
    for points in drivers:
        posed = apply_motion(avatar.face, measure_motion(reference, points), RetargetSettings(), reference)
        mx, my = renderer.frame_maps(posed)
        local = renderer.local_landmarks(posed)
        q = wq.analyse_map(mx, my, wq.openings_mask(mx.shape, mx, my, local, renderer.rest_landmarks))
        assert q.fold_pct == 0.0, q
        plain = renderer.sampling_maps(posed)
        relaid += bool(np.abs(plain[1] - my)[_mouth_box(local)].max() > 1.0)
    assert relaid >= len(drivers) // 2, relaid


def _mouth_box(points: np.ndarray) -> tuple[slice, slice]:
    lips = points[list(lm.INNER_LIPS), :2]
    (x0, y0), (x1, y1) = np.floor(lips.min(axis=0)).astype(int), np.ceil(lips.max(axis=0)).astype(int)
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def test_teeth_take_the_portraits_own_colour(data_dir):
    """A portrait that shows its own teeth (hdtf_aoc mid-word, the astronaut's smile) opens
    onto teeth as light as those: at least the 75th percentile of its mouth opening's
    lightness. Made up from the skin's tones they were a dull grey band (L 195 and 213 against
    her teeth's 240). A closed-mouth portrait keeps the made-up teeth."""
    from app.avatar import prepare_avatar
    from app.landmarks import INNER_LIPS
    from app.mouth import TEETH_LIGHT, mouth_palette

    for image in (read_frames(data_dir / "driving" / "hdtf_aoc.mp4", limit=1)[0],
                  cv2.imread(str(data_dir / "portraits" / "astronaut.png"))):
        avatar = prepare_avatar(image)
        palette = mouth_palette(avatar.image, avatar.face.landmarks, avatar.skin_lab)
        opening = np.zeros(avatar.image.shape[:2], np.uint8)
        cv2.fillPoly(opening, [np.round(avatar.face.landmarks[list(INNER_LIPS), :2]).astype(np.int32)], 255)
        lightness = cv2.cvtColor(avatar.image, cv2.COLOR_BGR2LAB)[..., 0][opening > 0]
        assert palette.teeth[0] >= np.percentile(lightness, 75)
    mona = load_avatar(data_dir / "portraits" / "lp_s9.jpg")
    palette = mouth_palette(mona.image, mona.face.landmarks, mona.skin_lab)
    skin = float(mona.skin_lab[0][0])
    assert skin <= palette.teeth[0] <= skin + TEETH_LIGHT * (255 - skin) + 1e-3


def test_the_mouth_interior_is_in_the_avatars_own_palette(data_dir):
    """A grey portrait's open mouth is grey, and the interior lies near the avatar's own
    lip/skin shades (face_metrics.mouth_interior_delta_e); the driver's teeth pasted and
    colour-matched read 15-25 ΔE from it."""
    from app.face_metrics import avatar_palette, mouth_interior_delta_e

    image = cv2.imread(str(data_dir / "portraits" / "lp_s2.jpg"))
    path = data_dir / "portraits" / "lp_s2.jpg"
    avatar = load_avatar(path)
    frames = read_frames(data_dir / "driving" / "lp_d12.mp4", limit=40, step=2)
    run = drive_frames(avatar, frames, 12.5, keep_images=True)
    palette = avatar_palette(avatar.image, avatar.face.landmarks)
    gaps = np.array([mouth_gap(p) for p in run["output"]])
    wide = [i for i in np.argsort(-gaps)[:5] if gaps[i] > 0.03]
    assert wide, "the output's mouth opens"
    des = [mouth_interior_delta_e(run["images"][i], run["output"][i], palette) for i in wide]
    assert np.nanmean(des) < 8.0, des
    for i in wide:
        assert np.ptp(run["images"][i].astype(int), axis=2).max() <= 6  # no colour on a grey portrait
    assert image is not None


def test_mouth_interior_delta_e_flags_a_foreign_colour(data_dir):
    """The metric: an interior painted from the avatar's palette (cavity, tongue, teeth) scores
    low, the driver's pink lips pasted into a grey portrait's mouth or a warm photo's score
    high. (Without the off-whites of the portrait's own light in its palette, painted ivory
    teeth on grace_hopper scored like a foreign colour, and a see-through grey strip better.)"""
    from app.face_metrics import avatar_palette, mouth_interior_delta_e
    from app.mouth import interior, mouth_palette
    from app.landmarks import lip_meeting_line
    from app.avatar import skin_colour

    for name, foreign in (("lp_s2.jpg", 25.0), ("grace_hopper.jpg", 15.0)):
        image = cv2.resize(cv2.imread(str(data_dir / "portraits" / name)), (512, 512))
        with FaceTracker() as tracker:
            pts = tracker.detect(image)[0].landmarks.astype(np.float64)
        opened = pts.copy()
        opened[list(lm.UPPER_INNER_LIP), 1] -= 8  # upper lip up: the teeth show
        opened[list(lm.LOWER_INNER_LIP), 1] += 25  # lower inner lip down
        poly = opened[list(lm.INNER_LIPS), :2]
        x0, y0 = np.floor(poly.min(axis=0)).astype(int) - 3
        x1, y1 = np.ceil(poly.max(axis=0)).astype(int) + 4
        own = image.copy()
        own[y0:y1, x0:x1] = interior(poly - (x0, y0), opened[[61, 291], :2] - (x0, y0), (x1 - x0, y1 - y0),
                                     mouth_palette(image, pts, skin_colour(image, pts)), 0.1,
                                     lip_meeting_line(pts)[:, :2] - (x0, y0))
        pink = image.copy()
        pink[y0:y1, x0:x1] = (120, 110, 215)  # BGR: a driver's lips
        palette = avatar_palette(image, pts)
        assert mouth_interior_delta_e(own, opened, palette) < 6.0, name
        assert mouth_interior_delta_e(pink, opened, palette) > foreign, name


def test_neutral_start_err_sees_a_first_frame_neutral(data_dir):
    """self.neutral_start_err on lp_d10 (talking, glances): with the searched neutral the
    output barely depends on where the clip starts; with the first face taken as neutral (as
    the app once did) the clip started at its most extreme frame stays off."""
    from app.evaluate.neutral_start import most_extreme, neutral_start_err
    from app.evaluate.reenactment import SELF_FRAMING, Detector
    from app.avatar import prepare_avatar
    from app.pipeline import PipelineSettings

    frames = [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA)
              for f in read_frames(data_dir / "driving" / "lp_d10.mp4", limit=110)]
    detector = Detector()
    try:
        tracked = [detector(f) for f in frames]
        assert most_extreme(tracked, 40) not in (None, 0)
        avatar = prepare_avatar(frames[0], SELF_FRAMING, name="d10")
        settings = PipelineSettings(framing=SELF_FRAMING)
        searched = neutral_start_err(avatar, frames, tracked, 30.0, detector, settings, stride=4)
        first = neutral_start_err(avatar, frames, tracked, 30.0, detector, settings, stride=4, calibrate_at_start=True)
    finally:
        detector.close()
    # Measured: 0.016 searched, 0.027 first-frame neutral (face sizes).
    assert np.isfinite(searched) and searched < 0.025 and searched < 0.8 * first, (searched, first)
