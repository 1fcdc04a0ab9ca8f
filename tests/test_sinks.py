"""Sinks: mp4 output, virtual camera (through fake pyvirtualcam backends), preview, fan-out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest

from app.errors import PuppetCamError, VirtualCameraUnavailable
from app.sinks import (
    LINUX_MODPROBE,
    FrameSink,
    PreviewSink,
    SinkFanout,
    VideoFileSink,
    VirtualCameraSink,
    virtual_camera_help,
)
from tests.fakes import (
    BROKEN_BACKEND,
    FAKE_BACKEND,
    RecordingCameraBackend,
    register_fake_backends,
    unregister_fake_backends,
)


@pytest.fixture
def fake_backends() -> Iterator[type[RecordingCameraBackend]]:
    register_fake_backends()
    register_fake_backends()  # idempotent
    RecordingCameraBackend.reset()
    yield RecordingCameraBackend
    RecordingCameraBackend.reset()
    unregister_fake_backends()


def gradient_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A frame whose left and right halves differ, so a horizontal flip is visible."""
    x = np.linspace(0, 255, width, dtype=np.float32)
    image = np.repeat(np.repeat(x[None, :, None], height, axis=0), 3, axis=2).astype(np.uint8)
    image[..., 1] = (seed * 37) % 256
    return image


def test_video_file_sink_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "out" / "clip.mp4"
    sink = VideoFileSink(path, fps=25, size=(160, 120))
    assert isinstance(sink, FrameSink)
    for i in range(12):
        sink.write(gradient_frame(160, 120, seed=i))
    sink.write(gradient_frame(320, 240))  # another size is resized, not rejected
    sink.close()

    cap = cv2.VideoCapture(str(path))
    try:
        assert cap.isOpened()
        assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 13
        assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(25.0)
        count = 0
        while True:
            ok, image = cap.read()
            if not ok:
                break
            assert image.shape == (120, 160, 3)
            count += 1
        assert count == 13
    finally:
        cap.release()


def test_video_file_sink_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    target = blocker / "out.mp4"
    with pytest.raises(PuppetCamError) as info:
        VideoFileSink(target, fps=25, size=(64, 64))
    assert str(blocker) in str(info.value)


def test_virtual_camera_without_device_explains_how_to_get_one(fake_backends) -> None:
    with pytest.raises(VirtualCameraUnavailable) as info:
        VirtualCameraSink(64, 48, 30, backend=BROKEN_BACKEND)
    message = str(info.value)
    assert "No v4l2 loopback device found" in message  # the backend's reason is kept
    if sys.platform.startswith("linux"):
        assert "exclusive_caps=1" in message
        assert LINUX_MODPROBE in message
        assert "sudo apt install v4l2loopback-dkms" in message
    else:
        assert "OBS" in message


def test_virtual_camera_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(VirtualCameraUnavailable, match="'no_such_backend' does not exist"):
        VirtualCameraSink(64, 48, 30, backend="no_such_backend")


def test_virtual_camera_help_per_platform() -> None:
    linux = virtual_camera_help("linux")
    assert 'video_nr=10 card_label="PuppetCam" exclusive_caps=1' in linux
    assert "v4l2loopback-dkms" in linux
    assert "OBS Studio" in virtual_camera_help("win32")
    mac = virtual_camera_help("darwin")
    assert "OBS Studio 30" in mac


def test_virtual_camera_sends_frames_and_mirrors(fake_backends) -> None:
    frame = gradient_frame(64, 48)
    with VirtualCameraSink(64, 48, 30, backend=FAKE_BACKEND) as plain:
        assert plain.device == RecordingCameraBackend.DEVICE
        assert plain.device in plain.name
        plain.write(frame)
    with VirtualCameraSink(64, 48, 30, mirror=True, backend=FAKE_BACKEND) as mirrored:
        mirrored.write(frame)
        mirrored.write(gradient_frame(128, 96))  # resized to the camera's size
    received = fake_backends.frames
    assert len(received) == 3
    assert np.array_equal(received[0], frame)
    assert np.array_equal(received[1], frame[:, ::-1])
    assert received[2].shape == (48, 64, 3)
    assert fake_backends.closed == 2


def test_preview_without_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is Linux-specific")
    # Without this check Qt would abort the whole test process.
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    with pytest.raises(PuppetCamError, match="display"):
        PreviewSink()


def test_preview_with_unreachable_display_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("the display check is Linux-specific")
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    with pytest.raises(PuppetCamError, match=":97"):
        PreviewSink()


class ListSink:
    def __init__(self, name: str = "list") -> None:
        self.name = name
        self.frames: list[np.ndarray] = []
        self.closed = False

    def write(self, image: np.ndarray) -> None:
        self.frames.append(image)

    def close(self) -> None:
        self.closed = True


class BrokenSink(ListSink):
    def __init__(self, fail_after: int) -> None:
        super().__init__("broken sink")
        self.fail_after = fail_after

    def write(self, image: np.ndarray) -> None:
        if len(self.frames) >= self.fail_after:
            raise OSError("disk full")
        super().write(image)


def test_fanout_drops_a_broken_sink_and_keeps_the_others() -> None:
    good, broken = ListSink(), BrokenSink(fail_after=3)
    reported: list[str] = []
    fanout = SinkFanout([broken, good], on_error=reported.append)
    frames = [gradient_frame(32, 24, seed=i) for i in range(10)]
    for frame in frames:
        fanout.write(frame)
    assert len(good.frames) == 10
    assert all(a is b for a, b in zip(good.frames, frames))
    assert len(broken.frames) == 3
    assert broken.closed
    assert fanout.sinks == (good,)
    assert fanout.errors == ["broken sink: disk full"]
    assert reported == fanout.errors
    fanout.close()
    assert good.closed
    assert fanout.sinks == ()


def test_fanout_close_survives_a_failing_close() -> None:
    class BadClose(ListSink):
        def close(self) -> None:
            raise RuntimeError("device vanished")

    good = ListSink()
    fanout = SinkFanout([BadClose("bad"), good])
    fanout.close()
    assert good.closed
    assert fanout.errors == ["bad: device vanished"]


def test_fanout_with_a_fake_virtual_camera(fake_backends, tmp_path: Path) -> None:
    camera = VirtualCameraSink(32, 24, 30, backend=FAKE_BACKEND)
    video = VideoFileSink(tmp_path / "out.mp4", fps=30, size=(32, 24))
    with SinkFanout([camera, video]) as fanout:
        for i in range(5):
            fanout.write(gradient_frame(32, 24, seed=i))
    assert len(fake_backends.frames) == 5
    assert fanout.errors == []
