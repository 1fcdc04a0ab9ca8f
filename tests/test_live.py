"""The live loop on real footage: pipelined tracking, the newest frame only, nothing lost."""

from __future__ import annotations

import threading

import numpy as np

from app import DEFAULT_AVATAR
from app.avatar import load_avatar
from app.capture import VideoFileSource
from app.pipeline import LiveSession, PipelineSettings, Puppeteer, TrackedFrame
from app.sinks import SinkFanout


class _Collect:
    name = "collect"

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def write(self, image: np.ndarray) -> None:
        self.images.append(image)

    def close(self) -> None:
        pass


def _run(data_dir, pipelined: bool):
    avatar = load_avatar(DEFAULT_AVATAR)
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(engine="torch"))
    threads: dict[str, set[str]] = {"track": set(), "process": set()}
    track, process = puppeteer.track, puppeteer.process

    def spy_track(frame):
        if not isinstance(frame, TrackedFrame):  # real tracking work, not the pass-through
            threads["track"].add(threading.current_thread().name)
        return track(frame)

    def spy_process(frame):
        threads["process"].add(threading.current_thread().name)
        return process(frame)

    puppeteer.track, puppeteer.process = spy_track, spy_process  # type: ignore[method-assign]
    sink = _Collect()
    results = []
    session = LiveSession(puppeteer, VideoFileSource(data_dir / "driving" / "lp_d0.mp4"), SinkFanout([sink]),
                          on_frame=results.append, pipelined=pipelined)
    session.run()  # in this thread, to the end of the file
    puppeteer.close()
    return session, results, sink, threads


def test_pipelined_live_loop_tracks_in_the_capture_thread(data_dir) -> None:
    session, results, sink, threads = _run(data_dir, pipelined=True)
    assert session.error is None
    # Tracking ran in the grabber's thread, rendering in the loop's: the two overlap.
    assert threads["track"] and all(name.startswith("grabber:") for name in threads["track"])
    assert threads["process"] == {threading.current_thread().name}
    # A 78-frame file paced at its own fps: a few frames may be dropped, never queued up.
    assert 50 <= len(results) <= 78 and len(sink.images) == len(results)
    assert np.all(np.diff([r.index for r in results]) > 0)
    assert sum(r.faces[0] is not None for r in results) >= 0.9 * len(results)
    assert all(r.times["track"] > 0 for r in results)
    assert 10 < session.fps <= 40  # the output rate: the file's 25-30 fps, not the render speed


def test_sequential_live_loop_gives_the_same_kind_of_frames(data_dir) -> None:
    session, results, sink, threads = _run(data_dir, pipelined=False)
    assert session.error is None
    assert threads["track"] == {threading.current_thread().name}
    assert 50 <= len(results) <= 78 and sum(r.faces[0] is not None for r in results) >= 0.9 * len(results)


def test_a_tracked_frame_is_not_tracked_twice(data_dir) -> None:
    avatar = load_avatar(DEFAULT_AVATAR)
    puppeteer = Puppeteer.for_avatar(avatar, PipelineSettings(engine="torch", mirror_input=True))
    with VideoFileSource(data_dir / "driving" / "lp_d0.mp4") as src:
        frame = src.read()
    tracked = puppeteer.track(frame)
    assert isinstance(tracked, TrackedFrame) and tracked.faces
    assert np.array_equal(tracked.image, frame.image[:, ::-1])  # the selfie view, flipped once
    assert puppeteer.track(tracked) is tracked
    result = puppeteer.process(tracked)
    assert np.array_equal(result.driver, tracked.image)
    puppeteer.close()
    after = puppeteer.track(frame)  # closed: no crash, no face
    assert after.faces == ()
