"""Closed eyes: what shows when the avatar's lids meet.

The warp moves the lids together, but at the warp grid's resolution (a few pixels per cell)
a thin band of the eye still shows through. When the lids close, the eye opening is painted
over with the surrounding lid skin (OpenCV's inpainting, on the few hundred pixels of the
eye only) and a lash line is drawn where the lids meet.
"""

from __future__ import annotations

import cv2
import numpy as np

from . import landmarks as lm
from .retarget import eye_openness

_EYES = ((lm.RIGHT_EYE_CORNERS, lm.RIGHT_EYE_UPPER, lm.RIGHT_EYE_LOWER),
         (lm.LEFT_EYE_CORNERS, lm.LEFT_EYE_UPPER, lm.LEFT_EYE_LOWER))


def eye_contour(points: np.ndarray, eye: int) -> np.ndarray:
    corners, upper, lower = _EYES[eye]
    idx = [corners[0], *upper, corners[1], *reversed(lower)]
    return points[idx, :2]


def openness(points: np.ndarray, eye: int) -> float:
    return eye_openness(points, *_EYES[eye])


def close_eyes(canvas: np.ndarray, posed: np.ndarray, neutral_in_pose: np.ndarray, rest_openness) -> None:
    """Paint closed lids into `canvas` (in place) for each eye the pose closes.

    `posed`: the avatar's posed landmarks in canvas pixels; `neutral_in_pose`: its neutral
    landmarks moved rigidly with the head (where the open eye was); `rest_openness`: the
    avatar's own openness per eye.
    """
    h, w = canvas.shape[:2]
    for eye in (0, 1):
        k = openness(posed, eye) / max(rest_openness[eye], 1e-6)
        alpha = float(np.clip((0.6 - k) / 0.35, 0.0, 1.0))
        if alpha <= 0.0:
            continue
        contour = eye_contour(neutral_in_pose, eye)
        width = float(np.linalg.norm(contour[0] - contour[len(contour) // 2]))
        pad = max(3, int(width * 0.35))
        x0, y0 = np.floor(contour.min(axis=0)).astype(int) - pad
        x1, y1 = np.ceil(contour.max(axis=0)).astype(int) + pad
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 - x0 < 4 or y1 - y0 < 4:
            continue
        region = canvas[y0:y1, x0:x1]
        mask = np.zeros(region.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(contour - (x0, y0)).astype(np.int32)], 255)
        mask = cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=max(1, int(width * 0.08)))
        lid = cv2.inpaint(region, mask, max(2.0, width * 0.1), cv2.INPAINT_TELEA)
        # The lash line: a soft dark curve along the posed lids, where they meet.
        corners, upper, lower = _EYES[eye]
        line = (posed[list(upper), :2] + posed[list(lower), :2]) / 2
        line = np.vstack([posed[corners[0], :2], line, posed[corners[1], :2]]) - (x0, y0)
        lash = np.zeros(region.shape[:2], np.uint8)
        cv2.polylines(lash, [np.round(line * 4).astype(np.int32)], False, 255,
                      thickness=max(1, int(round(width * 0.05))), lineType=cv2.LINE_AA, shift=2)
        lash_a = (cv2.GaussianBlur(lash, (3, 3), 0).astype(np.float32) / 255.0 * 0.55)[..., None]
        lid = (lid.astype(np.float32) * (1 - lash_a) + lid.astype(np.float32) * 0.35 * lash_a)
        soft = cv2.GaussianBlur(mask, (5, 5), 0).astype(np.float32)[..., None] / 255.0
        a = np.maximum(soft, lash_a / 0.55 * (lash_a > 0)) * alpha
        region[:] = (lid * a + region.astype(np.float32) * (1 - a)).astype(np.uint8)
