"""Monotone re-parametrisations along a normal, composed with the warp's backward maps.

What the lids (`eyes.sharpen_lids`) and the lips (`lips.sharpen_lips`) share. Along a feature
(an eye, the mouth) a few stations carry, across it, where the pose puts its two margins and
where the warp samples the avatar's own margins; in a band either side, each output pixel is
moved along the normal by a piecewise increasing map between the two, so the composed map is
orientation-preserving wherever the warp is: the margins land at pixel resolution and nothing
folds.
"""

from __future__ import annotations

import cv2
import numpy as np


def rowwise_interp(x: np.ndarray, xp: np.ndarray, fp: np.ndarray) -> np.ndarray:
    """`np.interp(x[i], xp[i], fp[i])` for every row i at once (`xp` rows non-decreasing)."""
    n = xp.shape[1]
    hi = np.clip((xp < x[:, None]).sum(axis=1), 1, n - 1)
    rows = np.arange(len(x))
    x0, x1 = xp[rows, hi - 1], xp[rows, hi]
    t = np.clip((x - x0) / np.maximum(x1 - x0, 1e-9), 0.0, 1.0)
    return fp[rows, hi - 1] + (fp[rows, hi] - fp[rows, hi - 1]) * t


def levels_across(mx: np.ndarray, my: np.ndarray, base: np.ndarray, n: np.ndarray, lo: np.ndarray,
                  hi: np.ndarray, ns: np.ndarray, probes: int) -> tuple[np.ndarray, np.ndarray]:
    """Along each station's normal (`probes` output offsets `lo`..`hi` from `base`), how far
    across the feature (along the avatar's unit normal `ns`) the warp samples: made
    non-decreasing, so the margins' output positions can be read off it by interpolation
    (`rowwise_interp`). Returns (levels, offsets)."""
    probe_v = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, probes)[None]
    q = (base[:, None, :] + probe_v[..., None] * n).astype(np.float32)
    qx, qy = q[..., 0].reshape(-1, 1), q[..., 1].reshape(-1, 1)
    sx = cv2.remap(mx, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(probe_v.shape)
    sy = cv2.remap(my, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(probe_v.shape)
    return np.maximum.accumulate(sx * ns[0] + sy * ns[1], axis=1), probe_v


def ease_along(values: np.ndarray, reach: int, kernel: np.ndarray) -> np.ndarray:
    """Per-station values eased along the feature: each the smallest within `reach` stations
    either side, then smoothed by `kernel` (odd length, summing to 1); the ends are padded
    with their own values. A re-parametrisation whose strength or depth jumps between
    neighbouring stations shears what it moves, and the pixel grid reads a fold there."""
    padded = np.pad(values, reach, mode="edge")
    nearest = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).min(axis=1)
    half = len(kernel) // 2
    return np.convolve(np.pad(nearest, half, mode="edge"), kernel, mode="valid")


def squeeze_profile(t: np.ndarray) -> np.ndarray:
    """0 -> 0, 1 -> 1, slope 0.3 at 0 and 2.4 at 1: the end near the margin is compressed."""
    return 0.3 * t + 0.7 * t * t * t


def compose_along_normal(mx: np.ndarray, my: np.ndarray, c0: np.ndarray, e: np.ndarray, n: np.ndarray,
                         width: float, d: float | np.ndarray, table: np.ndarray, corner_fade: float,
                         outer: np.ndarray | None = None) -> None:
    """Compose the maps (in place) with the re-parametrisation along `n` of the feature from
    `c0` along `e` (`width` pixels long). `table` rows, per station evenly along it: posed
    margins (a_v, b_v, output pixels along n), where the warp samples the avatar's margins
    (a_w, b_w), the station's strength (0: identity), and how far the band's skin is squeezed
    towards the margins (0: evenly). v -> v2, piecewise: [a_v - d, a_v] -> [a_v - d, a_w],
    [a_v, b_v] -> [a_w, b_w], [b_v, b_v + d] -> [b_w, b_v + d]; every piece is increasing, and
    so is its blend with the identity. It fades out over `corner_fade` widths past each end.
    `d`: the band's depth either side: one for all, per station (stations,), or per station and
    side (stations, 2): above a_v, below b_v. `outer` (stations, 4), optional: a knot inside
    each side's band, (o_v, o_w) above and below: [a_v - d, o_v] -> [a_v - d, o_w] and
    [o_v, a_v] -> [o_w, a_w] (and alike below), so that what lies between the feature's margin
    and its outer line (a lip) is laid out whole, however the warp left it (the squeeze)."""
    h, w = mx.shape
    stations = len(table)
    depth = np.empty((stations, 2))
    depth[:] = np.asarray(d, np.float64).reshape(-1, 1) if np.ndim(d) == 1 else d  # one depth, per station, or per side
    knots = outer is not None
    table = np.column_stack([table, depth] + ([outer] if knots else []))
    base = c0 + np.outer(np.linspace(0.0, 1.0, stations) * width, e)
    a_all, b_all, c1 = table[:, 0], table[:, 1], c0 + e * width
    # The pixels the band covers.
    ext = np.concatenate([base + np.outer(a_all - depth[:, 0], n), base + np.outer(b_all + depth[:, 1], n),
                          [c0 - e * width * corner_fade, c1 + e * width * corner_fade]])
    x0, y0 = np.maximum(np.floor(ext.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(ext.max(axis=0)).astype(int) + 2, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rel_x, rel_y = (xs - c0[0]).ravel(), (ys - c0[1]).ravel()
    u = (rel_x * e[0] + rel_y * e[1]) / width
    v = rel_x * n[0] + rel_y * n[1]
    pos = np.clip(u, 0.0, 1.0) * (stations - 1)
    i0 = np.minimum(pos.astype(np.int32), stations - 2)
    f = (pos - i0)[:, None]
    row = (table[i0] * (1.0 - f) + table[i0 + 1] * f).T
    a_v, b_v, a_w, b_w, strength, sq, d_up, d_lo = row[:8]
    fade = np.clip(np.minimum(u + corner_fade, 1.0 + corner_fade - u) / corner_fade, 0.0, 1.0) * strength
    inside = (v > a_v - d_up) & (v < b_v + d_lo) & (fade > 0)
    if not inside.any():
        return
    t_up = np.clip((v - (a_v - d_up)) / d_up, 0.0, 1.0)
    t_up = t_up + sq * (squeeze_profile(t_up) - t_up)
    t_lo = np.clip((v - b_v) / d_lo, 0.0, 1.0)
    t_lo = t_lo + sq * ((1.0 - squeeze_profile(1.0 - t_lo)) - t_lo)
    t_mid = np.clip((v - a_v) / np.maximum(b_v - a_v, 1e-6), 0.0, 1.0)
    if knots:
        up_v, up_w, lo_v, lo_w = row[8:]
        above = _two_pieces(v, a_v - d_up, up_v, a_v, a_v - d_up, up_w, a_w)
        below = _two_pieces(v, b_v, lo_v, b_v + d_lo, b_w, lo_w, b_v + d_lo)
    else:
        above = (a_v - d_up) + (a_w - (a_v - d_up)) * t_up
        below = b_w + (b_v + d_lo - b_w) * t_lo
    v2 = np.where(v < a_v, above, np.where(v > b_v, below, a_w + (b_w - a_w) * t_mid))
    v2 = v + (v2 - v) * fade
    shift = ((v2 - v) * inside).reshape(y1 - y0, x1 - x0)
    px = (xs + shift * n[0]).astype(np.float32)
    py = (ys + shift * n[1]).astype(np.float32)
    new_x = cv2.remap(mx, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    new_y = cv2.remap(my, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = inside.reshape(y1 - y0, x1 - x0)
    mx[y0:y1, x0:x1][mask] = new_x[mask]
    my[y0:y1, x0:x1][mask] = new_y[mask]


def _two_pieces(v: np.ndarray, v0: np.ndarray, v1: np.ndarray, v2: np.ndarray,
                w0: np.ndarray, w1: np.ndarray, w2: np.ndarray) -> np.ndarray:
    """Piecewise linear v -> w through (v0, w0), (v1, w1), (v2, w2), clamped at the ends; the
    knots' order is the caller's to keep (v0 <= v1 <= v2, w0 <= w1 <= w2: increasing)."""
    first = w0 + (w1 - w0) * np.clip((v - v0) / np.maximum(v1 - v0, 1e-6), 0.0, 1.0)
    second = w1 + (w2 - w1) * np.clip((v - v1) / np.maximum(v2 - v1, 1e-6), 0.0, 1.0)
    return np.where(v < v1, first, second)
