"""The evaluation harness: each metric on small known cases, on real frames where a real frame
is what the metric is about, and one end-to-end run of `python -m app.evaluate` on a tiny folder."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.evaluate import metrics as M
from app.evaluate.data import SquareCrop, choose_pairs, discover
from app.evaluate.report import (FINDINGS_BEGIN, FINDINGS_END, HISTORY_BEGIN, HISTORY_END, history_block,
                                 read_findings, read_history)


# ------------------------------------------------------------------ fixtures: real frames


@pytest.fixture(scope="module")
def frame256(data_dir: Path) -> np.ndarray:
    """The first frame of a real driving clip, 256x256."""
    cap = cv2.VideoCapture(str(data_dir / "driving" / "lp_d0.mp4"))
    ok, image = cap.read()
    cap.release()
    assert ok
    return cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def detector():
    from app.evaluate.reenactment import Detector

    d = Detector()
    yield d
    d.close()


# ------------------------------------------------------------------ image metrics


def test_a_real_frame_against_itself(frame256) -> None:
    assert M.l1(frame256, frame256) == 0.0
    assert M.psnr(frame256, frame256) == math.inf
    assert M.ssim(frame256, frame256) == pytest.approx(1.0, abs=1e-12)


def test_l1_and_psnr_on_known_values() -> None:
    a = np.zeros((32, 32, 3))
    b = np.full((32, 32, 3), 0.1)
    assert M.l1(a, b) == pytest.approx(0.1)
    assert M.psnr(a, b) == pytest.approx(20.0)  # MSE 0.01 -> 10 log10(1 / 0.01)
    # uint8 is taken as 0..255 and brought to [0, 1]
    assert M.l1(np.zeros((16, 16), np.uint8), np.full((16, 16), 51, np.uint8)) == pytest.approx(0.2)


def test_ssim_falls_with_damage_and_is_symmetric(frame256) -> None:
    rng = np.random.default_rng(0)
    noisy = np.clip(frame256.astype(int) + rng.integers(-25, 26, frame256.shape), 0, 255).astype(np.uint8)
    blurred = cv2.GaussianBlur(frame256, (9, 9), 3)
    s_noise, s_blur = M.ssim(frame256, noisy), M.ssim(frame256, blurred)
    assert 0.2 < s_noise < 0.95 and 0.2 < s_blur < 0.95
    assert M.ssim(noisy, frame256) == pytest.approx(s_noise, abs=1e-12)
    # Constant images: only the luminance term is left, (2ab + c1) / (a^2 + b^2 + c1).
    c1 = (0.01) ** 2
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert M.ssim(np.full((32, 32), 0.2), np.full((32, 32), 0.6)) == pytest.approx(expected)


def test_ssim_matches_scikit_image_when_present(frame256) -> None:
    skm = pytest.importorskip("skimage.metrics", reason="scikit-image is not installed (optional cross-check)")
    other = cv2.GaussianBlur(frame256, (5, 5), 2)
    ref = skm.structural_similarity(frame256 / 255.0, other / 255.0, channel_axis=-1, gaussian_weights=True,
                                    sigma=1.5, use_sample_covariance=False, data_range=1.0)
    assert M.ssim(frame256, other) == pytest.approx(ref, abs=1e-9)


# ------------------------------------------------------------------ keypoints


def test_akd_of_a_known_shift() -> None:
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 256, (478, 3))
    moved = pts + np.array([3.0, 4.0, 7.0])  # z is ignored
    assert M.akd(pts, moved) == pytest.approx(5.0)
    assert M.akd(pts, moved, scale=0.5) == pytest.approx(2.5)  # e.g. 512 px measured at 256
    assert M.akd(pts, pts) == 0.0


def test_akd_on_a_real_frame_and_its_shifted_copy(frame256, detector) -> None:
    base = detector(frame256)
    assert base is not None
    assert M.akd(base, detector(frame256)) == pytest.approx(0.0, abs=1e-6)  # deterministic detector
    shift = np.float32([[1, 0, 6], [0, 1, 8]])
    moved = cv2.warpAffine(frame256, shift, (256, 256), borderMode=cv2.BORDER_REPLICATE)
    seen = detector(moved)
    assert seen is not None
    # The detector follows a 10-pixel shift to within about a pixel.
    assert M.akd(base, seen) == pytest.approx(10.0, abs=1.0)
    assert M.akd(base[:, :2] + (6, 8), seen) < 1.0


def test_an_identity_warp_gives_l1_zero_and_akd_near_zero(frame256, detector) -> None:
    from app.avatar import Framing, prepare_avatar
    from app.pipeline import make_engine
    from app.render import Renderer
    from app.retarget import Motion, RetargetSettings, apply_motion

    avatar = prepare_avatar(frame256, Framing(256, 256))
    renderer = Renderer(avatar, make_engine("auto", avatar.rig.grid_size))
    posed = apply_motion(avatar.face, Motion.neutral(), RetargetSettings())
    out = renderer.render(posed, None)
    assert M.l1(out, avatar.image) < 2e-3
    assert M.ssim(out, avatar.image) > 0.99
    assert M.akd(detector(out), detector(avatar.image)) < 0.5


# ------------------------------------------------------------------ temporal


def test_jitter_of_a_constant_sequence_is_zero() -> None:
    pts = np.random.default_rng(2).uniform(0, 100, (50, 2))
    assert M.jitter(np.stack([pts] * 10)) == 0.0


def test_jitter_of_gaussian_noise_is_sigma_root_pi() -> None:
    rng = np.random.default_rng(3)
    sigma = 0.5
    base = rng.uniform(0, 256, (478, 2))
    seq = base + rng.normal(0, sigma, (200, 478, 2))
    assert M.jitter(seq) == pytest.approx(sigma * math.sqrt(math.pi), rel=0.02)


def test_jitter_of_steady_motion_is_the_speed() -> None:
    base = np.zeros((5, 2))
    seq = np.stack([base + (t * 0.6, t * 0.8) for t in range(20)])
    assert M.jitter(seq) == pytest.approx(1.0)


def test_flicker_counts_only_the_masked_pixels() -> None:
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    b[:, :5] = 10  # the left half changes by 10 grey levels
    assert M.flicker([a, a, a]) == 0.0
    assert M.flicker([a, b]) == pytest.approx(5.0)
    left = np.zeros((10, 10), bool)
    left[:, :5] = True
    assert M.flicker([a, b], [left]) == pytest.approx(10.0)
    assert M.flicker([a, b], [~left]) == pytest.approx(0.0)


def test_still_windows_pick_the_stillest_stretches() -> None:
    speed = np.full(100, 0.01)
    speed[20:40] = 0.001
    speed[70:80] = 0.002
    speed[0] = np.nan
    wins = M.still_windows(speed, window=10, threshold=0.004, max_windows=3)
    assert wins[0][0] >= 19 and wins[0][1] <= 40
    assert all(b - a == 10 for a, b in wins)
    assert len({tuple(w) for w in wins}) == len(wins)
    assert M.still_windows(speed, window=10, threshold=0.0005, max_windows=3) == []


# ------------------------------------------------------------------ pose and transfer


def test_rotation_angle_and_head_rotation() -> None:
    from app.pose import euler_to_rotation

    r = euler_to_rotation(10.0, 0.0, 0.0)
    assert M.rotation_angle_degrees(r, np.eye(3)) == pytest.approx(10.0)
    pts = np.random.default_rng(4).normal(0, 50, (40, 3))
    turned = pts @ euler_to_rotation(5.0, -3.0, 8.0).T * 1.2 + (10, 20, 0)
    got = M.head_rotation(pts, turned, range(40))
    assert M.rotation_angle_degrees(got, euler_to_rotation(5.0, -3.0, 8.0)) < 1e-6


def test_remove_head_motion_leaves_expression() -> None:
    rng = np.random.default_rng(5)
    neutral = rng.normal(0, 50, (30, 2))
    expr = np.zeros_like(neutral)
    expr[25:] = (0.0, 4.0)  # non-rigid points move; the first 25 are the "rigid" ones
    a = np.radians(12)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    seen = ((neutral + expr) @ rot.T) * 1.5 + (7.0, -3.0)
    back = M.remove_head_motion(neutral, seen, range(25))
    assert np.allclose(back - neutral, expr, atol=1e-9)


def test_transfer_gain() -> None:
    req = np.random.default_rng(6).normal(size=(100, 2))
    assert M.transfer_gain(0.5 * req, req) == pytest.approx(0.5)
    assert M.transfer_gain(req, req) == pytest.approx(1.0)
    assert math.isnan(M.transfer_gain(req, np.zeros_like(req)))


# ------------------------------------------------------------------ identity


@pytest.fixture(scope="module")
def embedder():
    from app.evaluate import identity

    reason = identity.unavailable_reason()
    if reason:
        pytest.skip(f"identity model unavailable: {reason}")
    return identity.FaceEmbedder()


def _portrait(data_dir: Path, name: str, side: int = 256) -> np.ndarray:
    from app.avatar import read_image

    image = read_image(data_dir / "portraits" / name)
    s = side / max(image.shape[:2])
    return cv2.resize(image, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)


def test_identity_distance_same_face_and_different_people(data_dir, embedder) -> None:
    from app.evaluate.identity import SAME_PERSON_BELOW, distance

    hopper = _portrait(data_dir, "grace_hopper.jpg")
    obama = _portrait(data_dir, "fr_obama.jpg")
    e_hopper = embedder.embed(hopper)
    assert e_hopper is not None and e_hopper.shape == (128,)
    assert distance(e_hopper, embedder.embed(hopper)) == pytest.approx(0.0, abs=1e-6)
    # The same photo mirrored and smaller is still the same person...
    variant = cv2.resize(hopper[:, ::-1], None, fx=0.8, fy=0.8, interpolation=cv2.INTER_AREA)
    same = distance(e_hopper, embedder.embed(variant))
    # ...and another person is much further away.
    other = distance(e_hopper, embedder.embed(obama))
    assert same < SAME_PERSON_BELOW < other
    assert other > 2 * same


# ------------------------------------------------------------------ data and report plumbing


def test_square_crop_maps_points_like_pixels() -> None:
    crop = SquareCrop.around((640, 360), np.array([600.0, 50.0]), face=100.0, size=256)
    assert crop.side == 200 and crop.x0 == 440 and crop.y0 == 0  # clamped inside the frame
    image = np.zeros((360, 640, 3), np.uint8)
    cv2.circle(image, (540, 100), 3, (255, 255, 255), -1)
    out = crop.apply(image)
    ys, xs = np.nonzero(out[..., 0] > 128)
    y, x = ys.mean(), xs.mean()
    p = crop.points(np.array([[540.0, 100.0, 0.0]]))[0]
    assert abs(p[0] - x) <= 2 and abs(p[1] - y) <= 2


def test_pairs_are_the_fixed_list_on_the_shared_data(data_dir) -> None:
    pairs = choose_pairs(discover(data_dir))
    assert len(pairs) >= 8
    assert all(p.is_file() and c.is_file() for p, c in pairs)
    assert pairs == choose_pairs(discover(data_dir))  # deterministic


def test_history_is_kept_and_appended(tmp_path) -> None:
    report = tmp_path / "report.md"
    first = history_block([], {"run (UTC)": "2026-01-01 00:00", "commit": "aaa", "self L1": "0.0500"})
    report.write_text(f"# old report\n\nsome text\n\n## History\n\n{first}\n", encoding="utf-8")
    rows = read_history(report)
    assert len(rows) == 1 and "aaa" in rows[0] and "0.0500" in rows[0]
    second = history_block(rows, {"run (UTC)": "2026-01-02 00:00", "commit": "bbb"})
    report.write_text(second, encoding="utf-8")
    rows = read_history(report)
    assert [("aaa" in r, "bbb" in r) for r in rows] == [(True, False), (False, True)]
    assert second.startswith(HISTORY_BEGIN) and second.endswith(HISTORY_END)
    assert read_history(tmp_path / "absent.md") == []


def test_hand_written_findings_are_carried_over(tmp_path) -> None:
    report = tmp_path / "report.md"
    block = f"{FINDINGS_BEGIN}\n### Warp folds\n| | before | after |\n|---|---|---|\n| folding | 54% | 0% |\n{FINDINGS_END}"
    report.write_text(f"# report\n\n## Findings\n\n{block}\n\n## History\n", encoding="utf-8")
    assert read_findings(report) == block
    assert read_findings(tmp_path / "absent.md") == ""


def test_history_rows_follow_their_columns_by_name(tmp_path) -> None:
    """A row written when the headline had other columns lands under the right headers."""
    from app.evaluate.report import HISTORY_COLUMNS

    report = tmp_path / "report.md"
    report.write_text(f"{HISTORY_BEGIN}\n| run (UTC) | self L1 | retired |\n|---|---|---|\n| 2025 | 0.07 | x |\n{HISTORY_END}\n",
                      encoding="utf-8")
    (row,) = read_history(report)
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert len(cells) == len(HISTORY_COLUMNS)
    assert cells[HISTORY_COLUMNS.index("run (UTC)")] == "2025"
    assert cells[HISTORY_COLUMNS.index("self L1")] == "0.07"
    assert cells[HISTORY_COLUMNS.index("commit")] == "–" and "x" not in cells


# ------------------------------------------------------------------ warp quality of the final map


def _smooth_map(size: int = 128) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A gently bending map that moves every pixel (so all of it counts as animated)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs + 3 * np.sin(ys / 20) + 1.5, ys + 2 * np.cos(xs / 25) + 1.0, xs, ys


def test_a_smooth_map_is_clean() -> None:
    from app import warp_quality as wq

    mx, my, _, _ = _smooth_map()
    q = wq.analyse_map(mx, my)
    assert q.animated_pixels > 0.9 * mx.size
    assert q.fold_pct == 0.0 and q.stretch_pct == 0.0 and q.duplicated_pct == 0.0
    assert wq.pop((mx, my), (mx, my), 0.0) == 0.0


def test_a_planted_fold_is_caught_where_it_is() -> None:
    from app import warp_quality as wq

    mx, my, xs, _ = _smooth_map()
    # Columns 60-69 sample the portrait backwards (a mirrored strip: a tear), the rest goes on after it.
    mx = np.where((xs >= 60) & (xs < 70), 120 - xs, np.where(xs >= 70, xs - 20, xs)).astype(np.float32) + 1.5
    q, flags = wq.analyse_map(mx, my, flags=True)
    assert q.fold_pct > 5.0
    cols = np.nonzero(flags.fold)[1]
    assert cols.min() >= 58 and cols.max() <= 71


def test_a_planted_duplication_is_caught_at_both_copies() -> None:
    from app import warp_quality as wq

    mx, my, xs, ys = _smooth_map()
    # A far block of the output shows the very piece of the portrait that (20..40, 20..40) shows.
    mx[90:110, 90:110] = xs[20:40, 20:40]
    my[90:110, 90:110] = ys[20:40, 20:40]
    q, flags = wq.analyse_map(mx, my, flags=True)
    assert q.duplicated_pct > 1.0
    assert flags.duplicated[95:105, 95:105].mean() > 0.9  # the copy
    assert flags.duplicated[24:36, 20:36].mean() > 0.8  # the original, about where it is shown
    assert not flags.duplicated[60:80, 40:80].any()  # untouched parts stay clean


def test_warp_summary_and_yaw_bins() -> None:
    from app.evaluate.warp import WarpFrame, by_yaw, warp_summary

    frames = [WarpFrame(i, 0.5 if i == 3 else 0.0, float(i), 0.1 * i, math.nan if i == 0 else 1.0, 10.0 * i, 0, 0)
              for i in range(5)]
    s = warp_summary(frames)
    assert s["fold_frames_pct"] == pytest.approx(20.0) and s["fold_pixels_max_pct"] == 0.5
    assert s["duplicated_pixels_max_pct"] == pytest.approx(0.4) and s["pop_p95"] == pytest.approx(1.0)
    bins = dict(by_yaw(frames))
    assert bins["0–15°"]["frames"] == 2 and bins["30–45°"]["frames"] == 2 and bins["30–45°"]["fold_frames_pct"] == 50.0
    assert math.isnan(warp_summary([])["pop_p95"])


def test_the_default_output_folder_keeps_the_checkout_clean() -> None:
    from app.evaluate.__main__ import default_out
    from app.evaluate.data import default_data_dir, repo_root

    assert default_out(None) == repo_root() / "docs" / "evaluation"  # the committed report's own data
    assert default_out([default_data_dir()]) == repo_root() / "docs" / "evaluation"
    other = default_out([Path("/somewhere/else/footage")])
    assert other == repo_root() / "out" / "evaluation" / "footage"  # out/ is git-ignored


def _cut_clip(src: Path, dst: Path, frames: int, skip: int = 0, width: int = 256) -> None:
    """The first `frames` frames (after `skip`) of a real clip, scaled to `width`."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    for _ in range(skip):
        cap.read()
    writer = None
    for _ in range(frames):
        ok, image = cap.read()
        assert ok
        h, w = image.shape[:2]
        image = cv2.resize(image, (width, round(h * width / w) // 2 * 2), interpolation=cv2.INTER_AREA)
        if writer is None:
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, (image.shape[1], image.shape[0]))
        writer.write(image)
    writer.release()
    cap.release()


def _checkout_state() -> tuple[str, dict[str, float]]:
    import subprocess

    from app.evaluate.data import repo_root

    root = repo_root()
    status = subprocess.run(["git", "status", "--porcelain", "--ignored=no"], cwd=root, capture_output=True,
                            text=True, check=True).stdout
    mtimes = {str(p): p.stat().st_mtime for p in (root / "docs").rglob("*") if p.is_file()}
    return status, mtimes


def test_out_folder_run_writes_summary_and_touches_nothing_else(data_dir, tmp_path) -> None:
    """Two real clips cut short and one portrait: every summary key, numbers where the run measures
    them, sheets under --out, and the checkout (git status, docs/ mtimes) exactly as before."""
    import json

    from app.evaluate.__main__ import main
    from app.evaluate.summary import KEYS, NOT_MEASURED_YET

    folder = tmp_path / "data"
    (folder / "driving").mkdir(parents=True)
    (folder / "portraits").mkdir()
    _cut_clip(data_dir / "driving" / "lp_d12.mp4", folder / "driving" / "turns.mp4", 24, skip=20)
    _cut_clip(data_dir / "driving" / "lp_src_s29.mp4", folder / "driving" / "talk.mp4", 24)
    (folder / "portraits" / "hopper.jpg").write_bytes((data_dir / "portraits" / "grace_hopper.jpg").read_bytes())
    before = _checkout_state()
    out = tmp_path / "out"
    assert main([str(folder), "--out", str(out), "--samples", "4", "--no-identity", "--probe-frames", "0",
                 "--quiet"]) == 0
    assert _checkout_state() == before
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(KEYS) <= set(summary)
    for key in KEYS:
        assert summary[key] is None or isinstance(summary[key], (int, float)), key
    for key in ("self.l1", "self.psnr", "self.ssim", "self.akd", "self.still_l1", "self.still_ssim", "self.still_akd",
                "cross.expr_err_pct", "cross.pose_err_deg", "warp.fold_frames_pct", "warp.fold_pixels_max_pct",
                "warp.stretch_pixels_p95_pct", "warp.duplicated_pixels_max_pct", "warp.pop_p95", "speed.fps_512",
                "cross.gaze_gain_x", "cross.gaze_corr_x"):
        assert isinstance(summary[key], (int, float)), key
    # Vertical gaze is scored only where the driver's iris moves up and down (24 frames may not).
    assert summary["cross.gaze_corr_y"] is None or -1.0 <= summary["cross.gaze_corr_y"] <= 1.0
    assert summary["cross.gaze_gain_x"] >= 0.0 and -1.0 <= summary["cross.gaze_corr_x"] <= 1.0
    assert all(summary[k] is None for k in NOT_MEASURED_YET)
    assert 0.0 <= summary["warp.fold_frames_pct"] <= 100.0 and summary["speed.fps_512"] > 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "### Warp quality of the final sampling map" in text and "landmark mesh" in text
    for name in ("warp_self_turns.jpg", "warp_self_talk.jpg", "warp_cross_hopper__turns.jpg"):
        sheet = cv2.imread(str(out / "sheets" / name))
        assert sheet is not None and sheet.shape[0] > 6 * 100, name  # six rows
    assert (out / "plots" / "warp.png").is_file()


def test_the_harness_end_to_end_on_a_tiny_folder(data_dir, tmp_path) -> None:
    """Two runs on a 15-frame clip and one portrait: a report with plots, sheets and two history rows."""
    from app.evaluate.__main__ import main

    folder = tmp_path / "data"
    (folder / "driving").mkdir(parents=True)
    (folder / "portraits").mkdir()
    cap = cv2.VideoCapture(str(data_dir / "driving" / "lp_d0.mp4"))
    writer = cv2.VideoWriter(str(folder / "driving" / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (256, 256))
    for _ in range(15):
        ok, image = cap.read()
        assert ok
        writer.write(cv2.resize(image, (256, 256), interpolation=cv2.INTER_AREA))
    writer.release()
    cap.release()
    (folder / "portraits" / "hopper.jpg").write_bytes((data_dir / "portraits" / "grace_hopper.jpg").read_bytes())
    out = tmp_path / "out"
    args = [str(folder), "--out", str(out), "--max-frames", "15", "--samples", "2", "--identity-samples", "1",
            "--probe-frames", "3", "--quiet"]
    assert main(args) == 0
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "## 1. Self-reenactment" in text and "## 4. Speed" in text and "| clip |" in text
    assert (out / "plots" / "self_reenactment.png").is_file()
    assert (out / "sheets" / "self_clip.jpg").is_file()
    assert (out / "sheets" / "cross_hopper__clip.jpg").is_file()
    assert len(read_history(out / "report.md")) == 1
    # A second run keeps the first run's headline row and adds its own.
    assert main(args[:3] + ["--no-self", "--no-identity", "--max-frames", "6", "--probe-frames", "2", "--quiet"]) == 0
    assert len(read_history(out / "report.md")) == 2
