"""Running the pipeline on real footage and measuring it: self-reenactment, cross-reenactment,
temporal stability and speed.

The animator is temporal (One Euro filters, tracking, easing), so every clip is fed to the
pipeline frame by frame, in order, exactly as the app would; only the costly measurements run on
a subsample of the frames (every `stride`-th, at most `samples` per clip).
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
import time

import cv2
import numpy as np

from app import landmarks as lm
from app.avatar import Avatar, Framing, load_avatar, prepare_avatar
from app.capture import Frame, VideoFileSource
from app.errors import PuppetCamError
from app.pipeline import PipelineSettings, Puppeteer
from app.pose import rotation_to_euler
from app.tracking import FaceTracker, TrackerSettings

from . import metrics as M
from .data import EVAL_SIZE, SquareCrop
from .neutral_start import neutral_start_err
from .warp import WarpFrame, WarpMeter, WorstFrame

RIGID = list(lm.RIGID)
MOUTH = sorted(set(lm.INNER_LIPS + lm.OUTER_LIPS))
EYES = sorted(set(lm.RIGHT_EYE_UPPER + lm.RIGHT_EYE_LOWER + lm.LEFT_EYE_UPPER + lm.LEFT_EYE_LOWER))
BROWS = sorted(set(lm.RIGHT_BROW + lm.LEFT_BROW))
MESH = list(range(468))  # the face mesh without the iris points

CUT_JUMP = 0.6  # face sizes in one frame: a scene cut (the animator's own rule)
CUT_SIZE_RATIO = 1.3  # the face grows or shrinks this much in one frame: a cut to another framing
CUT_FRAME_DIFF = 20.0  # mean grey-level change of the 64x64 face-crop thumbnail in one frame: a cut
LOST_SECONDS = 1.5  # face lost this long: the shot is over for self-reenactment
FIRST_FACE_SCAN = 90  # frames searched for the first face
CROSS_FRAMING = Framing(512, 512)  # the app's default output: speed is measured where it is used
SELF_FRAMING = Framing(EVAL_SIZE, EVAL_SIZE)
MIN_SHOT_SECONDS = 2.0  # self-reenactment needs this much of the first shot
STILL_WINDOW = 15  # frames (0.5 s at 30 fps)
STILL_THRESHOLD = 0.004  # median landmark speed, face sizes per frame
STILL_MAX_WINDOWS = 3
FACE_MARGIN = 0.12  # face sizes: the face hull is grown by this much before flicker is measured
THUMB = 128


@dataclass
class Settings:
    max_frames: int = 450
    stride: int = 3
    samples: int = 60
    identity_samples: int = 20
    moments: int = 5


def sample_indices(n: int, stride: int, samples: int, start: int = 1) -> list[int]:
    """Every `stride`-th frame from `start`, thinned evenly to at most `samples`."""
    idx = list(range(start, n, max(1, stride)))
    if len(idx) > samples:
        pick = np.unique(np.round(np.linspace(0, len(idx) - 1, samples)).astype(int))
        idx = [idx[i] for i in pick]
    return idx


class Detector:
    """MediaPipe face mesh in still-image mode (every frame detected afresh, no tracking state),
    the same model the app tracks with; used on generated and real frames alike."""

    def __init__(self) -> None:
        self.tracker = FaceTracker(TrackerSettings(static_images=True, max_faces=1))
        self.calls = 0

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        self.calls += 1
        faces = self.tracker.detect(image)
        return faces[0].landmarks.astype(np.float64) if faces else None

    def close(self) -> None:
        self.tracker.close()


@dataclass
class PassLog:
    """Everything one pipeline pass leaves for the measurements (images at 256x256)."""

    outputs: list[np.ndarray] = field(default_factory=list)
    drivers: list[np.ndarray] = field(default_factory=list)  # the driver, face-cropped to 256
    tracked: list[np.ndarray | None] = field(default_factory=list)  # driver landmarks, crop pixels
    posed: list[np.ndarray] = field(default_factory=list)  # target landmarks, output pixels at 256
    times: list[dict[str, float]] = field(default_factory=list)
    warp: list[WarpFrame] = field(default_factory=list)  # the final sampling map's quality, every frame
    warp_worst: list[WorstFrame] = field(default_factory=list)
    ended: str = "end of clip"


def run_pass(puppeteer: Puppeteer, source: VideoFileSource, crop: SquareCrop, out_crop: SquareCrop, max_frames: int,
             feed_cropped: bool, stop_at_cut: bool, first: Frame | None = None) -> PassLog:
    """Feed the source to the pipeline; keep 256x256 face crops of driver and output per frame
    (`crop` on the driver, `out_crop` on the output)."""
    log = PassLog()
    last_seen_t: float | None = None
    last_centre: np.ndarray | None = None
    last_size = 0.0
    last_thumb: np.ndarray | None = None
    pending = first
    meter = WarpMeter(puppeteer.animators[0].renderer)
    while len(log.outputs) < max_frames:
        t0 = time.perf_counter()
        frame = pending if pending is not None else source.read()
        pending = None
        if frame is None:
            break
        t1 = time.perf_counter()
        driver_crop = crop.apply(frame.image)
        fed = Frame(driver_crop, frame.index, frame.timestamp) if feed_cropped else frame
        t2 = time.perf_counter()
        result = puppeteer.process(fed)
        t3 = time.perf_counter()
        tracked = None
        face = result.faces[0]
        if face is not None:
            tracked = face.landmarks.astype(np.float64)
            if not feed_cropped:
                tracked = crop.points(tracked)
        if stop_at_cut:
            thumb = cv2.resize(cv2.cvtColor(driver_crop, cv2.COLOR_BGR2GRAY), (64, 64), interpolation=cv2.INTER_AREA)
            if last_thumb is not None and float(np.abs(thumb.astype(np.float32) - last_thumb).mean()) > CUT_FRAME_DIFF:
                log.ended = f"scene cut at frame {frame.index}"
                break
            last_thumb = thumb.astype(np.float32)
            if tracked is not None:
                size = M.face_size(tracked)
                centre = tracked[list(lm.FACE_OVAL), :2].mean(axis=0)
                if last_centre is not None and (np.linalg.norm(centre - last_centre) > CUT_JUMP * size
                                                or max(size / last_size, last_size / size) > CUT_SIZE_RATIO):
                    log.ended = f"scene cut at frame {frame.index}"
                    break
                last_centre, last_size, last_seen_t = centre, size, frame.timestamp
            elif last_seen_t is not None and frame.timestamp - last_seen_t > LOST_SECONDS:
                log.ended = f"face lost at frame {frame.index}"
                break
        image = out_crop.apply(result.image)
        posed = out_crop.points(result.posed[0].landmarks)
        meter.measure(len(log.outputs), result.posed[0], result.motions[0].rotation, result.image, driver_crop)
        times = dict(result.times)
        times["process"] = (t3 - t2) * 1e3
        times["decode"] = (t1 - t0) * 1e3 + ((t2 - t1) * 1e3 if feed_cropped else 0.0)
        log.outputs.append(image)
        log.drivers.append(driver_crop)
        log.tracked.append(tracked)
        log.posed.append(posed)
        log.times.append(times)
    else:
        log.ended = f"frame cap ({max_frames})"
    log.warp, log.warp_worst = meter.frames, meter.worst
    return log


def find_first_face(source: VideoFileSource, detector: Detector, scan: int = FIRST_FACE_SCAN):
    """The first frame (within `scan`) with a face, and its landmarks; (None, None) if none."""
    for _ in range(scan):
        frame = source.read()
        if frame is None:
            break
        pts = detector(frame.image)
        if pts is not None:
            return frame, pts
    return None, None


def _hull_mask(shape: tuple[int, int], points: list[np.ndarray], margin: float) -> np.ndarray:
    """True outside the grown convex hulls of the given landmark sets (the face region)."""
    mask = np.zeros(shape, np.uint8)
    for pts in points:
        if pts is None:
            continue
        hull = cv2.convexHull(np.round(pts[:, :2]).astype(np.int32))
        cv2.fillConvexPoly(mask, hull, 255)
    grow = max(1, int(round(margin * max((M.face_size(p) for p in points if p is not None), default=0.0))))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    return mask == 0


def driver_speed(tracked: list[np.ndarray | None]) -> np.ndarray:
    """Median landmark speed per frame in face sizes (nan where a face is missing)."""
    speed = np.full(len(tracked), np.nan)
    for t in range(1, len(tracked)):
        a, b = tracked[t - 1], tracked[t]
        if a is not None and b is not None:
            speed[t] = float(np.median(np.linalg.norm(b[:, :2] - a[:, :2], axis=1))) / M.face_size(b)
    return speed


@dataclass
class Stability:
    windows: list[tuple[int, int]]
    jitter_output: float  # % of face size per frame, landmarks detected on the output
    jitter_target: float  # % of face size per frame, the retargeted landmarks (no detector)
    jitter_driver: float  # % of face size per frame, landmarks detected on the driver
    flicker_output: float  # grey levels, outside the face, in the still windows
    flicker_driver: float
    flicker_output_all: float  # grey levels, outside the face, all frames
    flicker_driver_all: float


def measure_stability(log: PassLog, detector: Detector) -> Stability:
    n = len(log.outputs)
    shape = log.outputs[0].shape[:2] if n else (EVAL_SIZE, EVAL_SIZE)
    windows = M.still_windows(driver_speed(log.tracked), STILL_WINDOW, STILL_THRESHOLD, STILL_MAX_WINDOWS)
    jo, jt, jd, fo, fd = [], [], [], [], []
    for s, e in windows:
        outs = [detector(img) for img in log.outputs[s:e]]
        drvs = [detector(img) for img in log.drivers[s:e]]
        if all(p is not None for p in outs):
            jo.append(M.jitter(np.stack(outs)) / M.face_size(outs[0]) * 100)
        if all(p is not None for p in drvs):
            jd.append(M.jitter(np.stack(drvs)) / M.face_size(drvs[0]) * 100)
        posed = np.stack(log.posed[s:e])
        jt.append(M.jitter(posed) / M.face_size(posed[0]) * 100)
        fo.append(M.flicker(log.outputs[s:e], [_hull_mask(shape, [log.posed[t - 1], log.posed[t]], FACE_MARGIN)
                                               for t in range(s + 1, e)]))
        if all(p is not None for p in drvs):
            fd.append(M.flicker(log.drivers[s:e], [_hull_mask(log.drivers[0].shape[:2], [drvs[i - 1], drvs[i]], FACE_MARGIN)
                                                   for i in range(1, e - s)]))
    all_out = M.flicker(log.outputs, [_hull_mask(shape, [log.posed[t - 1], log.posed[t]], FACE_MARGIN)
                                      for t in range(1, n)]) if n > 1 else math.nan
    have = [t for t in range(1, n) if log.tracked[t] is not None and log.tracked[t - 1] is not None]
    all_drv = math.nan
    if have:
        masks = [_hull_mask(log.drivers[0].shape[:2], [log.tracked[t - 1], log.tracked[t]], FACE_MARGIN) for t in have]
        diffs = [(log.drivers[t - 1], log.drivers[t]) for t in have]
        total = [M.flicker([a, b], [m]) for (a, b), m in zip(diffs, masks)]
        all_drv = float(np.nanmean(total))

    def mean(v: list[float]) -> float:
        return float(np.mean(v)) if v else math.nan

    return Stability(windows, mean(jo), mean(jt), mean(jd), mean(fo), mean(fd), all_out, all_drv)


def _thumb(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    s = THUMB / max(h, w)
    small = cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((THUMB, THUMB, 3), np.uint8)
    y, x = (THUMB - small.shape[0]) // 2, (THUMB - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    return canvas


@dataclass
class Moment:
    frame: int
    label: str
    driver: np.ndarray  # thumbnail
    output: np.ndarray


def pick_moments(candidates: list[int], worst: list[tuple[str, int]], count: int) -> list[tuple[int, str]]:
    """Evenly spaced sampled frames, plus the named worst ones, without repeats, in time order."""
    chosen: dict[int, str] = {}
    for name, t in worst:
        if t is not None and t not in chosen:
            chosen[t] = name
    rest = max(0, count - len(chosen))
    if candidates and rest:
        for i in np.unique(np.round(np.linspace(0, len(candidates) - 1, rest)).astype(int)):
            chosen.setdefault(candidates[i], "")
    return sorted(chosen.items())[:max(count, len(worst))]


def _worst_warp(frames: list[WarpFrame]) -> int | None:
    """The frame whose map tears most (fold or duplication), if any does."""
    if not frames:
        return None
    worst = max(frames, key=lambda f: f.badness)
    return worst.index if worst.badness[0] > 0 else None


def _speed(log: PassLog) -> dict[str, list[float]]:
    keys = ("track", "retarget", "render", "process", "decode")
    return {k: [t.get(k, math.nan) for t in log.times] for k in keys}


@dataclass(kw_only=True)
class RunRecord:
    """What every evaluated run records, self- or cross-reenactment."""

    stability: Stability | None = None
    speed: dict[str, list[float]] = field(default_factory=dict)
    warp: list[WarpFrame] = field(default_factory=list)  # every frame run: the final map's quality
    warp_worst: list[WorstFrame] = field(default_factory=list)  # the worst frames, worst first, for sheets
    moments: list[Moment] = field(default_factory=list)
    seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# Self-reenactment


@dataclass
class SelfResult(RunRecord):
    name: str
    status: str  # "ok" or why it was skipped
    frames: int = 0  # frames run through the pipeline
    start: int = 0  # index of the avatar frame in the clip
    ended: str = ""
    crop: SquareCrop | None = None
    sampled: list[int] = field(default_factory=list)
    l1: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    akd: list[float] = field(default_factory=list)  # nan where a face was missed
    missed: int = 0  # sampled frames where the output or the real frame had no face
    base_l1: list[float] = field(default_factory=list)  # the still avatar against the real frame
    base_psnr: list[float] = field(default_factory=list)
    base_ssim: list[float] = field(default_factory=list)
    base_akd: list[float] = field(default_factory=list)
    # Inner-lip and lid gap changes from the avatar frame, % of face size, detected on both sides.
    mouth_open_out: list[float] = field(default_factory=list)
    mouth_open_real: list[float] = field(default_factory=list)
    eye_open_out: list[float] = field(default_factory=list)
    eye_open_real: list[float] = field(default_factory=list)
    neutral_start_err: float = math.nan  # measured on one clip per run (neutral_start.py)


def _score_self(res: SelfResult, avatar_image: np.ndarray, log, detector: Detector) -> None:
    """Image and landmark scores of the sampled output frames against the real ones, and of
    the still avatar (the floor) against the same frames."""
    avatar_pts = detector(avatar_image)
    for t in res.sampled:
        out, gt = log.outputs[t], log.drivers[t]
        res.l1.append(M.l1(out, gt))
        res.psnr.append(M.psnr(out, gt))
        res.ssim.append(M.ssim(out, gt))
        res.base_l1.append(M.l1(avatar_image, gt))
        res.base_psnr.append(M.psnr(avatar_image, gt))
        res.base_ssim.append(M.ssim(avatar_image, gt))
        p_out, p_gt = detector(out), detector(gt)
        if p_out is None or p_gt is None:
            res.missed += 1
            res.akd.append(math.nan)
            res.base_akd.append(math.nan)
        else:
            res.akd.append(M.akd(p_out, p_gt))
            res.base_akd.append(M.akd(avatar_pts, p_gt) if avatar_pts is not None else math.nan)
            if avatar_pts is not None:
                f = M.face_size(avatar_pts) / 100
                (m0, e0), (mo, eo), (mr, er) = (_openings(M.remove_head_motion(avatar_pts, p, RIGID))
                                                for p in (avatar_pts, p_out, p_gt))
                res.mouth_open_out.append((mo - m0) / f)
                res.mouth_open_real.append((mr - m0) / f)
                res.eye_open_out.append((eo - e0) / f)
                res.eye_open_real.append((er - e0) / f)


def self_pass(avatar: Avatar, source: VideoFileSource, crop: SquareCrop, first: Frame, max_frames: int,
              engine: str = "auto") -> PassLog:
    """The clip fed, from its `first` face on, to a portrait cut from that frame by `crop`
    (outputs at EVAL_SIZE, the driver cropped alike), stopping at a scene cut."""
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(framing=SELF_FRAMING, engine=engine))
    # Self-reenactment's reference is the frame the avatar was cut from, as in FOMM's and
    # LivePortrait's protocol: the neutral is that first frame, not searched for.
    puppeteer.calibrate()
    try:
        return run_pass(puppeteer, source, crop, SquareCrop(0, 0, EVAL_SIZE), max_frames, feed_cropped=True,
                        stop_at_cut=True, first=first)
    finally:
        puppeteer.close()


def self_reenactment(clip: Path, detector: Detector, cfg: Settings, neutral_start: bool = False) -> SelfResult:
    """`neutral_start`: also measure the output's dependence on the clip's first frame."""
    t_start = time.perf_counter()
    res = SelfResult(clip.stem, "ok")
    try:
        source = VideoFileSource(clip)
    except PuppetCamError as exc:
        res.status = f"skipped: {exc}"
        return res
    try:
        first, pts = find_first_face(source, detector)
        if first is None:
            res.status = f"skipped: no face in the first {FIRST_FACE_SCAN} frames"
            return res
        crop = SquareCrop.around(source.size, pts[list(lm.FACE_OVAL), :2].mean(axis=0), M.face_size(pts))
        avatar_img = crop.apply(first.image)
        try:
            avatar = prepare_avatar(avatar_img, SELF_FRAMING, name=clip.stem)
        except PuppetCamError as exc:
            res.status = f"skipped: {exc}"
            return res
        log = self_pass(avatar, source, crop, first, cfg.max_frames)
    finally:
        source.close()
    res.start, res.crop, res.frames, res.ended = first.index, crop, len(log.outputs), log.ended
    res.speed = _speed(log)
    res.warp, res.warp_worst = log.warp, log.warp_worst
    cut_short = log.ended.startswith(("scene cut", "face lost")) and res.frames < MIN_SHOT_SECONDS * source.fps
    if cut_short or res.frames < 2 * cfg.stride:
        res.status = f"skipped: the first shot is only {res.frames} frames long ({log.ended})"
        return res

    res.sampled = sample_indices(res.frames, cfg.stride, cfg.samples)
    _score_self(res, avatar.image, log, detector)
    res.stability = measure_stability(log, detector)
    if neutral_start:
        res.neutral_start_err = neutral_start_err(avatar, log.drivers, log.tracked, source.fps, detector,
                                                  PipelineSettings(framing=SELF_FRAMING))

    worst_fold = _worst_warp(res.warp)
    worst_l1 = res.sampled[int(np.argmax(res.l1))]
    akd_arr = np.where(np.isfinite(res.akd), res.akd, -1)
    worst_akd = res.sampled[int(np.argmax(akd_arr))] if np.isfinite(res.akd).any() else None
    for t, name in pick_moments(res.sampled, [("worst L1", worst_l1), ("worst AKD", worst_akd), ("worst tear", worst_fold)],
                                cfg.moments):
        label = f"#{t} fold {res.warp[t].fold_pct:.2f}%"
        if t in res.sampled:
            i = res.sampled.index(t)
            label = f"#{t} L1 {res.l1[i]:.3f}" + (f" AKD {res.akd[i]:.1f}" if np.isfinite(res.akd[i]) else " no face")
        res.moments.append(Moment(t, (name + ": " if name else "") + label, _thumb(log.drivers[t]), _thumb(log.outputs[t])))
    res.seconds = time.perf_counter() - t_start
    return res


# --------------------------------------------------------------------------------------------
# Cross-reenactment


@dataclass
class CrossResult(RunRecord):
    portrait: str
    clip: str
    status: str
    frames: int = 0
    sampled: list[int] = field(default_factory=list)
    detected: list[bool] = field(default_factory=list)  # face found on the output
    expr_error: list[float] = field(default_factory=list)  # % face size, all mesh points, pose removed
    expr_mouth: list[float] = field(default_factory=list)
    expr_eyes: list[float] = field(default_factory=list)
    expr_brows: list[float] = field(default_factory=list)
    expr_requested: list[float] = field(default_factory=list)  # % face size: the still-avatar error
    landmark_error: list[float] = field(default_factory=list)  # % face size, all mesh points, pose kept
    pose_error: list[float] = field(default_factory=list)  # degrees
    pose_requested: list[float] = field(default_factory=list)  # degrees from neutral
    euler_error: list[np.ndarray] = field(default_factory=list)  # |yaw|, |pitch|, |roll| errors
    mouth_open_req: list[float] = field(default_factory=list)  # inner-lip gap change, % face size
    mouth_open_out: list[float] = field(default_factory=list)
    eye_open_req: list[float] = field(default_factory=list)  # lid gap change, % face size
    eye_open_out: list[float] = field(default_factory=list)
    achieved_parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    requested_parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    identity: list[float] = field(default_factory=list)  # descriptor distance avatar -> output
    identity_frames: list[int] = field(default_factory=list)
    identity_driver: float = math.nan  # avatar -> the driver's own face, for scale
    identity_avatar_found: bool = False
    # Eyes and mouth (issue 11), MediaPipe on driver and output, app/face_metrics.py; NaN when
    # the clip gives nothing to measure (no shut eyes, no open mouth).
    face_details: dict[str, float] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{Path(self.portrait).stem} ← {Path(self.clip).stem}"

    @property
    def slug(self) -> str:
        return f"{Path(self.portrait).stem}__{Path(self.clip).stem}"


def _gap(points: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]) -> float:
    return float(np.linalg.norm(points[list(upper), :2] - points[list(lower), :2], axis=1).mean())


def _openings(points: np.ndarray) -> tuple[float, float]:
    """(inner-lip gap, mean lid gap) in the points' units."""
    mouth = _gap(points, (lm.UPPER_INNER_LIP_MID, 82, 312), (lm.LOWER_INNER_LIP_MID, 87, 317))
    eyes = 0.5 * (_gap(points, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER) + _gap(points, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER))
    return mouth, eyes


