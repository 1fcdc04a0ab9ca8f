"""self.neutral_start_err: does the output depend on the frame a clip starts at?

The same driver frames are rendered twice with the app's own neutral (searched for, no
calibration): once with the clip from its first frame, once from its most extreme frame
(the face farthest, head motion removed, from the clip's median face). After `settle`
seconds both should show the same face; what differs is what the start's neutral left behind.
Run on one self-reenactment clip per evaluation, on its 256x256 crops already decoded, and
with MediaPipe on every `stride`-th frame only, so it costs two short passes.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from app import landmarks as lm
from app.avatar import Avatar
from app.capture import Frame
from app.face_metrics import neutral_start_error
from app.pipeline import PipelineSettings, Puppeteer

from . import metrics as M

MAX_FRAMES = 150  # frames of the clip used: 5 s at 30 fps is enough to settle in 2
SETTLE_SECONDS = 2.0


def most_extreme(tracked: list[np.ndarray | None], last: int) -> int | None:
    """Index (< `last`) of the face farthest from the median face, head motion removed."""
    seen = [(i, p) for i, p in enumerate(tracked[:last]) if p is not None]
    if len(seen) < 3:
        return None
    ref = np.median(np.stack([p[:, :2] for _, p in seen]), axis=0)
    rigid = list(lm.RIGID)
    dist = [np.linalg.norm(M.remove_head_motion(ref, p, rigid) - ref, axis=1).mean() for _, p in seen]
    return seen[int(np.argmax(dist))][0]


def _outputs(avatar: Avatar, frames: list[np.ndarray], start: int, fps: float, settings: PipelineSettings,
             calibrate_at_start: bool) -> list[np.ndarray]:
    puppeteer = Puppeteer.for_avatar(avatar, settings)
    out = []
    try:
        for i in range(start, len(frames)):
            out.append(puppeteer.process(Frame(frames[i], i, (i - start) / fps)).image)
            if calibrate_at_start and i == start:
                puppeteer.calibrate()  # the first face as neutral, as the app once did
    finally:
        puppeteer.close()
    return out


def neutral_start_err(avatar: Avatar, frames: list[np.ndarray], tracked: list[np.ndarray | None], fps: float,
                      detector: Callable[[np.ndarray], np.ndarray | None], settings: PipelineSettings,
                      stride: int = 3, calibrate_at_start: bool = False) -> float:
    """Mean landmark distance (face sizes, MediaPipe on both outputs) between the clip driven
    from its start and from its most extreme frame, over frames `SETTLE_SECONDS` after the
    later start. NaN when the clip is too short to settle."""
    frames = frames[:MAX_FRAMES]
    settle = int(round(SETTLE_SECONDS * fps))
    extreme = most_extreme(tracked, len(frames) - settle - 3 * stride)
    if extreme is None:
        return math.nan
    a = _outputs(avatar, frames, 0, fps, settings, calibrate_at_start)[extreme:]
    b = _outputs(avatar, frames, extreme, fps, settings, calibrate_at_start)
    pairs = [(detector(a[t]), detector(b[t])) for t in range(settle, len(b), stride)]
    pairs = [(p, q) for p, q in pairs if p is not None and q is not None]
    if not pairs:
        return math.nan
    return neutral_start_error([p for p, _ in pairs], [q for _, q in pairs], fps, settle_seconds=0.0)
