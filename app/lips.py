"""An open-mouth portrait's inner lips at pixel resolution: shut without a sliver, open
without its own teeth along the lips.

An open-mouth portrait is posed from a closed-lip copy of its landmarks
(`retarget.close_rest_lips`), so its posed inner lips meet; but the warp's field lives on a
coarse grid, and between the meeting lips it still ramps across the portrait's own mouth
interior over a cell or two: MediaPipe read that dark crescent and pink band as a mouth still
1.8% of the face open. `sharpen_lips` does for the mouth what `eyes.sharpen_lids` does for the
lids: it composes the warp with a monotone re-parametrisation along the mouth's normal, at
pixel resolution, that sends each posed inner lip to where the warp samples the portrait's own
inner-lip margin. The warp is injective and the re-parametrisation increasing along every
normal line, so the composed map cannot fold. It runs on every pose of such a portrait: opened
wider than in its picture, the warp put the posed lower lip's edge 5-7 pixels inside the
portrait's own mouth (hdtf_aoc mid-word), and her teeth showed as a pale line along the lower
lip under the painted interior.
"""

from __future__ import annotations

import numpy as np

from .normal_warp import compose_along_normal, ease_along, levels_across, rowwise_interp

# Inner lips, corner to corner (78 and 308 are the inner corners), upper and lower paired.
_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
_OUTER_UPPER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
_OUTER_LOWER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)

_SAMPLES = 32  # stations along the mouth where the lip geometry is evaluated
_PROBES = 32  # samples along each station's normal where the warp's lip positions are looked up
BORDER_CLEARANCE = 2.0  # pixels a station's band keeps from the crop border
_CORNER_FADE = 0.15  # mouth widths beyond each corner over which the correction fades out
MAX_SHEAR = 0.5  # pixels a lip margin's move may change by per pixel along the mouth
BAND = 0.3  # mouth widths above and below the lips over which the lips are re-laid
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
    along n), the source lips' levels along ns, and how strongly the lips are re-laid (0..1:
    by how open the portrait's own mouth is, at any posed opening)."""
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
    # Only where the portrait's own mouth is open: a closed one has no interior to skip.
    strength = np.clip(gap_src / OPEN_AT_REST - 1.0, 0.0, 1.0)
    return us, v_up, v_lo, s_up, s_lo, gap_src * src_width, strength


def sharpen_lips(mx: np.ndarray, my: np.ndarray, posed: np.ndarray, source: np.ndarray, cell: float) -> None:
    """Make the backward maps (in place) take each inner lip exactly where the pose puts it,
    wherever the portrait's own (`source`) mouth is open, whatever the posed opening.

    In a band of `d` pixels either side of the mouth, at each station along it, the output
    position of the posed upper inner lip is sent to where the warp samples the portrait's
    upper inner-lip margin, the posed lower lip to where it samples the lower margin, and the
    band's edges stay put; piecewise linear and increasing along the mouth's normal, and
    blended with the identity by how open the portrait's own mouth is (a constant per station:
    nothing pops as the posed lips move). Between the posed lips the portrait's own interior
    is stretched, and the mouth fill paints over it.
    `posed`, `source`: (478, >=2) landmarks in crop pixels, posed and at rest.
    """
    h, w = mx.shape
    c0, e, n, width, ns = _frame(posed, source)
    if width < 4:
        return
    us, v_up, v_lo, s_up, s_lo, gap_src, strength = _stations(posed, source, c0, e, n, width, ns)
    if not strength.any():
        return
    d = max(2.0 * cell, BAND * width)
    base = c0 + np.outer(us * width, e)
    # A station whose band reaches the crop border is left to the warp: the map must stay the
    # identity on the border (the crop pastes back seamlessly), and fading per station, along
    # the mouth, keeps the re-parametrisation increasing across it.
    ends = np.concatenate([base + (v_up - d)[:, None] * n, base + (v_lo + d)[:, None] * n], axis=1).reshape(-1, 2, 2)
    clear = np.all((ends >= BORDER_CLEARANCE) & (ends <= np.array([w - 1, h - 1]) - BORDER_CLEARANCE), axis=(1, 2))
    strength = _smooth_along(strength * clear)
    if not strength.any():
        return
    margin = strength * (MARGIN * gap_src + MARGIN_WIDTH * width)
    level_up, level_lo = s_up - margin, s_lo + margin

    # Along each station's normal, where the warp samples the portrait's lip margins.
    level, probe_v = levels_across(mx, my, base, n, v_up - d, v_lo + d, ns, _PROBES)
    w_up = rowwise_interp(level_up, level, probe_v)
    w_lo = rowwise_interp(level_lo, level, probe_v)
    # Knots in order, inside the band, so the re-parametrisation stays increasing.
    w_up = np.clip(w_up, v_up - 0.9 * d, v_lo + 0.9 * d)
    w_lo = np.clip(np.maximum(w_lo, w_up), w_up, v_lo + 0.9 * d)
    step = width / max(len(us) - 1, 1)
    w_up = _bounded_shear(v_up, w_up, strength, MAX_SHEAR * step)
    w_lo = np.maximum(_bounded_shear(v_lo, w_lo, strength, MAX_SHEAR * step), w_up)
    # No squeeze: the lips stay whole.
    table = np.column_stack([v_up, v_lo, w_up, w_lo, strength, np.zeros_like(strength)])
    outer = _outer_knots(posed, source, c0, e, n, width, ns, us, (v_up, v_lo), (w_up, w_lo), d, level, probe_v,
                         strength, MAX_SHEAR * step)
    compose_along_normal(mx, my, c0, e, n, width, d, table, _CORNER_FADE, outer)