def _score_cross_frames(res: CrossResult, log: PassLog, detector: Detector, cfg: Settings,
                        neutral_target: np.ndarray, neutral_seen: np.ndarray | None) -> dict[int, np.ndarray | None]:
    """Expression, pose and opening errors of the sampled output frames (MediaPipe on the output
    against what the retargeting asked for); the landmarks seen on each sampled frame."""
    fsize = M.face_size(neutral_target)
    req_open0 = _openings(neutral_target)
    out_open0 = _openings(neutral_seen) if neutral_seen is not None else (math.nan, math.nan)
    parts = {"mouth": MOUTH, "eyes": EYES, "brows": BROWS}
    res.achieved_parts = {p: [] for p in parts}
    res.requested_parts = {p: [] for p in parts}

    res.sampled = sample_indices(res.frames, cfg.stride, cfg.samples, start=cfg.stride)
    out_points: dict[int, np.ndarray | None] = {}
    for t in res.sampled:
        out = log.outputs[t]
        target = log.posed[t]
        seen = detector(out)
        out_points[t] = seen
        res.detected.append(seen is not None)
        if seen is None or neutral_seen is None:
            continue
        # Motion = landmarks minus the neutral, measured on each side by its own means: the
        # detector on the output against the detector on the avatar, the target against the
        # avatar's stored landmarks. A detector's bias on this face cancels.
        achieved_full = seen[MESH, :2] - neutral_seen[MESH, :2]
        requested_full = target[MESH, :2] - neutral_target[MESH, :2]
        res.landmark_error.append(float(np.linalg.norm(achieved_full - requested_full, axis=1).mean()) / fsize * 100)
        achieved = M.remove_head_motion(neutral_seen, seen, RIGID) - neutral_seen[:, :2]
        requested = M.remove_head_motion(neutral_target, target, RIGID) - neutral_target[:, :2]
        diff = np.linalg.norm(achieved - requested, axis=1) / fsize * 100
        res.expr_error.append(float(diff[MESH].mean()))
        res.expr_mouth.append(float(diff[MOUTH].mean()))
        res.expr_eyes.append(float(diff[EYES].mean()))
        res.expr_brows.append(float(diff[BROWS].mean()))
        res.expr_requested.append(float(np.linalg.norm(requested[MESH], axis=1).mean()) / fsize * 100)
        for p, idx in parts.items():
            res.achieved_parts[p].append(achieved[idx] / fsize)
            res.requested_parts[p].append(requested[idx] / fsize)
        r_req = M.head_rotation(neutral_target, target, RIGID)
        r_out = M.head_rotation(neutral_seen, seen, RIGID)
        res.pose_error.append(M.rotation_angle_degrees(r_out, r_req))
        res.pose_requested.append(M.rotation_angle_degrees(r_req, np.eye(3)))
        res.euler_error.append(np.abs(rotation_to_euler(r_out) - rotation_to_euler(r_req)))
        m_req, e_req = _openings(M.remove_head_motion(neutral_target, target, RIGID))
        m_out, e_out = _openings(M.remove_head_motion(neutral_seen, seen, RIGID))
        res.mouth_open_req.append((m_req - req_open0[0]) / fsize * 100)
        res.mouth_open_out.append((m_out - out_open0[0]) / fsize * 100)
        res.eye_open_req.append((e_req - req_open0[1]) / fsize * 100)
        res.eye_open_out.append((e_out - out_open0[1]) / fsize * 100)

    return out_points


