"""What every renderer backend shares: the user's choice, the per-face job, the protocols a
backend and its per-cast painter meet, and the error for missing weights. Kept apart from the
registry (app/renderers.py) so that a backend module can import these without importing the
registry that opens it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence

import numpy as np

from engines.base import FieldEngine

from .errors import PuppetCamError
from .render import RenderSettings

if TYPE_CHECKING:
    from .animator import Animator
    from .avatar import Avatar
    from .cast import Cast, CastFace
    from .retarget import PosedFace
    from .tracking import FaceObservation

WEIGHTFREE = "weightfree"
LIVEPORTRAIT = "liveportrait"
EXIT_NO_WEIGHTS = 2  # the CLI's exit code when a learned renderer has no usable weights


@dataclass(frozen=True)
class RendererChoice:
    name: str = WEIGHTFREE
    weights: Path | None = None  # the checkpoint folder of a learned renderer
    device: str = "auto"  # auto: CUDA when torch sees a GPU, else the CPU


class WeightsMissing(PuppetCamError):
    """A learned renderer was asked for but its checkpoints are absent or do not match."""

    exit_code = EXIT_NO_WEIGHTS


@dataclass
class FaceJob:
    """One avatar face to draw this frame."""

    index: int
    member: "CastFace"
    animator: "Animator"
    posed: "PosedFace"
    driver: "FaceObservation | None"


class CastPainter(Protocol):
    def paint(self, canvas: np.ndarray, driver_image: np.ndarray, jobs: Sequence[FaceJob]) -> float:
        """Draw the jobs' faces onto `canvas` in place; returns the model's milliseconds."""


class RendererBackend(Protocol):
    name: str

    def face(self, avatar: "Avatar", engine: FieldEngine, settings: RenderSettings) -> Any: ...

    def painter(self, cast: "Cast", animators: list["Animator"], engine: FieldEngine) -> CastPainter: ...

    def close(self) -> None: ...