def _outer_knots(posed, source, c0, e, n, width, ns, us, v, w, d, level, probe_v, strength, limit) -> np.ndarray:
    """(stations, 4): per station the posed outer lip lines (above the upper lip, below the
    lower) and where the warp samples the portrait's own outer lip lines, as knots inside the
    band (`compose_along_normal`'s `outer`): each lip is laid out whole, at its posed height.
    The coarse warp squeezes the lips together with the mouth's interior as the mouth closes:
    an open-mouth portrait's closed upper lip came out at a third of its height."""
    cols = []
    for idx, inner_v, inner_w, side in ((_OUTER_UPPER, v[0], w[0], -1.0), (_OUTER_LOWER, v[1], w[1], 1.0)):
        p, src = posed[list(idx), :2], source[list(idx), :2]
        u = (p - c0) @ e / width
        order = np.argsort(u, kind="stable")
        o_v = np.interp(us, u[order], ((p - c0) @ n)[order])
        o_w = rowwise_interp(np.interp(us, u[order], (src @ ns)[order]), level, probe_v)
        edge = inner_v + side * d  # the band's far edge, which stays put
        # Inside the band, on the lip's side of the margin, and in order, so every piece rises.
        o_v = np.clip(side * (o_v - inner_v), 0.0, 0.9 * d) * side + inner_v
        o_w = _bounded_shear(o_v, o_w, strength, limit)
        # The skin between the band's edge and the outer line keeps a tenth of its room.
        if side < 0:
            o_w = np.clip(o_w, edge + 0.1 * (inner_w - edge), inner_w)
        else:
            o_w = np.clip(o_w, inner_w, edge - 0.1 * (edge - inner_w))
        cols += [o_v, o_w]
    return np.column_stack(cols)


def _bounded_shear(v: np.ndarray, w: np.ndarray, strength: np.ndarray, limit: float) -> np.ndarray:
    """`w` (a lip margin's knot per station) moved towards `v` where the margin's move,
    `strength * (w - v)`, changes by more than `limit` pixels from one station to the next: the
    largest such move under the asked one (its lower Lipschitz envelope). At a turned mouth's
    far corner, where the lips meet, the warp's margins are read several pixels apart at
    neighbouring stations; the map sheared that far within a pixel turned pixel cells over."""
    move = strength * (w - v)
    idx = np.arange(len(move))
    envelope = (np.abs(move)[None, :] + limit * np.abs(idx[:, None] - idx[None, :])).min(axis=1)
    kept = np.sign(move) * envelope
    return np.where(strength > 1e-6, v + kept / np.maximum(strength, 1e-6), w)


def _smooth_along(strength: np.ndarray) -> np.ndarray:
    """Each station's strength eased towards its neighbours' (a one-station erosion, then a
    five-station triangle): the lips' shift may then change only gradually along the mouth.
    Two re-laid stations beside clear ones (a mouth at the crop border, its far end turned
    away) moved 3 pixels across one, and the pixel grid's differences read a fold there."""
    return ease_along(strength, 1, np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0)
