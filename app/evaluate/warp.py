"""The warp as a viewer sees it: folds, extreme stretch, duplication and pops of the final
sampling map, per frame, per run and by the driver's head rotation, plus worst-frame sheets.

The map measured is `Renderer.frame_maps(posed)`, the very map `render_crop` hands to
`cv2.remap` (after the lid sharpening and the upsampling). It replaces the old landmark-triangle
fold count, which looked at the control mesh and so could not see what happens between the
landmarks. The pixel measures themselves live in `app.warp_quality`; this module only runs them
inside the harness and summarises them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import heapq
import math

import cv2
import numpy as np

from app import warp_quality as wq
from app.pose import rotation_to_euler, rotvec_to_matrix

SHEET_FRAMES = 6
SHEET_TILE = 200  # px: the height of each image in a sheet row
# |yaw| bins, degrees: the issue asks for turns up to 45 degrees; the last bin catches beyond.
YAW_BINS: tuple[tuple[float, float], ...] = ((0.0, 15.0), (15.0, 30.0), (30.0, 45.0), (45.0, 180.0))
FOLD_COLOUR = (0, 0, 255)  # BGR red
DUPLICATE_COLOUR = (255, 0, 255)  # magenta
STRETCH_COLOUR = (0, 255, 255)  # yellow


@dataclass(frozen=True)
class WarpFrame:
    """One frame's map quality. Shares are % of the animated pixels; `pop` is nan where there
    is no previous frame to compare with."""

    index: int
    fold_pct: float
    stretch_pct: float
    duplicated_pct: float
    pop: float
    yaw: float  # the driver's head rotation from its neutral, degrees
    pitch: float
    roll: float

    @property
    def badness(self) -> tuple[float, float, float]:
        """Sort key for the worst frames: tears first (fold and duplication read as torn or doubled
        skin), then smears (stretch), then temporal pops as the tie-breaker of clean frames."""
        pop = self.pop if math.isfinite(self.pop) else 0.0
        return (self.fold_pct + self.duplicated_pct, self.stretch_pct, pop)


@dataclass
class WorstFrame:
    """What a sheet row needs: the driver, the output crop and the per-pixel flags."""

    frame: WarpFrame
    driver: np.ndarray
    output: np.ndarray
    flags: wq.QualityMaps


@dataclass
class WarpMeter:
    """Measures each frame's final map, keeping the per-frame numbers and the `keep` worst frames
    (only those hold images, so a long clip costs no memory)."""

    renderer: object  # app.render.Renderer; typed loosely so the harness need not import it
    keep: int = SHEET_FRAMES
    frames: list[WarpFrame] = field(default_factory=list)
    _worst: list[tuple[tuple[float, float, float], int, WorstFrame]] = field(default_factory=list)
    _prev_maps: tuple[np.ndarray, np.ndarray] | None = None
    _prev_local: np.ndarray | None = None
    _prev_openings: np.ndarray | None = None

    def measure(self, index: int, posed, rotation: np.ndarray, output_image: np.ndarray,
                driver: np.ndarray) -> WarpFrame:
        """`posed`: the frame's PosedFace; `rotation`: the driver's head rotation vector from
        neutral (Motion.rotation); `output_image`: the whole rendered avatar image."""
        r = self.renderer
        # The engine is deterministic, so recomputing the maps gives the very map the pipeline
        # rendered with, and the pipeline's own timings stay those of the app.
        mx, my = r.frame_maps(posed)
        local = r.local_landmarks(posed)
        openings = wq.openings_mask(mx.shape, mx, my, local, r.rest_landmarks)
        quality, flags = wq.analyse_map(mx, my, openings, flags=True)
        pop = math.nan
        if self._prev_maps is not None and self._prev_local is not None and self._prev_openings is not None:
            moved = float(np.linalg.norm(local[:, :2] - self._prev_local[:, :2], axis=1).max())
            pop = wq.pop(self._prev_maps, (mx, my), moved, openings | self._prev_openings)
        self._prev_maps, self._prev_local, self._prev_openings = (mx, my), local, openings
        yaw, pitch, roll = rotation_to_euler(rotvec_to_matrix(rotation))
        wf = WarpFrame(index, quality.fold_pct, quality.stretch_pct, quality.duplicated_pct, pop,
                       float(yaw), float(pitch), float(roll))
        self.frames.append(wf)
        key = wf.badness
        if len(self._worst) < self.keep or key > self._worst[0][0]:
            c = r.avatar.rig.crop
            entry = WorstFrame(wf, driver.copy(), output_image[c.y0:c.y1, c.x0:c.x1].copy(), flags)
            # index breaks ties towards the earlier frame and keeps tuples comparable
            item = (key, -index, entry)
            if len(self._worst) < self.keep:
                heapq.heappush(self._worst, item)
            else:
                heapq.heapreplace(self._worst, item)
        return wf

    def reset_motion(self) -> None:
        """Forget the previous map (a cut): the next frame has no pop."""
        self._prev_maps, self._prev_local, self._prev_openings = None, None, None

    @property
    def worst(self) -> list[WorstFrame]:
        """The kept frames, worst first."""
        return [e for _, _, e in sorted(self._worst, key=lambda it: (it[0], it[1]), reverse=True)]


# ------------------------------------------------------------------------------------ numbers


def _finite(values) -> np.ndarray:
    v = np.asarray(list(values), np.float64)
    return v[np.isfinite(v)]


def warp_summary(frames: list[WarpFrame]) -> dict[str, float]:
    """The issue's warp numbers over a set of frames (nan when there are none):
    fold_frames_pct (frames with any fold pixel), fold_pixels_max_pct, stretch_pixels_p95_pct,
    duplicated_pixels_max_pct, pop_p95, and the frame count."""
    if not frames:
        return {"frames": 0, "fold_frames_pct": math.nan, "fold_pixels_max_pct": math.nan,
                "stretch_pixels_p95_pct": math.nan, "duplicated_pixels_max_pct": math.nan, "pop_p95": math.nan}
    fold = np.array([f.fold_pct for f in frames])
    pops = _finite(f.pop for f in frames)
    return {
        "frames": len(frames),
        "fold_frames_pct": float(np.mean(fold > 0) * 100),
        "fold_pixels_max_pct": float(fold.max()),
        "stretch_pixels_p95_pct": float(np.percentile([f.stretch_pct for f in frames], 95)),
        "duplicated_pixels_max_pct": float(max(f.duplicated_pct for f in frames)),
        "pop_p95": float(np.percentile(pops, 95)) if len(pops) else math.nan,
    }


def by_yaw(frames: list[WarpFrame]) -> list[tuple[str, dict[str, float]]]:
    """`warp_summary` per |yaw| bin of the driver's head rotation."""
    out = []
    for lo, hi in YAW_BINS:
        sel = [f for f in frames if lo <= abs(f.yaw) < hi]
        out.append((f"{lo:g}–{hi:g}°" if hi < 180 else f"≥{lo:g}°", warp_summary(sel)))
    return out


