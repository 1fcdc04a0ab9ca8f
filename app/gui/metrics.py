"""What the window shows of each frame, and the output's timing: frame rate, and the stall a
viewer sees when the avatar, the number of faces or the source is switched."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
import logging
import time

import cv2
import numpy as np
from PySide6.QtGui import QImage

from app.cast import Cast
from app.pipeline import FrameResult

log = logging.getLogger("puppetcam.gui")


@dataclass
class FrameView:
    """What the window shows for one frame; images are ready-scaled QImages."""

    index: int
    driver: QImage
    output: QImage
    face_found: bool
    people: list[int | None] | None = None  # per avatar face, who drives it (None: one face)


@dataclass
class SwitchStall:
    """Output timing around an avatar, faces or source switch, in milliseconds.

    gap_ms: between the last output frame before the swap and the first one after it (the
    stall a viewer sees). max_gap_ms: the longest interval between output frames from the
    request to the first new frame (includes any slowdown while the avatar loaded).
    period_ms: the median interval before the request, for comparison.
    """

    kind: str  # "avatar", "faces" or "source"
    name: str
    requested_t: float
    load_ms: float = 0.0
    swap_ms: float = 0.0
    gap_ms: float | None = None
    max_gap_ms: float = 0.0
    period_ms: float = 0.0
    _set_t: float | None = None
    _last_old_t: float | None = None
    _cast: Cast | None = None  # a cast switch: the first frame showing this cast is the new one
    _session: int | None = None  # a source switch: the first frame of this session is


class OutputTiming:
    """Output frame rate and switch stalls; `frame` runs on the render thread."""

    def __init__(self) -> None:
        self.output_fps = 0.0
        self.frames_out = 0
        self.switches: list[SwitchStall] = []
        self.last_frame_t: float | None = None
        self._intervals: deque[float] = deque(maxlen=90)
        self._probe: SwitchStall | None = None

    def period_ms(self) -> float:
        return float(np.median(self._intervals)) * 1e3 if self._intervals else 0.0

    def watch(self, probe: SwitchStall) -> None:
        """Measure this switch from now (its `_set_t`) to the first frame that shows it."""
        probe._set_t = probe._set_t or time.perf_counter()
        if probe._last_old_t is None:
            probe._last_old_t = self.last_frame_t
        self._probe = probe

    def frame(self, result: FrameResult, session_id: int) -> None:
        now = time.perf_counter()
        if self.last_frame_t is not None:
            self._intervals.append(now - self.last_frame_t)
            self.output_fps = 1.0 / max(float(np.mean(list(self._intervals)[-30:])), 1e-6)
        self._check_switch(now, result, session_id)
        self.last_frame_t = now
        self.frames_out += 1

    def _check_switch(self, now: float, result: FrameResult, session_id: int) -> None:
        probe = self._probe
        if probe is None:
            return
        if self.last_frame_t is not None and self.last_frame_t >= probe.requested_t:
            probe.max_gap_ms = max(probe.max_gap_ms, (now - self.last_frame_t) * 1e3)
        new = result.cast is probe._cast if probe._cast is not None else session_id == probe._session
        if not new:
            if probe._cast is not None:
                probe._last_old_t = now  # made with the previous cast
            return
        if probe._last_old_t is not None:
            probe.gap_ms = (now - probe._last_old_t) * 1e3
            probe.max_gap_ms = max(probe.max_gap_ms, probe.gap_ms)
        self.switches.append(probe)
        self._probe = None
        log.info("%s switch to %s: gap %.0f ms, max gap %.0f ms, load %.0f ms", probe.kind, probe.name,
                 probe.gap_ms or 0, probe.max_gap_ms, probe.load_ms)


def to_qimage(bgr: np.ndarray, box: tuple[int, int], points: np.ndarray | None,
              colour: tuple[int, int, int]) -> QImage:
    """`bgr` scaled to fit `box` (aspect kept), with landmark dots if given, as an owned QImage."""
    h, w = bgr.shape[:2]
    bw, bh = max(box[0], 16), max(box[1], 16)
    s = min(bw / w, bh / h)
    if abs(s - 1.0) > 1e-3:
        size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
        img = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    else:
        img = bgr.copy()
    if points is not None:
        _dots(img, np.round(points[:, :2] * s).astype(np.int32), colour, big=s > 0.6)
    img = np.ascontiguousarray(img)
    return QImage(img.data, img.shape[1], img.shape[0], img.strides[0], QImage.Format.Format_BGR888).copy()


def _dots(img: np.ndarray, pts: np.ndarray, colour: tuple[int, int, int], big: bool) -> None:
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < img.shape[1]) & (pts[:, 1] >= 0) & (pts[:, 1] < img.shape[0])
    pts = pts[ok]
    img[pts[:, 1], pts[:, 0]] = colour
    if big:  # 2x2 dots where there is room
        x1 = np.minimum(pts[:, 0] + 1, img.shape[1] - 1)
        y1 = np.minimum(pts[:, 1] + 1, img.shape[0] - 1)
        img[pts[:, 1], x1] = colour
        img[y1, pts[:, 0]] = colour
        img[y1, x1] = colour


def frame_view(result: FrameResult, boxes: dict[str, tuple[int, int]], overlay: bool) -> FrameView:
    """The preview images of a frame, with every face's landmarks when `overlay`."""
    found = [f for f in result.faces if f is not None]
    driver_pts = output_pts = None
    if overlay:
        driver_pts = np.concatenate([f.landmarks for f in found]) if found else None
        output_pts = np.concatenate([p.landmarks[:, :2] + m.origin for p, m in zip(result.posed, result.cast.faces)])
    people = list(result.people) if len(result.people) > 1 else None
    return FrameView(result.index, to_qimage(result.driver, boxes["driver"], driver_pts, (80, 230, 80)),
                     to_qimage(result.image, boxes["output"], output_pts, (230, 200, 60)), bool(found), people)
