"""Jitter removal: a still face stays still, a quick nod is not late."""

from __future__ import annotations

import numpy as np

from app.animator import SmoothingSettings
from app.filters import OneEuroFilter


def _run(signal: np.ndarray, fps: float = 30.0) -> np.ndarray:
    f = OneEuroFilter(SmoothingSettings().pose)
    return np.array([f(np.array([v]), i / fps)[0] for i, v in enumerate(signal)])


def test_still_face_jitter_is_removed():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, np.radians(0.3), 300)  # MediaPipe's jitter on a still head
    out = _run(noise)
    assert out[30:].std() < 0.35 * noise[30:].std()


def test_quick_nod_is_not_late():
    fps = 30.0
    t = np.arange(60) / fps
    nod = np.where(t < 1.0, 0.0, np.radians(25.0))  # a 25-degree nod in one frame
    out = _run(nod, fps)
    frames_to_90 = int(np.argmax(out >= 0.9 * nod[-1])) - 30
    assert 0 < frames_to_90 <= 3  # 100 ms at most


def test_smoothing_strength_zero_disables_the_filter():
    from app.animator import _MotionFilter
    from app.retarget import Motion

    filt = _MotionFilter(SmoothingSettings(strength=0.0))
    m = Motion.neutral()
    assert filt(m, 0.0) is m
