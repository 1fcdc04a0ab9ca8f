"""The motion options, defined once: name, default, range and help.

The table builds the command line's flags (app/cli.py), the GUI's persisted settings and their
clamping (app/gui/settings_store.py) and the sliders (app/gui/panels/motion.py). The range is
the sliders' and the persisted settings'; the command line takes any value, as it always has
(a gain of 3 is a legitimate experiment there).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from typing import Mapping

from .animator import AnimatorSettings


@dataclass(frozen=True)
class Option:
    name: str  # the settings field; the flag is --name with dashes
    default: float | str
    help: str
    low: float | None = None  # range (numbers), or choices (text)
    high: float | None = None
    step: float = 0.05
    label: str = ""  # the slider's label
    fmt: str = "{:.2f}"
    tooltip: str = ""
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def clamp(self, value: float | str) -> float | str:
        """A value put back in range (or the default, for a choice that does not exist)."""
        if self.choices:
            return value if value in self.choices else self.default
        return min(max(float(value), self.low), self.high)  # type: ignore[arg-type]

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        text = f"{self.help} (default: {self.default})"
        if self.choices:
            parser.add_argument(self.flag, choices=self.choices, default=self.default, help=text)
        else:
            parser.add_argument(self.flag, type=float, default=self.default, help=text)


MODE = Option("mode", "relative", "relative: your motion from your resting pose moves the portrait from its own; "
              "absolute: the portrait copies your pose", choices=("relative", "absolute"))
SMOOTHING = Option("smoothing", 1.0, "jitter filter strength, 0 turns it off", 0.0, 3.0, 0.1, "Smoothing", "{:.1f}",
                   "Jitter filter: 0 off, 1 tuned default, higher is steadier but laggier")
GAINS = (
    Option("head_gain", 1.0, "scale of head motion", 0.0, 2.0, label="Head"),
    Option("mouth_gain", 1.0, "scale of mouth motion", 0.0, 2.0, label="Mouth"),
    Option("eyes_gain", 1.0, "scale of eye and eyelid motion", 0.0, 2.0, label="Eyes"),
    Option("brows_gain", 1.0, "scale of eyebrow motion", 0.0, 2.0, label="Brows"),
    Option("gaze_gain", 1.0, "scale of the iris's glances inside the eye", 0.0, 2.0, label="Gaze"),
)
MOTION_OPTIONS: tuple[Option, ...] = (MODE, *GAINS, SMOOTHING)
OPTIONS: dict[str, Option] = {o.name: o for o in MOTION_OPTIONS}


def add_motion_options(parser: argparse.ArgumentParser) -> None:
    for option in MOTION_OPTIONS:
        option.add_to(parser)


def defaults() -> dict[str, float | str]:
    return {o.name: o.default for o in MOTION_OPTIONS}


def animator_settings(base: AnimatorSettings, values: Mapping[str, object], **retarget: object) -> AnimatorSettings:
    """`base` with the motion options' values (`values` holds every name of the table) and any
    other retarget fields given (e.g. scale_gain)."""
    gains = {o.name: values[o.name] for o in GAINS}
    new_retarget = replace(base.retarget, mode=values["mode"], **gains, **retarget)
    smoothing = replace(base.smoothing, strength=values["smoothing"])
    return replace(base, retarget=new_retarget, smoothing=smoothing)
