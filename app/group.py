"""Several faces at once: each person in the camera drives one avatar face of a `Cast`.

Per frame: track up to N faces -> assign them to avatar faces (`FaceAssigner`) -> pose each
avatar face with its own animator (its own neutral, filters, hold and ease) -> run the warp
model for every moving face in ONE batch -> remap, eyes and mouth per face -> paste each
face's support onto the canvas.

Where the cost goes (`python -m app.bench --faces 1 2 4`): tracking and retargeting are per
face; the model batch amortises its per-call cost (on a GPU, kernel launches; on one CPU
thread the model is compute-bound and batching saves ~15%); the remap scales with the pixels
each face covers. So sharing one output among more faces grows the cost well under linearly
(1 -> 4 faces at 1024x1024: about 2x), and a face nobody drives, once eased back to neutral,
costs nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import threading
import time
from typing import Callable

import numpy as np

from engines.base import FieldEngine

from .animator import Animator
from .assign import AssignSettings, FaceAssigner
from .capture import Frame
from .cast import Cast
from .pipeline import FaceTracking, PipelineSettings, TrackedFrame, make_engine
from .retarget import Motion, PosedFace
from .tracking import FaceObservation, TrackerSettings


@dataclass
class GroupFrameResult:
    index: int
    image: np.ndarray
    driver: np.ndarray
    faces: list[FaceObservation | None]  # per avatar face: the driver face that drove it
    posed: list[PosedFace]
    motions: list[Motion]
    people: list[int | None]  # per avatar face: the person number driving it
    times: dict[str, float] = field(default_factory=dict)


class GroupPuppeteer:
    """The per-frame work for a cast of N avatar faces; same `process`/`close` as `Puppeteer`."""

    def __init__(self, cast: Cast, settings: PipelineSettings = PipelineSettings(),
                 assign: AssignSettings = AssignSettings(), engine: FieldEngine | None = None,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.cast = cast
        grid = cast.faces[0].avatar.rig.grid_size
        self.engine = engine or make_engine(settings.engine, grid)
        # Tracking exactly N faces: MediaPipe re-runs its detector only while fewer are tracked.
        self.tracking = FaceTracking(TrackerSettings(max_faces=len(cast.faces)))
        self.assigner = FaceAssigner(cast.slot_x(), assign, on_change)
        self.animators = [Animator(f.avatar, self.engine, settings.animator) for f in cast.faces]
        self._batches: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def calibrate(self) -> None:
        for a in self.animators:
            a.calibrate()

    def swap(self, a: int, b: int) -> None:
        """The people driving avatar faces a and b trade places (each avatar eases to its new driver)."""
        with self._lock:
            self.assigner.swap(a, b)

    def track(self, frame: Frame) -> TrackedFrame:
        """The tracking half of `process`; the live loop runs it in the capture thread."""
        return self.tracking(frame, self.settings.mirror_input)

    def process(self, frame: Frame) -> GroupFrameResult:
        tracked = self.track(frame)
        image = tracked.image
        with self._lock:
            t1 = time.perf_counter()
            drivers = self.assigner.update(tracked.faces, image, frame.timestamp)
            poses = [a.pose(f, frame.timestamp) for a, f in zip(self.animators, drivers)]
            # A face nobody drives that has eased back to neutral is the still canvas: no work.
            active = tuple(k for k, (f, (_, motion)) in enumerate(zip(drivers, poses))
                           if f is not None or not motion.is_neutral())
            disp = np.stack([self.animators[k].renderer.displacement(poses[k][0]) for k in active]) if active else None
            t2 = time.perf_counter()
            grids = self.engine(*self._batch(active), disp) if active else []
            t3 = time.perf_counter()
            out = self.cast.canvas.copy()
            for k, grid in zip(active, grids):
                a, member, face = self.animators[k], self.cast.faces[k], drivers[k]
                crop = a.renderer.render_crop(poses[k][0], a.mouth_source(image, face), grid)
                x0, y0, x1, y1 = member.canvas_box
                np.copyto(out[y0:y1, x0:x1], crop, where=member.support[..., None])
            t4 = time.perf_counter()
        times = {"track": tracked.track_ms, "retarget": (t2 - t1) * 1e3, "render": (t4 - t2) * 1e3,
                 "model": (t3 - t2) * 1e3}
        return GroupFrameResult(frame.index, out, image, drivers, [p for p, _ in poses], [m for _, m in poses],
                                self.assigner.people(), times)

    def _batch(self, active: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        """The rig tensors of these faces, stacked once per set: engines cache constant inputs
        by identity."""
        if active not in self._batches:
            rigs = [self.animators[k].renderer.rig_tensors for k in active]
            self._batches[active] = (np.concatenate([r[0] for r in rigs]), np.concatenate([r[1] for r in rigs]))
        return self._batches[active]

    def close(self) -> None:
        self.tracking.close()
