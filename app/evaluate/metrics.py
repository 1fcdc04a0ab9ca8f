"""The numbers: pure functions on images and landmark arrays, no I/O and no models.

Images are compared in [0, 1] (uint8 inputs are divided by 255). Landmarks are (N, 2) or
(N, 3) pixel arrays; only x and y enter the distances.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from app.pose import fit_similarity

# SSIM as in Wang et al. 2004 and scikit-image's `structural_similarity(gaussian_weights=True,
# sigma=1.5, use_sample_covariance=False, data_range=1)`: an 11x11 Gaussian window (sigma 1.5,
# truncated at 3.5 sigma), reflected borders, the 5-pixel border left out of the mean, and the
# mean over colour channels.
SSIM_SIGMA = 1.5
SSIM_WINDOW = 11
SSIM_K1, SSIM_K2 = 0.01, 0.03


def to_unit(image: np.ndarray) -> np.ndarray:
    """An image as float64 in [0, 1]; uint8 is divided by 255, floats are taken as they are."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = to_unit(a), to_unit(b)
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return a, b


def l1(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of all pixels and channels, images in [0, 1]."""
    a, b = _check_pair(a, b)
    return float(np.abs(a - b).mean())


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB; +inf for identical images."""
    a, b = _check_pair(a, b)
    mse = float(((a - b) ** 2).mean())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Structural similarity (mean SSIM), 1.0 for identical images. See the module constants."""
    a, b = _check_pair(a, b)
    if a.ndim == 3:
        return float(np.mean([ssim(a[..., c], b[..., c], data_range) for c in range(a.shape[2])]))
    if min(a.shape) < SSIM_WINDOW:
        raise ValueError(f"images must be at least {SSIM_WINDOW} pixels on each side for SSIM")
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    pad = (SSIM_WINDOW - 1) // 2
    return float((num / den)[pad:-pad, pad:-pad].mean())


def akd(points_a: np.ndarray, points_b: np.ndarray, scale: float = 1.0) -> float:
    """Average keypoint distance: mean Euclidean distance between corresponding landmarks (x, y),
    multiplied by `scale` (e.g. 256 / image width to report at 256x256)."""
    a = np.asarray(points_a, dtype=np.float64)[:, :2]
    b = np.asarray(points_b, dtype=np.float64)[:, :2]
    if a.shape != b.shape:
        raise ValueError(f"landmark sets differ in shape: {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b, axis=1).mean() * scale)


def jitter(sequence: np.ndarray) -> float:
    """Mean frame-to-frame displacement of landmarks over a (T, N, 2+) sequence, in its units.

    0 for a constant sequence; for i.i.d. Gaussian noise of standard deviation sigma per
    coordinate around a fixed position it is sigma * sqrt(pi) (the mean of a Rayleigh
    distribution of scale sigma * sqrt(2)).
    """
    seq = np.asarray(sequence, dtype=np.float64)
    if seq.ndim != 3 or len(seq) < 2:
        raise ValueError("jitter needs a (T >= 2, N, 2) sequence")
    return float(np.linalg.norm(np.diff(seq[..., :2], axis=0), axis=-1).mean())


def flicker(frames: list[np.ndarray] | np.ndarray, masks: list[np.ndarray] | np.ndarray | None = None) -> float:
    """Mean absolute frame-to-frame difference in 8-bit grey levels (0-255 scale, all channels),
    over the pixels where `masks[t]` (for the pair t-1, t) is True; everywhere without masks."""
    if len(frames) < 2:
        raise ValueError("flicker needs at least two frames")
    total, count = 0.0, 0
    for t in range(1, len(frames)):
        d = np.abs(to_unit(frames[t]) - to_unit(frames[t - 1])) * 255.0
        if d.ndim == 3:
            d = d.mean(axis=2)
        if masks is not None:
            m = np.asarray(masks[t - 1], dtype=bool)
            total += float(d[m].sum())
            count += int(m.sum())
        else:
            total += float(d.sum())
            count += d.size
    return total / count if count else math.nan


def rotation_angle_degrees(r_a: np.ndarray, r_b: np.ndarray) -> float:
    """The geodesic angle between two 3x3 rotations, in degrees."""
    r = np.asarray(r_a, dtype=np.float64) @ np.asarray(r_b, dtype=np.float64).T
    c = (np.trace(r) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def head_rotation(neutral: np.ndarray, points: np.ndarray, rigid: np.ndarray | list[int]) -> np.ndarray:
    """3-D rotation (3x3) of a face from its neutral landmarks, fitted on the rigid points."""
    idx = list(rigid)
    return fit_similarity(np.asarray(neutral, np.float64)[idx], np.asarray(points, np.float64)[idx]).rotation


def remove_head_motion(neutral: np.ndarray, points: np.ndarray, rigid: np.ndarray | list[int]) -> np.ndarray:
    """`points` (x, y) brought back onto `neutral` by the 2-D similarity of the rigid points, so
    that what differs from `neutral` afterwards is expression only."""
    idx = list(rigid)
    p = np.asarray(points, np.float64)[:, :2]
    back = fit_similarity(p[idx], np.asarray(neutral, np.float64)[idx, :2])
    return back.apply(p)


def transfer_gain(achieved: np.ndarray, requested: np.ndarray) -> float:
    """Least-squares gain g of achieved ≈ g * requested (1 = transferred in full, 0 = not at all);
    nan when nothing was requested."""
    a = np.asarray(achieved, np.float64).ravel()
    r = np.asarray(requested, np.float64).ravel()
    den = float(r @ r)
    return float(a @ r / den) if den > 0 else math.nan


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, np.float64).ravel()
    b = np.asarray(b, np.float64).ravel()
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def face_size(points: np.ndarray) -> float:
    """The larger side of the face oval's bounding box, in the points' units (as the app uses)."""
    from app.retarget import face_size as _face_size

    return _face_size(np.asarray(points, np.float64))


def still_windows(speed: np.ndarray, window: int, threshold: float, max_windows: int) -> list[tuple[int, int]]:
    """Up to `max_windows` non-overlapping [start, stop) frame windows of length `window` where the
    mean per-frame speed is lowest and below `threshold`. `speed[t]` is the motion between frames
    t-1 and t (nan where unknown, e.g. no face: such windows are never still); a window's score
    is the mean over its frames after the first. Stillest first."""
    speed = np.asarray(speed, np.float64)
    n = len(speed)
    if n < window or window < 2:
        return []
    scores = np.array([np.mean(speed[s + 1:s + window]) for s in range(n - window + 1)])
    scores = np.where(np.isfinite(scores), scores, np.inf)
    chosen: list[tuple[int, int]] = []
    for s in np.argsort(scores, kind="stable"):
        if len(chosen) >= max_windows or not scores[s] < threshold:
            break
        if all(s + window <= a or s >= b for a, b in chosen):
            chosen.append((int(s), int(s + window)))
    return chosen


def summary(values: list[float] | np.ndarray) -> dict[str, float]:
    """mean, median, p95 and max of the finite values (nan when there are none)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    if len(v) == 0:
        return {"mean": math.nan, "median": math.nan, "p95": math.nan, "max": math.nan, "n": 0}
    return {"mean": float(v.mean()), "median": float(np.median(v)), "p95": float(np.percentile(v, 95)),
            "max": float(v.max()), "n": int(len(v))}