def _score_identity(res: CrossResult, log: PassLog, embedder, cfg: Settings, avatar256: np.ndarray,
                    neutral_seen: np.ndarray | None, out_points: dict[int, np.ndarray | None]) -> None:
    """Identity distance of sampled output frames, and of the driver, to the avatar."""
    ref = embedder.embed(avatar256, neutral_seen)
    res.identity_avatar_found = ref is not None
    if ref is not None:
        for t in sample_indices(len(res.sampled), 1, cfg.identity_samples, start=0):
            frame_t = res.sampled[t]
            e = embedder.embed(log.outputs[frame_t], out_points.get(frame_t))
            if e is not None:
                res.identity.append(embedder_distance(ref, e))
                res.identity_frames.append(frame_t)
        drv = []
        for t in sample_indices(res.frames, max(1, res.frames // 3), 3, start=0):
            e = embedder.embed(log.drivers[t], log.tracked[t])
            if e is not None:
                drv.append(embedder_distance(ref, e))
        res.identity_driver = float(np.mean(drv)) if drv else math.nan


def _cross_moments(res: CrossResult, log: PassLog, cfg: Settings) -> None:
    """The frames the report shows: worst expression, largest request, worst identity, worst
    tear, and the first frame where the output had no face."""
    worst = []
    if res.expr_error:
        have = [t for t, d in zip(res.sampled, res.detected) if d]
        worst.append(("worst expression", have[int(np.argmax(res.expr_error))]))
        worst.append(("largest request", have[int(np.argmax(res.expr_requested))]))
    if res.identity:
        worst.append(("worst identity", res.identity_frames[int(np.argmax(res.identity))]))
    worst.append(("worst tear", _worst_warp(res.warp)))
    missed = [t for t, d in zip(res.sampled, res.detected) if not d]
    if missed:
        worst.append(("no face on output", missed[0]))
    have = [t for t, d in zip(res.sampled, res.detected) if d]
    errs = dict(zip(have, res.expr_error))
    ids = dict(zip(res.identity_frames, res.identity))
    for t, name in pick_moments(res.sampled, worst, cfg.moments):
        label = f"#{t}"
        if t in errs:
            label += f" expr {errs[t]:.1f}%"
        if t in ids:
            label += f" id {ids[t]:.2f}"
        if t not in errs and t not in ids:
            label += f" fold {res.warp[t].fold_pct:.2f}%"
        res.moments.append(Moment(t, (name + ": " if name else "") + label, _thumb(log.drivers[t]), _thumb(log.outputs[t])))


def cross_reenactment(portrait: Path, clip: Path, detector: Detector, embedder, cfg: Settings) -> CrossResult:
    t_start = time.perf_counter()
    res = CrossResult(portrait.name, clip.name, "ok")
    try:
        avatar = load_avatar(portrait, CROSS_FRAMING)
    except PuppetCamError as exc:
        res.status = f"skipped: {exc}"
        return res
    try:
        scan = VideoFileSource(clip)
    except PuppetCamError as exc:
        res.status = f"skipped: {exc}"
        return res
    try:
        first, pts = find_first_face(scan, detector, scan=10 ** 6)
        size = scan.size
    finally:
        scan.close()
    if first is None:
        res.status = "skipped: no face in the driving clip"
        return res
    crop = SquareCrop.around(size, pts[list(lm.FACE_OVAL), :2].mean(axis=0), M.face_size(pts))
    # The output is measured on a fixed face crop, as the driver is: MediaPipe's face mesh and
    # dlib both work on faces that fill the image, and a half-body portrait's face is small.
    face = avatar.face.landmarks
    out_crop = SquareCrop.around(avatar.size, face[list(lm.FACE_OVAL), :2].mean(axis=0), M.face_size(face))
    source = VideoFileSource(clip)
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(framing=CROSS_FRAMING))
    try:
        log = run_pass(puppeteer, source, crop, out_crop, cfg.max_frames, feed_cropped=False, stop_at_cut=False)
    finally:
        puppeteer.close()
        source.close()
    res.frames = len(log.outputs)
    res.speed = _speed(log)
    res.warp, res.warp_worst = log.warp, log.warp_worst
    if res.frames < 2:
        res.status = "skipped: the clip has no frames"
        return res

    avatar256 = out_crop.apply(avatar.image)
    neutral_target = out_crop.points(avatar.face.landmarks)  # the retargeting's neutral, in the crop
    neutral_seen = detector(avatar256)  # the same face as the detector sees it
    out_points = _score_cross_frames(res, log, detector, cfg, neutral_target, neutral_seen)

    res.face_details = face_details(log, out_points, res.sampled, avatar256, neutral_seen)

    if embedder is not None:
        _score_identity(res, log, embedder, cfg, avatar256, neutral_seen, out_points)
    res.stability = measure_stability(log, detector)

    _cross_moments(res, log, cfg)
    res.seconds = time.perf_counter() - t_start
    return res


def face_details(log: PassLog, out_points: dict[int, np.ndarray | None], sampled: list[int],
                 avatar256: np.ndarray, neutral_seen: np.ndarray | None) -> dict[str, float]:
    """Gaze gains and correlations, blink asymmetry and the mouth interior's ΔE to the avatar's
    own palette (face_metrics.avatar_palette: its lips, cheeks and rest interior, each in 12
    shades of its own lightness and chroma, and off-whites of its own light for teeth), over the sampled frames with a face on both sides."""
    from app import face_metrics as fm

    pairs = [(log.tracked[t], out_points[t], log.outputs[t], log.posed[t]) for t in sampled
             if t < len(log.tracked) and log.tracked[t] is not None and out_points.get(t) is not None]
    nan = math.nan
    out = {"gaze_gain_x": nan, "gaze_gain_y": nan, "gaze_corr_x": nan, "gaze_corr_y": nan,
           "blink_asymmetry": nan, "mouth_interior_delta_e": nan,
           "posed_gaze_corr_x": nan, "posed_gaze_corr_y": nan, "posed_blink_asymmetry": nan}
    if len(pairs) >= 3:
        drv, seen, posed = [p[0] for p in pairs], [p[1] for p in pairs], [p[3] for p in pairs]
        out.update(fm.gaze_follow(drv, seen))
        out["blink_asymmetry"] = fm.blink_asymmetry(drv, seen)
        # The same against the posed landmarks the renderer was asked for: what is lost before
        # the pixels (retargeting, filters) and what in them or in the detector's reading.
        asked = fm.gaze_follow(drv, posed)
        out["posed_gaze_corr_x"], out["posed_gaze_corr_y"] = asked["gaze_corr_x"], asked["gaze_corr_y"]
        out["posed_blink_asymmetry"] = fm.blink_asymmetry(drv, posed)
    if neutral_seen is not None:
        palette = fm.avatar_palette(avatar256, neutral_seen)
        des = [fm.mouth_interior_delta_e(img, pts, palette) for _, pts, img, _ in pairs if fm.mouth_gap(pts) > 0.03]
        des = [d for d in des if math.isfinite(d)]
        out["mouth_interior_delta_e"] = float(np.mean(des)) if des else nan
    return out


def embedder_distance(a: np.ndarray, b: np.ndarray) -> float:
    from .identity import distance

    return distance(a, b)


# --------------------------------------------------------------------------------------------
# Memory


@dataclass
class MemoryProbe:
    frames: int
    peak_rss_mib: float  # the fresh process's peak resident set: the app's whole footprint
    python_peak_mib: float  # tracemalloc: Python and NumPy allocations (not torch, not MediaPipe)
    fps: float
    note: str = ""


def memory_probe(portrait: Path, clip: Path, frames: int = 150) -> MemoryProbe:
    """One Puppeteer on one pair at the app's default framing, in a fresh Python process (so its
    peak memory is the app's and not this harness's), nothing kept."""
    import json
    import subprocess
    import sys

    from .data import repo_root

    cmd = [sys.executable, "-m", "app.evaluate.probe", str(portrait), str(clip), str(frames)]
    try:
        done = subprocess.run(cmd, cwd=repo_root(), capture_output=True, text=True, timeout=300)
        data = json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
        return MemoryProbe(frames, math.nan, math.nan, math.nan, f"the probe failed: {exc}")
    return MemoryProbe(int(data["frames"]), data["peak_rss_mib"], data["python_peak_mib"], data["fps"])
