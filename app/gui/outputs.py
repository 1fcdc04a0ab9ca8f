"""The live outputs the window switches on and off: the virtual camera and the recording,
both paced to the output frame rate and safe to close while the session writes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from app.errors import PuppetCamError, VirtualCameraUnavailable
from app.sink_wrappers import GuardedSink, PacedSink
from app.sinks import SinkFanout, VideoFileSink, VirtualCameraSink

if TYPE_CHECKING:
    from .controller import Controller

log = logging.getLogger("puppetcam.gui")


class Outputs:
    """Owns the session's `SinkFanout`. Methods other than `on_sink_error` run on the
    controller's I/O worker, with the controller's state lock held."""

    def __init__(self, signals: "Controller", output_size: Callable[[], tuple[int, int]]) -> None:
        self.signals = signals
        self.output_size = output_size
        self.sinks = SinkFanout(on_error=self.on_sink_error)
        self.vcam: VirtualCameraSink | None = None
        self.recording_path: Path | None = None
        self._vcam_slot: GuardedSink | None = None
        self._rec_slot: GuardedSink | None = None
        self._rec_paced: PacedSink | None = None
        self._rec_size: tuple[int, int] = (0, 0)

    @property
    def recorded_frames(self) -> int:
        paced = self._rec_paced
        return paced.frames_written if paced is not None else 0

    def open_virtual_camera(self, fps: float, backend: str | None) -> None:
        self.close_virtual_camera()
        w, h = self.output_size()
        try:
            cam = VirtualCameraSink(w, h, fps, backend=backend)
        except VirtualCameraUnavailable as exc:
            # The fix first (it is what the user acts on); the backend's detail after.
            self.signals.virtualCameraChanged.emit(False, f"No virtual camera device. {exc.what_to_do}\n\n{exc.what}")
            return
        self.vcam = cam
        self._vcam_slot = GuardedSink(PacedSink(cam, fps, fill_gaps=False))
        self.sinks.add(self._vcam_slot)
        self.signals.virtualCameraChanged.emit(True, cam.device)

    def close_virtual_camera(self) -> None:
        slot, self._vcam_slot, self.vcam = self._vcam_slot, None, None
        if slot is not None:
            self.sinks.remove(slot)
            try:
                slot.close()
            except Exception as exc:  # closing a vanished device is not worth an error box
                log.warning("closing the virtual camera: %s", exc)

    def start_recording(self, path: Path, fps: float) -> None:
        self.stop_recording()
        size = self.output_size()
        try:
            sink = VideoFileSink(path, fps, size)
        except PuppetCamError as exc:
            self.signals.sinkFailed.emit(str(exc))
            self.signals.recordingChanged.emit(False, "")
            return
        self._rec_size = size
        self._rec_paced = PacedSink(sink, fps, fill_gaps=True)
        self._rec_slot = GuardedSink(self._rec_paced)
        self.recording_path = path
        self.sinks.add(self._rec_slot)
        self.signals.recordingChanged.emit(True, str(path))

    def stop_recording(self) -> Path | None:
        slot, self._rec_slot = self._rec_slot, None
        path, self.recording_path = self.recording_path, None
        if slot is not None:
            self.sinks.remove(slot)
            slot.close()
        return path

    def recording_fits(self) -> bool:
        """Whether the recording (if any) still has the output's size."""
        return self._rec_slot is None or self._rec_size == self.output_size()

    def on_sink_error(self, message: str) -> None:
        # Render thread: a sink failed and SinkFanout dropped it; tidy up our handles. No lock
        # here: a worker holding the state lock may be joining this very thread.
        current = self.sinks.sinks
        vcam = self._vcam_slot
        if vcam is not None and vcam not in current:
            self._vcam_slot, self.vcam = None, None
            self.signals.virtualCameraChanged.emit(False, f"The virtual camera stopped: {message}")
        rec = self._rec_slot
        if rec is not None and rec not in current:
            self._rec_slot, self.recording_path = None, None
            self.signals.recordingChanged.emit(False, "")
        self.signals.sinkFailed.emit(message)

    def close(self) -> None:
        self._vcam_slot = self._rec_slot = None
        self.vcam = None
        self.recording_path = None
        self.sinks.close()