# ------------------------------------------------------------------------------------ sheets


def overlay(output: np.ndarray, flags: wq.QualityMaps, grow: int = 0) -> np.ndarray:
    """The output with stretch tinted yellow, duplication magenta and folds red (painted in that
    order, so the worse flag wins where they overlap). `grow` px: folds and duplicates are often
    a handful of pixels, invisible once the sheet is downscaled, so they are drawn fattened."""
    out = output.copy()
    if flags.stretch.any():
        out[flags.stretch] = (0.5 * out[flags.stretch] + 0.5 * np.array(STRETCH_COLOUR)).astype(np.uint8)
    kernel = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    for mask, colour in ((flags.duplicated, DUPLICATE_COLOUR), (flags.fold, FOLD_COLOUR)):
        if mask.any():
            out[cv2.dilate(mask.astype(np.uint8), kernel) > 0 if grow else mask] = colour
    return out


def _fit(image: np.ndarray, height: int) -> np.ndarray:
    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * height / h)), height), interpolation=cv2.INTER_AREA)


def worst_sheet(worst: list[WorstFrame], title: str, tile: int = SHEET_TILE) -> np.ndarray:
    """One row per frame: driver | output | output with the flags painted on."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    rows = []
    for w in worst:
        f = w.frame
        grow = max(1, round(w.output.shape[0] / tile))  # about one sheet pixel
        row = np.concatenate([_fit(w.driver, tile), _fit(w.output, tile), _fit(overlay(w.output, w.flags, grow), tile)],
                             axis=1)
        text = (f"#{f.index} fold {f.fold_pct:.3f}% dup {f.duplicated_pct:.3f}% stretch {f.stretch_pct:.1f}% "
                f"pop {f.pop:.2f} yaw {f.yaw:+.0f}")
        cv2.putText(row, text, (4, 14), font, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(row, text, (4, 14), font, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append(row)
    width = max([r.shape[1] for r in rows] + [480])
    head = np.full((36, width, 3), 255, np.uint8)
    # Hershey fonts are ASCII only: an arrow in a pair's name would print as "???".
    title = title.replace("\u2190", "<-").encode("ascii", "replace").decode()
    cv2.putText(head, title, (4, 14), font, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(head, "driver | output | fold red, duplication magenta, stretch yellow", (4, 30), font, 0.4,
                (0, 0, 0), 1, cv2.LINE_AA)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate([head, *rows], axis=0)
