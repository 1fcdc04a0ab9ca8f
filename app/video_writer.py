"""H.264 .mp4 output through PyAV, written atomically, with the driver's sound carried across.

Why PyAV and not OpenCV's VideoWriter: the OpenCV wheels only write MPEG-4 Part 2 ('mp4v'),
which browsers, many editors and messengers will not play, cannot carry audio, and do not
report write errors (a full disk still "succeeds"). PyAV's wheels include libx264 and an AAC
encoder, so no external ffmpeg binary is needed.

Why atomic: the file is written to a hidden temporary file beside the target and renamed onto
it only once it is complete, so a crash, a full disk or a kill never leaves a half-written file
under the name the user asked for, and never destroys a file that was there before.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np

from app.errors import PuppetCamError

# Wall-clock timestamps in milliseconds: fine enough for any frame rate a live session reaches.
WALL_CLOCK_TIME_BASE = Fraction(1, 1000)


class OutputWriteError(PuppetCamError):
    """The output file could not be written (disk full, folder removed, no permission)."""


@dataclass(frozen=True)
class EncoderSettings:
    """x264 settings. `tune='zerolatency'` keeps the encoder from holding frames back, which
    matters for a live recording that runs alongside the render loop."""

    crf: int = 20
    preset: str = "veryfast"
    tune: str | None = None


RENDER_ENCODER = EncoderSettings()
LIVE_ENCODER = EncoderSettings(crf=21, preset="superfast", tune="zerolatency")


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """yuv420p stores colour per 2x2 block, so H.264 in that format needs even sides."""
    w, h = int(size[0]), int(size[1])
    return max(2, w - w % 2), max(2, h - h % 2)


def _describe(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split()).rstrip(".")


def _fps_fraction(fps: float) -> Fraction:
    # 29.97 becomes 30000/1001, so frame n lands exactly at n * 1001/30000 s.
    return Fraction(fps).limit_denominator(1001) if fps > 0 else Fraction(30)


class _AudioCarrier:
    """Copies (or re-encodes to AAC) the audio of `source` into `output`, in step with the video.

    Times are taken relative to the start of the source's video stream, because that is where
    the driver's frame 0 (the output's frame 0) sits; audio before it is dropped.
    """

    def __init__(self, source: Path, output: av.container.OutputContainer) -> None:
        self._input = av.open(str(source))
        try:
            audio = next(s for s in self._input.streams if s.type == "audio")
        except StopIteration:
            self._input.close()
            raise LookupError("no audio") from None
        video = next((s for s in self._input.streams if s.type == "video"), None)
        video_start = (video.start_time * video.time_base) if video is not None and video.start_time else 0
        self._in = audio
        self._start = Fraction(video_start)
        self._copy = audio.codec_context.name == "aac"
        if self._copy:
            self.stream = output.add_stream_from_template(audio)
        else:
            rate = audio.codec_context.sample_rate or 48000
            layout = "mono" if audio.codec_context.channels == 1 else "stereo"
            self.stream = output.add_stream("aac", rate=rate, layout=layout)
            self._resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
            self._samples_out = 0
        self._packets: Iterator[av.Packet] = self._input.demux(audio)
        self._pending: av.Packet | None = None
        self._done = False

    def _next(self) -> av.Packet | None:
        if self._pending is not None:
            packet, self._pending = self._pending, None
            return packet
        for packet in self._packets:
            if packet.pts is not None and packet.size:
                return packet
        return None

    def pump(self, output: av.container.OutputContainer, until: float) -> None:
        """Mux the audio that starts before `until` seconds (output time)."""
        while not self._done:
            packet = self._next()
            if packet is None:
                self._done = True
                break
            when = packet.pts * packet.time_base - self._start
            if when >= until:
                self._pending = packet
                break
            if when < 0:
                continue
            if self._copy:
                shift = int(round(self._start / packet.time_base))
                packet.pts -= shift
                if packet.dts is not None:
                    packet.dts -= shift
                packet.stream = self.stream
                output.mux(packet)
            else:
                for frame in packet.decode():
                    self._encode(output, frame)

    def _encode(self, output: av.container.OutputContainer, frame: av.AudioFrame | None) -> None:
        frames = self._resampler.resample(frame)
        for out in frames:
            out.pts = self._samples_out
            out.time_base = Fraction(1, out.sample_rate)
            self._samples_out += out.samples
            for packet in self.stream.encode(out):
                output.mux(packet)

    def finish(self, output: av.container.OutputContainer) -> None:
        if not self._copy:
            self._encode(output, None)
            for packet in self.stream.encode(None):
                output.mux(packet)

    def close(self) -> None:
        self._input.close()


class AtomicVideoWriter:
    """Writes BGR frames as H.264 (yuv420p, +faststart) to `path`, atomically.

    Timing: with `clock=None` frame n is shown at n / fps (a render). With a clock (e.g.
    `time.monotonic`) each frame is stamped with the clock's time when it was written, relative
    to the first frame, so a live recording plays exactly as long as the session ran whatever
    rate the pipeline reached; `finish` repeats the last frame at the stop time so the last
    frame is held until then.

    `audio_from`: a file whose first audio track is carried across in sync (copied if AAC,
    re-encoded to AAC otherwise). Every error while writing raises `OutputWriteError` after the
    temporary file is removed; the target is only ever replaced by a complete file.
    """

    def __init__(self, path: str | Path, size: tuple[int, int], fps: float,
                 clock: Callable[[], float] | None = None, audio_from: str | Path | None = None,
                 encoder: EncoderSettings = RENDER_ENCODER) -> None:
        self.path = Path(path)
        self.size = even_size(size)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.frames_written = 0
        self._clock = clock
        self._t0: float | None = None
        self._last_pts = -1
        self._last_image: np.ndarray | None = None
        self._audio: _AudioCarrier | None = None
        self._closed = False
        self._end: float | None = None
        # With a clock, the newest packet is held back so `finish` can give the last frame a
        # one-tick duration; the muxer would otherwise repeat the previous frame's gap, and a
        # recording stopped 0.3 s after its last frame would run 0.3 s long.
        self._held: av.Packet | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=".partial.mp4", dir=self.path.parent)
            os.close(fd)
        except OSError as exc:
            raise OutputWriteError(
                f"Cannot write into the folder {self.path.parent} ({_describe(exc)}).",
                "Choose an output path in a folder you can write to.",
            ) from exc
        self.temp_path = Path(tmp)
        try:
            self._container = av.open(str(self.temp_path), mode="w", format="mp4",
                                      options={"movflags": "+faststart"})
            rate = _fps_fraction(self.fps)
            stream = self._container.add_stream("libx264", rate=rate)
            stream.width, stream.height = self.size
            stream.pix_fmt = "yuv420p"
            self._time_base = WALL_CLOCK_TIME_BASE if clock is not None else 1 / rate
            stream.codec_context.time_base = self._time_base
            options = {"crf": str(encoder.crf), "preset": encoder.preset}
            if encoder.tune:
                options["tune"] = encoder.tune
            if clock is not None:
                options["bf"] = "0"  # packets in display order: the last one is the last frame
            stream.options = options
            self._stream = stream
            if audio_from is not None:
                try:
                    self._audio = _AudioCarrier(Path(audio_from), self._container)
                except LookupError:
                    self._audio = None  # a silent driver: nothing to carry
        except (OSError, ValueError, av.FFmpegError) as exc:
            self._discard()
            raise OutputWriteError(f"Cannot start writing the video {self.path} ({_describe(exc)}).",
                                   "Check that the folder is writable and the disk is not full.") from exc

    @property
    def duration(self) -> float:
        """Seconds of video written so far (up to the end of the last frame)."""
        if self.frames_written == 0:
            return 0.0
        if self._clock is None:
            return self.frames_written / self.fps
        return float((self._last_pts + 1) * self._time_base)

    def write(self, image: np.ndarray) -> None:
        """Encode one BGR frame (cropped to even sides if needed, otherwise the writer's size)."""
        if self._closed:
            raise OutputWriteError(f"The video {self.path} is already closed.", "Start a new recording.")
        if self._clock is None:
            pts = self.frames_written
        else:
            now = self._clock()
            if self._t0 is None:
                self._t0 = now
            # Strictly increasing: two frames within the same millisecond keep their order.
            pts = max(int(round((now - self._t0) / self._time_base)), self._last_pts + 1)
        self._encode(image, pts)

    def _encode(self, image: np.ndarray, pts: int) -> None:
        w, h = self.size
        if image.shape[1] != w or image.shape[0] != h:
            image = _fit(image, (w, h))
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        frame.pts = pts
        frame.time_base = self._time_base
        try:
            self._mux_video(self._stream.encode(frame))
            if self._audio is not None:
                self._audio.pump(self._container, float((pts + 1) * self._time_base))
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        self._last_pts = pts
        self._last_image = image
        self.frames_written += 1

    def _mux_video(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            if self._clock is None:
                self._container.mux(packet)
                continue
            if self._held is not None:
                self._container.mux(self._held)
            self._held = packet

    def mark_end(self) -> None:
        """With a clock: the recording ends now, even if `finish` runs a little later (after the
        live loop has wound down); frames written after this are still kept."""
        if self._clock is not None:
            self._end = self._clock()

    def finish(self) -> Path:
        """Flush, close and rename onto `path`. Returns `path`. Raises OutputWriteError."""
        if self._closed:
            return self.path
        try:
            if self._clock is not None and self._t0 is not None and self._last_image is not None:
                # Hold the last frame until the moment the recording stopped.
                stop = self._end if self._end is not None else self._clock()
                end = int(round((stop - self._t0) / self._time_base))
                if end > self._last_pts:
                    self._encode(self._last_image, end)
                    self.frames_written -= 1  # the same frame, held; not a new one
            self._mux_video(self._stream.encode(None))
            if self._held is not None:
                self._held.duration = 1
                self._container.mux(self._held)
                self._held = None
            if self._audio is not None:
                self._audio.pump(self._container, self.duration)
                self._audio.finish(self._container)
            self._close_container()
            with open(self.temp_path, "rb+") as f:
                os.fsync(f.fileno())  # the rename must not reach the disk before the data
            os.chmod(self.temp_path, _mode_for(self.path))
            os.replace(self.temp_path, self.path)
        except OutputWriteError:
            raise
        except (OSError, av.FFmpegError) as exc:
            self._fail(exc)
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Stop without producing a file (the temporary file is removed)."""
        self._discard()

    def _fail(self, exc: BaseException) -> None:
        self._discard()
        raise OutputWriteError(
            f"Writing the video {self.path} failed: {_describe(exc)}.",
            "Free some disk space or choose another output folder; nothing was saved under that name.",
        ) from exc

    def _close_container(self) -> None:
        container = getattr(self, "_container", None)
        self._container = None
        try:
            if container is not None:
                container.close()
        finally:
            if self._audio is not None:
                self._audio.close()

    def _discard(self) -> None:
        self._closed = True
        try:
            self._close_container()
        except (OSError, av.FFmpegError):
            pass  # the write error already being reported is the one that matters
        try:
            self.temp_path.unlink(missing_ok=True)
        except OSError:
            pass


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or rw-r--r--: mkstemp's 0600 would hide the video from
    other users and apps (os.umask cannot be read without setting it, which races threads)."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


def _fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame at `size`: one pixel cropped where only evenness differs, otherwise resized."""
    import cv2

    w, h = size
    if image.shape[1] - w in (0, 1) and image.shape[0] - h in (0, 1):
        return image[:h, :w]
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
