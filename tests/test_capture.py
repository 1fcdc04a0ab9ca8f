"""Capture: real video files, broken inputs, cameras that do not exist, the latest-frame grabber."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from app.capture import (
    CameraSource,
    Frame,
    FrameSource,
    LatestFrameGrabber,
    VideoFileSource,
    list_cameras,
)
from app.errors import CaptureError
from tests.fakes import SyntheticSource


@pytest.fixture(scope="module")
def clip(data_dir: Path) -> Path:
    return data_dir / "driving" / "lp_d0.mp4"  # 512x512, 25 fps, 78 frames


def truncated_copy(src: Path, dst_dir: Path, fraction: float = 0.4) -> Path:
    data = src.read_bytes()
    dst = dst_dir / f"truncated_{src.name}"
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def test_reads_every_frame_of_a_real_clip(clip: Path) -> None:
    with VideoFileSource(clip) as source:
        assert isinstance(source, FrameSource)
        assert source.fps == pytest.approx(25.0)
        assert source.size == (512, 512)
        assert source.frame_count == 78
        assert str(clip) in source.name
        frames = list(iter(source.read, None))
        assert source.read() is None  # stays at the end
    assert len(frames) == 78
    assert [f.index for f in frames] == list(range(78))
    assert frames[-1].timestamp == pytest.approx(77 / 25.0)
    assert all(f.image.shape == (512, 512, 3) and f.image.dtype == np.uint8 for f in frames)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    with pytest.raises(CaptureError) as info:
        VideoFileSource(missing)
    assert str(missing) in str(info.value)
    assert "camera" in info.value.what_to_do.lower()


def test_text_file_is_not_a_video(tmp_path: Path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    with pytest.raises(CaptureError) as info:
        VideoFileSource(text)
    assert str(text) in str(info.value)


def test_still_image_is_not_a_video(tmp_path: Path) -> None:
    image = tmp_path / "portrait.png"
    cv2.imwrite(str(image), np.full((64, 64, 3), 128, np.uint8))
    with pytest.raises(CaptureError) as info:
        VideoFileSource(image)
    assert str(image) in str(info.value)
    assert "still image" in str(info.value)


def test_folder_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        VideoFileSource(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_truncated_file_reads_some_frames_and_ends_cleanly(data_dir: Path, tmp_path: Path) -> None:
    # vox_jackie.mp4 has its index ('moov') at the start, so a cut copy still opens and
    # its frames decode up to the cut.
    original = data_dir / "driving" / "vox_jackie.mp4"
    truncated = truncated_copy(original, tmp_path)
    with VideoFileSource(truncated) as source:
        frames = list(iter(source.read, None))
        assert source.read() is None
    assert 0 < len(frames) < 169
    assert [f.index for f in frames] == list(range(len(frames)))


def test_truncated_file_with_index_at_the_end_is_a_clear_error(clip: Path, tmp_path: Path) -> None:
    # lp_d0.mp4 keeps its 'moov' index at the end: the cut copy cannot be opened at all.
    truncated = truncated_copy(clip, tmp_path)
    with pytest.raises(CaptureError) as info:
        VideoFileSource(truncated)
    assert str(truncated) in str(info.value)
    assert "truncated" in str(info.value)


def test_loop_rewinds_and_keeps_indices_increasing(clip: Path) -> None:
    with VideoFileSource(clip, loop=True) as source:
        frames = [source.read() for _ in range(100)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames] == list(range(100))
    timestamps = [f.timestamp for f in frames]
    assert all(b > a for a, b in zip(timestamps, timestamps[1:]))
    # Frame 78 is the first frame again.
    assert np.array_equal(frames[78].image, frames[0].image)
    assert not np.array_equal(frames[77].image, frames[0].image)


def test_loop_of_a_truncated_file_rewinds_too(data_dir: Path, tmp_path: Path) -> None:
    truncated = truncated_copy(data_dir / "driving" / "vox_jackie.mp4", tmp_path)
    with VideoFileSource(truncated) as source:
        decodable = sum(1 for _ in iter(source.read, None))
    with VideoFileSource(truncated, loop=True) as source:
        frames = [source.read() for _ in range(decodable + 5)]
    assert all(f is not None for f in frames)
    assert np.array_equal(frames[decodable].image, frames[0].image)


def test_camera_that_does_not_exist() -> None:
    with pytest.raises(CaptureError) as info:
        CameraSource(97)
    message = str(info.value)
    assert "Camera 97" in message
    assert "--driver" in message


def test_list_cameras_is_quiet_and_returns_indices(capfd: pytest.CaptureFixture[str]) -> None:
    cameras = list_cameras(max_index=3)
    assert all(isinstance(i, int) and 0 <= i < 3 for i in cameras)
    assert "WARN" not in capfd.readouterr().err


def test_grabber_drops_stale_frames_for_a_slow_consumer(clip: Path) -> None:
    started = time.monotonic()
    with LatestFrameGrabber(VideoFileSource(clip)) as grabber:
        assert grabber.pace  # files play in real time, like a camera
        got: list[Frame] = []
        ages: list[float] = []
        while len(got) < 8:
            frame = grabber.latest(timeout=2.0)
            assert frame is not None
            got.append(frame)
            # Paced playback: frame i is due i periods after the start, so the wall clock
            # minus the media time is how stale the frame is.
            ages.append(time.monotonic() - started - frame.timestamp)
            time.sleep(0.1)  # a consumer 2.5x slower than the source
        assert grabber.dropped > 0
        indices = [f.index for f in got]
        assert all(b > a for a, b in zip(indices, indices[1:]))
        # Latency stays bounded (about one source period) instead of growing with each frame.
        # (Generous bounds: this machine is shared; a growing queue would pass 0.5 s by frame 8.)
        assert max(ages) < 0.5, ages
        assert grabber.last_latency < 0.5
        # It really skipped: 8 frames taken over ~0.8 s of a 25 fps clip.
        assert indices[-1] >= 14
        assert grabber.delivered == 8
    assert grabber.finished


def test_grabber_hands_out_each_frame_once_and_reports_the_end() -> None:
    source = SyntheticSource(count=30, fps=1000.0)
    with LatestFrameGrabber(source) as grabber:
        seen: list[int] = []
        while (frame := grabber.latest(timeout=2.0)) is not None:
            seen.append(frame.index)
        assert grabber.finished
        assert grabber.error is None
    assert seen and seen[-1] == 29
    assert len(seen) == len(set(seen))
    assert grabber.dropped + len(seen) == 30
    assert source.closed  # the reader thread closes its source


def test_grabber_wait_new_after_index() -> None:
    with LatestFrameGrabber(SyntheticSource(count=5, fps=50.0)) as grabber:
        first = grabber.wait_new(-1, timeout=2.0)
        assert first is not None
        second = grabber.wait_new(first.index, timeout=2.0)
        assert second is not None and second.index > first.index
        # After the end, nothing newer ever comes.
        assert grabber.wait_new(4, timeout=2.0) is None
        assert grabber.finished


def test_grabber_reraises_errors_from_its_thread() -> None:
    source = SyntheticSource(count=100, fps=1000.0, fail_at=10)
    with LatestFrameGrabber(source, pace=False) as grabber:
        with pytest.raises(RuntimeError, match="synthetic failure"):
            for _ in range(100):
                grabber.latest(timeout=2.0)
        assert isinstance(grabber.error, RuntimeError)
        assert grabber.finished
    assert source.closed


def test_grabber_stop_joins_the_thread() -> None:
    source = SyntheticSource(count=10_000, fps=30.0)
    grabber = LatestFrameGrabber(source)
    assert grabber.latest(timeout=2.0) is not None
    grabber.stop()
    assert grabber.finished
    assert source.closed
    # At most the one frame read before stop() is left, then the stream is over.
    leftovers = [grabber.latest(timeout=0.1) for _ in range(2)]
    assert leftovers[-1] is None
