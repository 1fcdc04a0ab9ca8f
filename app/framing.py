"""Framing: fitting or filling an image into the output size without stretching."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

FRAMING_MODES = ("fit", "fill")
FRAMING_BACKGROUNDS = ("blur", "black")


@dataclass(frozen=True)
class Framing:
    """Output size and how an input of another aspect ratio is fitted into it.

    "fit" shows the whole image and pads the rest; "fill" crops to fill the frame. Neither
    ever stretches. The padding of "fit" is a blurred, dimmed copy of the image by default:
    in a video call black bars look like a broken feed and shift the app's auto-exposure,
    while a soft continuation of the scene reads as ordinary background. "black" is there for
    recordings that must stay plain.
    """

    width: int
    height: int
    mode: str = "fit"
    background: str = "blur"

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"output size must be positive, got {self.width}x{self.height}")
        if self.mode not in FRAMING_MODES:
            raise ValueError(f"framing mode must be one of {FRAMING_MODES}, got {self.mode!r}")
        if self.background not in FRAMING_BACKGROUNDS:
            raise ValueError(
                f"framing background must be one of {FRAMING_BACKGROUNDS}, got {self.background!r}"
            )

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    shrinking = size[0] < image.shape[1] or size[1] < image.shape[0]
    return cv2.resize(
        image, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )


def _blurred_backdrop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A dark, heavily blurred cover of the frame; blurred at 1/16 scale, so it costs ~1 ms."""
    width, height = size
    small = (max(1, width // 16), max(1, height // 16))
    # Cover (crop) the image into the small size so the backdrop is not stretched either.
    cover = _crop_to_aspect(image, width / height, None)
    backdrop = cv2.resize(cover, small, interpolation=cv2.INTER_AREA)
    backdrop = cv2.GaussianBlur(backdrop, (0, 0), sigmaX=2.0)
    backdrop = cv2.resize(backdrop, size, interpolation=cv2.INTER_LINEAR)
    return cv2.convertScaleAbs(backdrop, alpha=0.45)


def _crop_box(
    w: int, h: int, aspect: float, focus: tuple[float, float] | None
) -> tuple[int, int, int, int]:
    """The largest (x0, y0, cw, ch) box in a w x h image with cw/ch = aspect, centred on `focus`
    if it can be."""
    if w / h > aspect:
        cw, ch = max(1, int(round(h * aspect))), h
    else:
        cw, ch = w, max(1, int(round(w / aspect)))
    fx, fy = focus if focus is not None else (w / 2.0, h / 2.0)
    x0 = int(round(min(max(fx - cw / 2.0, 0.0), w - cw)))
    y0 = int(round(min(max(fy - ch / 2.0, 0.0), h - ch)))
    return x0, y0, cw, ch


def _crop_to_aspect(
    image: np.ndarray, aspect: float, focus: tuple[float, float] | None
) -> np.ndarray:
    """The largest crop of `image` with width/height = aspect, centred on `focus` if it can."""
    x0, y0, cw, ch = _crop_box(image.shape[1], image.shape[0], aspect, focus)
    return image[y0 : y0 + ch, x0 : x0 + cw]


def place_in_frame(
    image: np.ndarray, framing: Framing, focus: tuple[float, float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`image` framed as `frame_to_output` does it, and the 2x3 affine that maps image pixels
    to output pixels (so that points found on the image, e.g. landmarks, follow it)."""
    h, w = image.shape[:2]
    size = framing.size
    if (w, h) == size:
        return image, np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    if framing.mode == "fill":
        x0, y0, cw, ch = _crop_box(w, h, framing.width / framing.height, focus)
        out = _resize(image[y0 : y0 + ch, x0 : x0 + cw], size)
        sx, sy = framing.width / cw, framing.height / ch
        return out, np.array([[sx, 0.0, -x0 * sx], [0.0, sy, -y0 * sy]])

    scale = min(framing.width / w, framing.height / h)
    fw = min(framing.width, max(1, int(round(w * scale))))
    fh = min(framing.height, max(1, int(round(h * scale))))
    fitted = _resize(image, (fw, fh))
    x0, y0 = (framing.width - fw) // 2, (framing.height - fh) // 2
    affine = np.array([[fw / w, 0.0, float(x0)], [0.0, fh / h, float(y0)]])
    if (fw, fh) == size:
        return fitted, affine
    if framing.background == "black":
        out = np.zeros((framing.height, framing.width, 3), np.uint8)
    else:
        out = _blurred_backdrop(image, size)
    out[y0 : y0 + fh, x0 : x0 + fw] = fitted
    return out, affine


def frame_to_output(
    image: np.ndarray, framing: Framing, focus: tuple[float, float] | None = None
) -> np.ndarray:
    """`image` resized to the framing's size with its aspect ratio kept.

    `focus` is a point (x, y) in `image` pixels, e.g. the face centre, that "fill" keeps in
    view; it is ignored by "fit", which shows everything. Returns `image` itself when it
    already has the output size.
    """
    return place_in_frame(image, framing, focus)[0]
