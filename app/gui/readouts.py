"""What the window and the tests read off the controller: the output rate, the switch
stalls, the expression weights and the outputs' state, each owned by its own helper
(`metrics.OutputTiming`, `outputs.Outputs`, `expressions`), read through one place."""

from __future__ import annotations

from pathlib import Path

from .metrics import SwitchStall


class Readouts:
    """Mixed into `Controller`, which sets `timing`, `outputs` and `expressions`."""

    @property
    def last_blend(self) -> dict[str, float]:
        return self.expressions.last_blend

    @property
    def frames_out(self) -> int:
        return self.timing.frames_out

    @property
    def output_fps(self) -> float:
        return self.timing.output_fps

    @property
    def switches(self) -> list[SwitchStall]:
        return self.timing.switches

    @property
    def vcam(self):  # noqa: ANN201 - VirtualCameraSink | None
        return self.outputs.vcam

    @property
    def recording_path(self) -> Path | None:
        return self.outputs.recording_path

    @property
    def recorded_frames(self) -> int:
        return self.outputs.recorded_frames
