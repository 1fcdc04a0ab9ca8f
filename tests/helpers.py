"""Shared measurement helpers for tests on real footage."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app import landmarks as lm
from app.capture import VideoFileSource
from app.pose import fit_similarity, rotation_to_euler


def read_frames(path: Path, limit: int | None = None, step: int = 1) -> list[np.ndarray]:
    frames = []
    with VideoFileSource(path) as src:
        while (f := src.read()) is not None:
            if f.index % step == 0:
                frames.append(f.image)
            if limit is not None and len(frames) >= limit:
                break
    return frames


def mouth_open(points: np.ndarray) -> float:
    width = np.linalg.norm(points[lm.MOUTH_CORNERS[0], :2] - points[lm.MOUTH_CORNERS[1], :2])
    gap = np.linalg.norm(points[lm.UPPER_INNER_LIP_MID, :2] - points[lm.LOWER_INNER_LIP_MID, :2])
    return float(gap / width)


def eye_open(points: np.ndarray) -> float:
    total = 0.0
    for corners, upper, lower in ((lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER),
                                  (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER)):
        width = np.linalg.norm(points[corners[0], :2] - points[corners[1], :2])
        gap = np.linalg.norm(points[list(upper), :2] - points[list(lower), :2], axis=1).mean()
        total += gap / width
    return float(total / 2)


def head_angles(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) of `points` relative to `reference`, degrees."""
    rigid = list(lm.RIGID)
    return rotation_to_euler(fit_similarity(reference[rigid], points[rigid]).rotation)


def correlation(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def drive_frames(avatar, frames: list[np.ndarray], fps: float, neutral: np.ndarray | None = None,
                 keep_images: bool = False, settings=None) -> dict:
    """Drive `avatar` with `frames` through the whole pipeline; MediaPipe on each output.
    Returns paired lists (frames where both faces were found): 'driver', 'output', and the
    'images' (output, when `keep_images`) and 'driver_images' of those frames."""
    from app.capture import Frame
    from app.pipeline import PipelineSettings, Puppeteer
    from app.tracking import FaceTracker

    puppeteer = Puppeteer.for_avatar(avatar, settings or PipelineSettings(engine="torch"))
    if neutral is not None:
        puppeteer.set_neutral(neutral)
    run = {"driver": [], "output": [], "posed": [], "images": [], "driver_images": [], "index": []}
    with FaceTracker() as checker:
        for i, image in enumerate(frames):
            result = puppeteer.process(Frame(image, i, i / fps))
            found = checker.detect(result.image)
            if result.faces[0] is None or not found:
                continue
            run["driver"].append(result.faces[0].landmarks)
            run["output"].append(found[0].landmarks)
            run["index"].append(i)
            run["posed"].append(result.posed[0].landmarks)
            if keep_images:
                run["images"].append(result.image)
                run["driver_images"].append(image)
    puppeteer.close()
    return run
