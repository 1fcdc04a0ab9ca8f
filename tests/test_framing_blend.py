"""Compositing: multiband blending on real portraits, region blending, aspect-true framing."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from app.blend import blend_region, laplacian_blend
from app.framing import Framing, frame_to_output


@pytest.fixture(scope="module")
def portraits(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    a = cv2.imread(str(data_dir / "portraits" / "astronaut.png"))
    b = cv2.imread(str(data_dir / "portraits" / "lp_s42.jpg"))
    assert a is not None and b is not None
    assert a.shape == b.shape == (512, 512, 3)
    return a, b


def max_abs_diff(x: np.ndarray, y: np.ndarray) -> int:
    return int(np.abs(x.astype(np.int16) - y.astype(np.int16)).max())


@pytest.mark.parametrize("levels", [0, 3, 5])
def test_full_and_empty_masks_give_the_inputs(portraits, levels: int) -> None:
    fg, bg = portraits
    ones = np.ones(fg.shape[:2], np.float32)
    zeros = np.zeros(fg.shape[:2], np.float32)
    assert max_abs_diff(laplacian_blend(fg, bg, ones, levels), fg) <= 1
    assert max_abs_diff(laplacian_blend(fg, bg, zeros, levels), bg) <= 1


def test_sizes_that_are_not_powers_of_two(portraits) -> None:
    fg, bg = (img[:301, :457] for img in portraits)
    ones = np.ones((301, 457), np.float32)
    half = np.zeros((301, 457), np.float32)
    half[:, :200] = 1
    assert max_abs_diff(laplacian_blend(fg, bg, ones), fg) <= 1
    out = laplacian_blend(fg, bg, half)
    assert out.shape == fg.shape and out.dtype == np.uint8
    # Far from the seam each side is its own input.
    assert max_abs_diff(out[:, :100], fg[:, :100]) <= 2
    assert max_abs_diff(out[:, 320:], bg[:, 320:]) <= 2


def test_tiny_images_and_uint8_masks() -> None:
    fg = np.full((7, 5, 3), 200, np.uint8)
    bg = np.full((7, 5, 3), 10, np.uint8)
    assert max_abs_diff(laplacian_blend(fg, bg, np.full((7, 5), 255, np.uint8)), fg) <= 1


def seam_jump(image: np.ndarray, x: int, rows: int = 9) -> np.ndarray:
    """Step across column x per row, averaged over channels and over `rows` neighbouring rows."""
    step = np.abs(image[:, x].astype(np.float32) - image[:, x - 1].astype(np.float32)).mean(axis=1)
    return np.convolve(step, np.ones(rows) / rows, mode="valid")


def test_step_mask_gives_a_soft_seam(portraits) -> None:
    fg, bg = portraits
    mask = np.zeros(fg.shape[:2], np.float32)
    mask[:, :256] = 1
    hard = np.where(mask[:, :, None] > 0.5, fg, bg)
    soft = laplacian_blend(fg, bg, mask, levels=5)
    hard_jump, soft_jump = seam_jump(hard, 256), seam_jump(soft, 256)
    assert soft_jump.max() < 0.5 * hard_jump.max()
    assert soft_jump.mean() < 0.3 * hard_jump.mean()


def test_blend_region_touches_only_the_patch_box(portraits) -> None:
    canvas, patch_source = (img.copy() for img in portraits)
    before = canvas.copy()
    patch = patch_source[100:260, 150:330]  # 160 x 180
    mask = np.zeros(patch.shape[:2], np.float32)
    cv2.ellipse(mask, (90, 80), (60, 50), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), 6)
    x, y = 200, 120
    result = blend_region(canvas, patch, mask, (x, y))
    assert result is canvas
    changed = np.any(canvas != before, axis=2)
    ys, xs = np.nonzero(changed)
    assert ys.min() >= y and ys.max() < y + patch.shape[0]
    assert xs.min() >= x and xs.max() < x + patch.shape[1]
    # The mask's centre shows the patch.
    assert max_abs_diff(canvas[y + 75 : y + 85, x + 85 : x + 95], patch[75:85, 85:95]) <= 3


@pytest.mark.parametrize("top_left", [(-40, -30), (450, 400), (-10, 480)])
def test_blend_region_clips_at_the_canvas_border(portraits, top_left: tuple[int, int]) -> None:
    canvas = portraits[0].copy()
    before = canvas.copy()
    patch = portraits[1][:100, :120]
    mask = np.ones(patch.shape[:2], np.float32)
    blend_region(canvas, patch, mask, top_left)
    x, y = top_left
    box = np.zeros(canvas.shape[:2], bool)
    box[max(y, 0) : max(y + 100, 0), max(x, 0) : max(x + 120, 0)] = True
    changed = np.any(canvas != before, axis=2)
    assert not np.any(changed & ~box)
    assert np.any(changed)


def test_blend_region_outside_the_canvas_is_a_no_op(portraits) -> None:
    canvas = portraits[0].copy()
    patch = portraits[1][:50, :50]
    blend_region(canvas, patch, np.ones((50, 50), np.float32), (600, 10))
    assert np.array_equal(canvas, portraits[0])


def circle_image(width: int, height: int, centre: tuple[int, int], radius: int) -> np.ndarray:
    image = np.full((height, width, 3), 90, np.uint8)
    cv2.circle(image, centre, radius, (0, 0, 255), -1, lineType=cv2.LINE_AA)
    return image


def red_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x, y, w, h) of the bright red pixels (the dimmed backdrop is excluded)."""
    red = (image[:, :, 2] > 200) & (image[:, :, 0] < 60) & (image[:, :, 1] < 60)
    ys, xs = np.nonzero(red)
    assert xs.size > 0, "circle not visible"
    return int(xs.min()), int(ys.min()), int(np.ptp(xs)) + 1, int(np.ptp(ys)) + 1


