"""Closed lips at pixel resolution: an open-mouth portrait's mouth shuts without a sliver.

An open-mouth portrait is posed from a closed-lip copy of its landmarks
(`retarget.close_rest_lips`), so its posed inner lips meet; but the warp's field lives on a
coarse grid, and between the meeting lips it still ramps across the portrait's own mouth
interior over a cell or two: MediaPipe read that dark crescent and pink band as a mouth still
1.8% of the face open. `sharpen_lips` does for the mouth what `eyes.sharpen_lids` does for the
lids: it composes the warp with a monotone re-parametrisation along the mouth's normal, at
pixel resolution, that sends each posed inner lip to where the warp samples the portrait's own
inner-lip margin. The warp is injective and the re-parametrisation increasing along every
normal line, so the composed map cannot fold.
"""

from __future__ import annotations

import cv2
import numpy as np

from .eyes import rowwise_interp

# Inner lips, corner to corner (78 and 308 are the inner corners), upper and lower paired.
_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

_SAMPLES = 32  # stations along the mouth where the lip geometry is evaluated
_PROBES = 32  # samples along each station's normal where the warp's lip positions are looked up
BORDER_CLEARANCE = 2.0  # pixels a station's band keeps from the crop border
_CORNER_FADE = 0.15  # mouth widths beyond each corner over which the correction fades out
BAND = 0.3  # mouth widths above and below the lips over which the lips are re-laid
CLOSING_FROM = 1.0  # posed over rest lip gap below which a station is sharpened,
CLOSING_RAMP = 0.3  # fully from CLOSING_FROM - CLOSING_RAMP
# Mouth widths: a rest gap under this is left alone. A smile showing a little teeth has little
# interior to skip, and sharpening its small openings snaps a talking mouth shut too often.
OPEN_AT_REST = 0.05
# Shut lips could be taken from a little outside the inner-lip landmarks (as the lids are),
# but a laugh's lips are thin: 10% of the gap ate them whole and MediaPipe lost the mouth.
MARGIN = 0.0  # of the rest lip gap
MARGIN_WIDTH = 0.0  # mouth widths


def _frame(posed: np.ndarray, source: np.ndarray):
    """(c0, e, n, width) of the posed mouth and the source's unit normal `ns`; both normals
    point from the upper lip to the lower."""
    c0, c1 = posed[_UPPER[0], :2], posed[_UPPER[-1], :2]
    width = float(np.linalg.norm(c1 - c0))
    e = (c1 - c0) / max(width, 1e-6)
    n = np.array([-e[1], e[0]])
    if float((posed[list(_LOWER), :2].mean(axis=0) - posed[list(_UPPER), :2].mean(axis=0)) @ n) < 0:
        n = -n
    s = source[_UPPER[-1], :2] - source[_UPPER[0], :2]
    ns = np.array([-s[1], s[0]]) / max(float(np.linalg.norm(s)), 1e-6)
    # The source's lips may be far apart or barely so: orient by the chin (152), below both.
    if float((source[152, :2] - source[list(_UPPER), :2].mean(axis=0)) @ ns) < 0:
        ns = -ns
    if float((posed[152, :2] - posed[list(_UPPER), :2].mean(axis=0)) @ n) < 0:
        n = -n
    return c0, e, n, width, ns


