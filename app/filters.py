"""Jitter removal for tracked signals."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class OneEuroSettings:
    """One Euro filter parameters (Casiez et al., CHI 2012).

    min_cutoff (Hz) sets how still a still face stays; beta sets how fast the cutoff opens with
    speed, so a quick nod is not late. d_cutoff smooths the speed estimate itself.
    """

    min_cutoff: float = 1.0
    beta: float = 0.05
    d_cutoff: float = 1.0


class OneEuroFilter:
    """A vectorised One Euro filter over an array signal of any fixed shape.

    Hand-written: the PyPI packages filter one scalar per object, and this runs on ~1500 values
    per frame; here the whole array is filtered with one set of numpy operations. Each element
    gets its own adaptive cutoff from its own speed.
    """

    def __init__(self, settings: OneEuroSettings = OneEuroSettings()) -> None:
        self.settings = settings
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    @staticmethod
    def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
        tau = 1.0 / (2.0 * np.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    def reset(self) -> None:
        self._x = self._dx = self._t = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._t is None or t <= self._t:
            dt = 1.0 / 30.0 if self._x is not None else None
            if dt is None:
                self._x, self._dx, self._t = x.copy(), np.zeros_like(x), t
                return x.copy()
        else:
            dt = t - self._t
        s = self.settings
        dx = (x - self._x) / dt
        a_d = self._alpha(s.d_cutoff, dt)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        cutoff = s.min_cutoff + s.beta * np.abs(self._dx)
        a = self._alpha(cutoff, dt)
        self._x = a * x + (1 - a) * self._x
        self._t = t if self._t is None or t > self._t else self._t + dt
        return self._x.copy()