INPUTS = {"portrait": (360, 640), "landscape": (800, 450), "square": (300, 300)}
OUTPUTS = [(512, 512), (1280, 720)]


@pytest.mark.parametrize("mode", ["fit", "fill"])
@pytest.mark.parametrize("out_size", OUTPUTS)
@pytest.mark.parametrize("shape", list(INPUTS))
def test_framing_never_stretches(shape: str, out_size: tuple[int, int], mode: str) -> None:
    w, h = INPUTS[shape]
    radius = min(w, h) // 6
    image = circle_image(w, h, (w // 2, h // 2), radius)
    framing = Framing(*out_size, mode=mode)
    out = frame_to_output(image, framing)
    assert out.shape == (out_size[1], out_size[0], 3) and out.dtype == np.uint8
    _, _, bw, bh = red_box(out)
    assert abs(bw - bh) <= max(2, 0.03 * bw), (bw, bh)
    scale = (min if mode == "fit" else max)(out_size[0] / w, out_size[1] / h)
    assert bw == pytest.approx(2 * radius * scale, rel=0.05, abs=3)


@pytest.mark.parametrize("shape", list(INPUTS))
def test_fit_matches_a_uniform_resize(shape: str) -> None:
    w, h = INPUTS[shape]
    image = circle_image(w, h, (w // 3, h // 2), min(w, h) // 5)
    out = frame_to_output(image, Framing(1280, 720, background="black"))
    scale = min(1280 / w, 720 / h)
    fw, fh = round(w * scale), round(h * scale)
    expected = cv2.resize(
        image, (fw, fh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    )
    x0, y0 = (1280 - fw) // 2, (720 - fh) // 2
    assert np.array_equal(out[y0 : y0 + fh, x0 : x0 + fw], expected)
    out[y0 : y0 + fh, x0 : x0 + fw] = 0
    assert not out.any()  # black bars elsewhere


def test_fit_pads_with_a_dimmed_blur_by_default() -> None:
    image = circle_image(360, 640, (180, 320), 60)
    out = frame_to_output(image, Framing(1280, 720))
    bars = np.concatenate([out[:, :100], out[:, -100:]], axis=1)
    assert bars.any()  # not black
    assert bars.max() < 130  # dimmed, so the real picture stands out


def test_fill_keeps_the_focus_in_view() -> None:
    # A portrait image with the "face" near the top: a centred crop to 16:9 would cut it off.
    image = circle_image(360, 640, (180, 110), 40)
    framing = Framing(1280, 720, mode="fill")
    with pytest.raises(AssertionError, match="not visible"):
        red_box(frame_to_output(image, framing))
    x, y, bw, bh = red_box(frame_to_output(image, framing, focus=(180, 110)))
    assert abs(bw - bh) <= 3
    assert abs((x + bw / 2) - 640) < 10  # horizontally centred
    assert 0 <= y and y + bh <= 720


def test_same_size_is_returned_as_is() -> None:
    image = np.zeros((720, 1280, 3), np.uint8)
    assert frame_to_output(image, Framing(1280, 720)) is image


def test_framing_validates() -> None:
    with pytest.raises(ValueError):
        Framing(0, 720)
    with pytest.raises(ValueError):
        Framing(1280, 720, mode="stretch")