def _stations(posed, source, c0, e, n, width, ns):
    """Per station along the mouth: posed lip positions across it (v_up, v_lo, output pixels
    along n), the source lips' levels along ns, and how shut the posed lips are (0..1)."""
    us = np.linspace(0.0, 1.0, _SAMPLES)

    def along(idx):
        p, s = posed[list(idx), :2], source[list(idx), :2]
        u = (p - c0) @ e / width
        order = np.argsort(u, kind="stable")
        return u[order], ((p - c0) @ n)[order], (s @ ns)[order]

    uu, vu, su = along(_UPPER)
    ul, vl, sl = along(_LOWER)
    v_up = np.interp(us, uu, vu)
    v_lo = np.maximum(np.interp(us, ul, vl), v_up)  # lips that pass each other have met
    s_up, s_lo = np.interp(us, uu, su), np.interp(us, ul, sl)
    src_width = float(np.linalg.norm(source[_UPPER[-1], :2] - source[_UPPER[0], :2]))
    gap_src = np.maximum(s_lo - s_up, 0.0) / max(src_width, 1e-6)  # mouth widths
    gap_out = (v_lo - v_up) / width
    ratio = gap_out / np.maximum(gap_src, 1e-6)
    shut = np.clip((CLOSING_FROM - ratio) / CLOSING_RAMP, 0.0, 1.0)
    # Only where the portrait's own mouth is open: a closed one has no interior to skip.
    shut *= np.clip(gap_src / OPEN_AT_REST - 1.0, 0.0, 1.0)
    return us, v_up, v_lo, s_up, s_lo, gap_src * src_width, shut


