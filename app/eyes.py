"""Closed eyes: what shows when the avatar's lids meet.

The warp's field lives on a coarse grid (about 3 px per step at 512x512), so on its own it
leaves a shut eye's opening a few pixels tall, and MediaPipe reads that band as an open eye.
`sharpen_lids` rebuilds the backward maps across each closing eye at pixel resolution, so the
lids land exactly where the pose puts them and a shut eye shows only lid skin and lashes;
`close_eyes` then draws the lash line where the lids meet, in the avatar's own lash colour.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import landmarks as lm
from .normal_warp import compose_along_normal, ease_along, levels_across, rowwise_interp
from .retarget import eye_openness

_EYES = ((lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER),
         (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER))


def eye_contour(points: np.ndarray, eye: int) -> np.ndarray:
    corners, upper, lower = _EYES[eye]
    idx = [corners[0], *upper, corners[1], *reversed(lower)]
    return points[idx, :2]


def openness(points: np.ndarray, eye: int) -> float:
    return eye_openness(points, *_EYES[eye])


def lash_colours(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(2, 3) float32 BGR: each eye's own lash-line colour at rest, the darker third of the
    pixels along its upper lid margin. The shut eye's lash line is drawn towards it, so it can
    only be as dark, and of the hue, that the portrait's own lashes are (a fixed darkening drew
    harsh black lines on a pale painting and a purple tint on a warm one)."""
    h, w = image.shape[:2]
    out = np.zeros((2, 3), np.float32)
    for eye in (0, 1):
        corners, upper, _ = _EYES[eye]
        line = points[[corners[0], *upper, corners[1]], :2]
        t = np.linspace(0.0, 1.0, 64)
        seg = np.interp(t, np.linspace(0.0, 1.0, len(line)), np.arange(len(line)))
        i0 = np.minimum(seg.astype(int), len(line) - 2)
        pts = line[i0] + (line[i0 + 1] - line[i0]) * (seg - i0)[:, None]
        xs = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
        ys = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
        px = image[ys, xs].reshape(-1, 3).astype(np.float32)
        order = np.argsort(px.sum(axis=1))
        out[eye] = px[order[: max(len(order) // 3, 1)]].mean(axis=0)
    return out


def close_eyes(canvas: np.ndarray, posed: np.ndarray, rest_openness, lashes: np.ndarray) -> None:
    """Draw the lash line of each eye the pose shuts into `canvas` (in place).

    The lids themselves are closed by the warp, at pixel resolution (`sharpen_lids`): what it
    shows is the avatar's own lid skin and lashes, so nothing is painted over the eye (an
    inpainted patch read as a grey smudge, and MediaPipe still saw a half-open eye in it).
    What is added is a soft lash line where the lids meet, blended towards the avatar's own
    lash colour (`lashes`, from `lash_colours`; never darker than it), more the more the eye is
    shut. `posed`: the avatar's posed landmarks in canvas pixels; `rest_openness`: the
    avatar's own openness per eye.
    """
    h, w = canvas.shape[:2]
    for eye in (0, 1):
        k = openness(posed, eye) / max(rest_openness[eye], 1e-6)
        alpha = float(np.clip((LASH_FROM - k) / (LASH_FROM - LASH_FULL), 0.0, 1.0))
        if alpha <= 0.0:
            continue
        corners, upper, lower = _EYES[eye]
        line = (posed[list(upper), :2] + posed[list(lower), :2]) / 2
        line = np.vstack([posed[corners[0], :2], line, posed[corners[1], :2]])
        width = float(np.linalg.norm(line[0] - line[-1]))
        pad = max(3, int(width * 0.1))
        x0, y0 = np.floor(line.min(axis=0)).astype(int) - pad
        x1, y1 = np.ceil(line.max(axis=0)).astype(int) + pad
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        region = canvas[y0:y1, x0:x1]
        lash = np.zeros(region.shape[:2], np.uint8)
        cv2.polylines(lash, [np.round((line - (x0, y0)) * 4).astype(np.int32)], False, 255,
                      thickness=max(1, int(round(width * 0.04))), lineType=cv2.LINE_AA, shift=2)
        a = cv2.GaussianBlur(lash, (3, 3), 0).astype(np.float32)[..., None] * (LASH_STRENGTH * alpha / 255.0)
        r = region.astype(np.float32)
        # Only pixels lighter than the lashes move, and only towards them: no new hue or depth.
        target = np.minimum(r, lashes[eye])
        region[:] = (r + (target - r) * a).astype(np.uint8)


LASH_FROM = 0.6  # relative openness below which the lash line starts to show
LASH_FULL = 0.2  # and at which it is at full strength
LASH_STRENGTH = 1.0  # share of the way to the avatar's own lash colour at full strength


# --------------------------------------------------------------------------------------------
# Lids at pixel resolution


_SAMPLES = 24  # stations along each eye where the lid geometry is evaluated
_PROBES = 24  # samples along each station's normal where the warp's lid positions are looked up
_CORNER_FADE = 0.15  # eye widths beyond each corner over which the correction fades out
# 0: a shut lid's skin is stretched evenly; 1: mostly away from the lashes. At 1 the skin at
# the band's top was stretched about 7 times (vertical streaks over a shut eye, and MediaPipe
# read one eye of a pair open); at 0 the lash line is stretched into a dark band instead.
LASH_SQUEEZE = 0.5
SHARPEN_FROM = 0.75  # relative openness below which the lids are sharpened,
SHARPEN_RAMP = 0.25  # fully from SHARPEN_FROM - SHARPEN_RAMP
MARGIN = 0.2  # of the rest lid gap
# Eye widths above and below the lids over which the lid skin is re-laid: the wider, the less
# it is stretched, but the more of what lies above (brows, a glasses frame) bends on a blink.
BAND = 0.6


def _lid_curves(points: np.ndarray, eye: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid polylines, corner to corner, (N, 2) each."""
    corners, upper, lower = _EYES[eye]
    return (points[[corners[0], *upper, corners[1]], :2], points[[corners[0], *lower, corners[1]], :2])


def sharpen_lids(mx: np.ndarray, my: np.ndarray, posed: np.ndarray, source: np.ndarray, cell: float,
                 room: np.ndarray | None = None) -> None:
    """Make the backward maps (in place) take each lid exactly where the pose puts it.

    The warp's field is computed on a coarse grid (`cell` pixels per step) and interpolated, so
    across a lid the map ramps over a couple of cells: a closing eye's opening is squeezed to
    a band a few pixels tall instead of vanishing, and MediaPipe reads that band as an open eye.
    Here, in a band of `d` pixels on either side of each closing eye, the warp is *composed*
    with a re-parametrisation along the eye's normal, at pixel resolution: at each station
    along the eye, the output position of the posed upper lid is sent to where the warp itself
    samples the avatar's upper-lid margin, the posed lower lid to where it samples the lower-lid
    margin, and the band's edges stay put. That re-parametrisation is monotone across the eye
    (a shut eye skips the opening, it never turns it over), and the warp is injective, so the
    composed map cannot fold: the lids close sharply and nothing tears.

    `posed`, `source`: (478, >=2) landmarks in crop pixels, posed and at rest. `room`
    (`lid_room`): how far above each upper lid its skin reaches before a hard edge (a glasses
    rim, a brow); the band above the lid stops short of it where it can, so that edge stays
    put instead of bending down with the lid.
    """
    h, w = mx.shape
    for eye in (0, 1):
        # Only a closing eye needs it (the grid's soft lids are harmless on an open one), and
        # it fades in as the eye closes, so nothing pops; most frames skip it.
        k = openness(posed, eye) / max(openness(source, eye), 1e-6)
        strength = float(np.clip((SHARPEN_FROM - k) / SHARPEN_RAMP, 0.0, 1.0))
        if strength <= 0.0:
            continue
        pu, pl = _lid_curves(posed, eye)
        su, sl = _lid_curves(source, eye)
        c0, e, n, width, ns_unit = _eye_axes(pu, su, sl)
        if width < 4:
            continue
        d = max(2.0 * cell, BAND * width)

        def station(curve_p, curve_s):
            u = (curve_p - c0) @ e / width
            v = (curve_p - c0) @ n
            order = np.argsort(u, kind="stable")
            return u[order], v[order], curve_s[order]

        uu, vu, ssu = station(pu, su)
        ul, vl, ssl = station(pl, sl)
        us = np.linspace(0.0, 1.0, _SAMPLES)
        v_up = np.interp(us, uu, vu)
        v_lo = np.maximum(np.interp(us, ul, vl), v_up)  # lids that pass each other have met
        src_up = np.stack([np.interp(us, uu, ssu[:, k]) for k in (0, 1)], 1)
        src_lo = np.stack([np.interp(us, ul, ssl[:, k]) for k in (0, 1)], 1)
        gap_src = np.maximum((src_lo - src_up) @ ns_unit, 1e-6)
        closed = np.clip(1.0 - (v_lo - v_up) / gap_src, 0.0, 1.0)
        # A shut eye takes its lids from a little outside the landmarks' lid lines: on many
        # faces (paintings above all) those lie a pixel or two inside the eye, and the white
        # of the eye there would show as a sliver on the shut lid.
        margin = closed * (MARGIN * gap_src + 0.02 * width)
        level_up = src_up @ ns_unit - margin
        level_lo = src_lo @ ns_unit + margin

        # Along each station's normal, where the warp samples the avatar's lid margins.
        base = c0 + np.outer(us * width, e)
        level, probe_v = levels_across(mx, my, base, n, v_up - d, v_lo + d, ns_unit, _PROBES)
        w_up = rowwise_interp(level_up, level, probe_v)
        w_lo = rowwise_interp(level_lo, level, probe_v)
        d_up = np.full(_SAMPLES, d)
        if room is not None:
            d_up = _band_above(d, v_up - w_up, room[eye] * width / max(float(np.linalg.norm(su[-1] - su[0])), 1e-6))
        # Keep the knots in order so the re-parametrisation stays monotone.
        w_up = np.clip(w_up, v_up - 0.9 * d_up, v_lo + 0.9 * d)
        w_lo = np.clip(np.maximum(w_lo, w_up), w_up, v_lo + 0.9 * d)
        # A band cut short by a hard edge stretches its skin evenly: squeezed towards the
        # lashes as well, its top was stretched 8 times on a portrait with glasses.
        tight = ROOM_STRETCH * np.maximum(v_up - w_up, 0.0)
        cut = np.clip((d_up - tight) / np.maximum(d - tight, 1e-6), 0.0, 1.0)
        shut = closed * LASH_SQUEEZE * np.where(d_up < d, cut, 1.0)

        table = np.column_stack([v_up, v_lo, w_up, w_lo, np.full(_SAMPLES, strength), shut])
        compose_along_normal(mx, my, c0, e, n, width, np.column_stack([d_up, np.full(_SAMPLES, d)]), table,
                             _CORNER_FADE)


# A band above the lid at least this many times as deep as the lid's drop: d / (d - drop), its
# skin's mean stretch, is then at most 3.
ROOM_STRETCH = 1.5
ROOM_SHARE = 0.8  # of the room below a hard edge that the band may take
ROOM_SKIP = 0.1  # eye widths above the lid's margin: its lashes
ROOM_EDGE = 40.0  # grey levels over 2 px: an edge the lid's band should not bend
ROOM_THICK = 0.08  # eye widths its dark side must last (a drawn crease is a thin line)
ROOM_SPAN = 0.6  # share of the eye along which it must run (a rim or a brow spans the eye)


def _band_above(d: float, drop: np.ndarray, room: np.ndarray) -> np.ndarray:
    """Per station, the depth of the band above the upper lid (output pixels): the full `d`,
    or short of the hard edge `room` pixels above the lid's rest margin, which the warp leaves
    about `drop` pixels above the posed lid; never so short that the lid skin left under the
    edge stretches more than about threefold."""
    drop = np.maximum(drop, 0.0)
    return np.clip(drop + ROOM_SHARE * room, np.maximum(ROOM_STRETCH * drop, 2.0), d)


def lid_room(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(2, _SAMPLES) pixels: per eye, at stations evenly along it, how far above the upper lid
    its skin reaches before a hard edge that is darker above (a glasses rim, a brow, a deep
    crease); infinite where there is none within `BAND` eye widths. The lash line's own edge
    (lighter above) and the first `ROOM_SKIP` eye widths are passed over. Once per avatar."""
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32), (0, 0), 1.0)
    us = np.linspace(0.0, 1.0, _SAMPLES)
    out = np.zeros((2, _SAMPLES))
    widths = np.zeros(2)
    for eye in (0, 1):
        su, sl = _lid_curves(points, eye)
        c0, e, _, width, ns = _eye_axes(su, su, sl)
        widths[eye] = width
        out[eye] = BAND * width
        if width < 4:
            continue
        u = (su - c0) @ e / width
        order = np.argsort(u, kind="stable")
        start = np.stack([np.interp(us, u[order], su[order][:, k]) for k in (0, 1)], 1)
        ts = np.arange(ROOM_SKIP * width, BAND * width, 0.5)  # half-pixel steps up from the lid
        thick = max(int(round(ROOM_THICK * width / 0.5)), 1)
        if len(ts) < 4 + thick + 2:
            continue
        q = (start[:, None, :] - ts[None, :, None] * ns).astype(np.float32)
        profile = cv2.remap(grey, q[..., 0], q[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        hard = _hard_edges(profile, thick)
        found = hard.any(axis=1)
        if found.mean() < ROOM_SPAN:
            continue  # no edge along the eye: a lash line curving up at a corner, say
        out[eye, found] = ts[hard[found].argmax(axis=1)]
        # Neighbouring stations agree: the nearest edge within two stations either side, eased.
        out[eye] = ease_along(out[eye], 2, np.ones(5) / 5)
    out[out >= BAND * widths[:, None] - 1e-6] = np.inf  # no edge within the band: it keeps its depth
    return out


def _hard_edges(profile: np.ndarray, thick: int) -> np.ndarray:
    """(rows, steps - 4 - thick) bool: where each row of half-pixel samples (going up from the
    lid) drops by ROOM_EDGE grey levels over 2 px and stays at least half that much darker for
    the next `thick` samples."""
    n = profile.shape[1] - 4 - thick
    light = profile[:, :n]
    dark_side = np.lib.stride_tricks.sliding_window_view(profile[:, 4:], thick + 1, axis=1)[:, :n]
    return (light - profile[:, 4:4 + n] >= ROOM_EDGE) & (light - dark_side.max(axis=2) >= ROOM_EDGE / 2)


def _eye_axes(pu: np.ndarray, su: np.ndarray, sl: np.ndarray):
    """(c0, e, n, width, ns): the posed eye's corner, unit axis along it, unit normal from the
    upper to the lower lid, its width; and the avatar's own unit normal, upper to lower lid."""
    c0, c1 = pu[0], pu[-1]
    width = float(np.linalg.norm(c1 - c0))
    e = (c1 - c0) / max(width, 1e-6)
    n = np.array([-e[1], e[0]])
    s0, s1 = su[0], su[-1]
    ns = np.array([-(s1 - s0)[1], (s1 - s0)[0]])
    if float((sl.mean(axis=0) - su.mean(axis=0)) @ ns) < 0:  # n points from upper to lower lid
        n = -n
    ns_unit = ns / max(float(np.linalg.norm(ns)), 1e-6)
    if float((su.mean(axis=0) - sl.mean(axis=0)) @ ns_unit) > 0:
        ns_unit = -ns_unit
    return c0, e, n, width, ns_unit