def sharpen_lips(mx: np.ndarray, my: np.ndarray, posed: np.ndarray, source: np.ndarray, cell: float) -> None:
    """Make the backward maps (in place) take each inner lip exactly where the pose puts it,
    wherever the posed lips are closer together than the portrait's own (`source`) lips.

    In a band of `d` pixels either side of the mouth, at each station along it, the output
    position of the posed upper inner lip is sent to where the warp samples the portrait's
    upper inner-lip margin, the posed lower lip to where it samples the lower margin, and the
    band's edges stay put; piecewise linear and increasing along the mouth's normal, and
    blended with the identity by how shut the lips are (so it fades in as they close, and an
    opening wider than the portrait's own is left to the warp and the mouth fill).
    `posed`, `source`: (478, >=2) landmarks in crop pixels, posed and at rest.
    """
    h, w = mx.shape
    c0, e, n, width, ns = _frame(posed, source)
    if width < 4:
        return
    us, v_up, v_lo, s_up, s_lo, gap_src, shut = _stations(posed, source, c0, e, n, width, ns)
    if not shut.any():
        return
    d = max(2.0 * cell, BAND * width)
    base = c0 + np.outer(us * width, e)
    # A station whose band reaches the crop border is left to the warp: the map must stay the
    # identity on the border (the crop pastes back seamlessly), and fading per station, along
    # the mouth, keeps the re-parametrisation increasing across it.
    ends = np.concatenate([base + (v_up - d)[:, None] * n, base + (v_lo + d)[:, None] * n], axis=1).reshape(-1, 2, 2)
    clear = np.all((ends >= BORDER_CLEARANCE) & (ends <= np.array([w - 1, h - 1]) - BORDER_CLEARANCE), axis=(1, 2))
    shut = _smooth_along(shut * clear)
    if not shut.any():
        return
    margin = shut * (MARGIN * gap_src + MARGIN_WIDTH * width)
    level_up, level_lo = s_up - margin, s_lo + margin

    # Along each station's normal, where the warp samples the portrait's lip margins.
    lo_t, hi_t = v_up - d, v_lo + d
    probe_v = lo_t[:, None] + (hi_t - lo_t)[:, None] * np.linspace(0.0, 1.0, _PROBES)[None]
    q = (base[:, None, :] + probe_v[..., None] * n).astype(np.float32)
    qx, qy = q[..., 0].reshape(-1, 1), q[..., 1].reshape(-1, 1)
    sx = cv2.remap(mx, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(probe_v.shape)
    sy = cv2.remap(my, qx, qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).reshape(probe_v.shape)
    level = np.maximum.accumulate(sx * ns[0] + sy * ns[1], axis=1)
    w_up = rowwise_interp(level_up, level, probe_v)
    w_lo = rowwise_interp(level_lo, level, probe_v)
    # Knots in order, inside the band, so the re-parametrisation stays increasing.
    w_up = np.clip(w_up, v_up - 0.9 * d, v_lo + 0.9 * d)
    w_lo = np.clip(np.maximum(w_lo, w_up), w_up, v_lo + 0.9 * d)
    _compose(mx, my, c0, e, n, width, d, np.column_stack([v_up, v_lo, w_up, w_lo, shut]))


def _smooth_along(strength: np.ndarray) -> np.ndarray:
    """Each station's strength eased towards its neighbours' (a one-station erosion, then a
    five-station triangle): the lips' shift may then change only gradually along the mouth.
    Two shut stations beside clear ones (a mouth at the crop border, its far end turned
    away) moved 3 pixels across one, and the pixel grid's differences read a fold there."""
    padded = np.pad(strength, 1, mode="edge")
    eroded = np.minimum(np.minimum(padded[:-2], padded[1:-1]), padded[2:])
    kernel = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
    return np.convolve(np.pad(eroded, 2, mode="edge"), kernel, mode="valid")


def _compose(mx, my, c0, e, n, width, d, table) -> None:
    """Resample the maps (in place) at v -> v2 along n: [a_v - d, a_v] -> [a_v - d, a_w],
    [a_v, b_v] -> [a_w, b_w], [b_v, b_v + d] -> [b_w, b_v + d], blended with the identity by
    the station's strength; `table` rows (a_v, b_v, a_w, b_w, strength) per station."""
    h, w = mx.shape
    a_all, b_all = table[:, 0], table[:, 1]
    us = np.linspace(0.0, 1.0, len(table))
    base = c0 + np.outer(us * width, e)
    ext = np.concatenate([base + np.outer(a_all - d, n), base + np.outer(b_all + d, n),
                          [c0 - e * width * _CORNER_FADE, c0 + e * width * (1 + _CORNER_FADE)]])
    x0, y0 = np.maximum(np.floor(ext.min(axis=0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(ext.max(axis=0)).astype(int) + 2, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rel_x, rel_y = (xs - c0[0]).ravel(), (ys - c0[1]).ravel()
    u = (rel_x * e[0] + rel_y * e[1]) / width
    v = rel_x * n[0] + rel_y * n[1]
    pos = np.clip(u, 0.0, 1.0) * (len(table) - 1)
    i0 = np.minimum(pos.astype(np.int32), len(table) - 2)
    f = (pos - i0)[:, None]
    a_v, b_v, a_w, b_w, strength = (table[i0] * (1.0 - f) + table[i0 + 1] * f).T
    fade = np.clip(np.minimum(u + _CORNER_FADE, 1.0 + _CORNER_FADE - u) / _CORNER_FADE, 0.0, 1.0) * strength
    inside = (v > a_v - d) & (v < b_v + d) & (fade > 0)
    if not inside.any():
        return
    t_up = np.clip((v - (a_v - d)) / d, 0.0, 1.0)
    t_lo = np.clip((v - b_v) / d, 0.0, 1.0)
    t_mid = np.clip((v - a_v) / np.maximum(b_v - a_v, 1e-6), 0.0, 1.0)
    v2 = np.where(v < a_v, (a_v - d) + (a_w - (a_v - d)) * t_up,
                  np.where(v > b_v, b_w + (b_v + d - b_w) * t_lo, a_w + (b_w - a_w) * t_mid))
    v2 = v + (v2 - v) * fade
    shift = ((v2 - v) * inside).reshape(y1 - y0, x1 - x0)
    px = (xs + shift * n[0]).astype(np.float32)
    py = (ys + shift * n[1]).astype(np.float32)
    new_x = cv2.remap(mx, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    new_y = cv2.remap(my, px, py, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = inside.reshape(y1 - y0, x1 - x0)
    mx[y0:y1, x0:x1][mask] = new_x[mask]
    my[y0:y1, x0:x1][mask] = new_y[mask]
