"""Renderers by name: what turns a cast's posed faces into pixels.

    weightfree    the default: the warp-field model on the avatar's own pixels (app/render.py)
    liveportrait  LivePortrait's networks from checkpoints the user brings (--weights DIR)

A backend is opened once per `Puppeteer` (a learned one loads its networks then) and gives
- `face(avatar, engine, settings)`: the per-face renderer an `Animator` keeps for its avatar;
- `painter(cast, animators, engine)`: the per-cast step that renders every moving face of a
  frame, as one batch where the networks allow it, onto the canvas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from engines.base import FieldEngine, run_batched

from .errors import PuppetCamError
from .render import Renderer, RenderSettings
from .renderer_types import (EXIT_NO_WEIGHTS, LIVEPORTRAIT, WEIGHTFREE, CastPainter, FaceJob, RendererBackend,
                             RendererChoice, WeightsMissing)

if TYPE_CHECKING:
    from .animator import Animator
    from .avatar import Avatar
    from .cast import Cast, CastFace

__all__ = ["EXIT_NO_WEIGHTS", "LIVEPORTRAIT", "WEIGHTFREE", "CastPainter", "FaceJob", "RendererBackend",
           "RendererChoice", "WeightsMissing", "open_renderer", "renderer_names", "liveportrait_weights_status"]


# ---------------------------------------------------------------- the weight-free renderer


def paste_crop(out: np.ndarray, member: "CastFace", crop: np.ndarray) -> None:
    x0, y0, x1, y1 = member.canvas_box
    if member.support is None:
        out[y0:y1, x0:x1] = crop  # the warp is the identity on the crop border: no seam
    else:
        np.copyto(out[y0:y1, x0:x1], crop, where=member.support[..., None])


@dataclass
class WeightFreePainter:
    animators: list["Animator"]
    engine: FieldEngine
    # Engines cache constant inputs by identity: each set of moving faces is stacked once.
    batches: dict[tuple[int, ...], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def rig_batch(self, active: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        if active not in self.batches:
            rigs = [self.animators[k].renderer.rig_tensors for k in active]
            self.batches[active] = (np.concatenate([r[0] for r in rigs]), np.concatenate([r[1] for r in rigs]))
        return self.batches[active]

    def paint(self, canvas: np.ndarray, driver_image: np.ndarray, jobs: Sequence[FaceJob]) -> float:
        import time

        if not jobs:
            return 0.0
        active = tuple(j.index for j in jobs)
        disp = np.stack([j.animator.renderer.displacement(j.posed) for j in jobs])
        t0 = time.perf_counter()
        grids = run_batched(self.engine, *self.rig_batch(active), disp)
        model_ms = (time.perf_counter() - t0) * 1e3
        for j, grid in zip(jobs, grids):
            a = j.animator
            paste_crop(canvas, j.member, a.renderer.render_crop(j.posed, a.mouth_source(driver_image, j.driver), grid))
        return model_ms


class WeightFreeBackend:
    name = WEIGHTFREE

    def face(self, avatar: "Avatar", engine: FieldEngine, settings: RenderSettings) -> Renderer:
        return Renderer(avatar, engine, settings)

    def painter(self, cast: "Cast", animators: list["Animator"], engine: FieldEngine) -> WeightFreePainter:
        return WeightFreePainter(animators, engine)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- the registry


def _open_weightfree(choice: RendererChoice) -> RendererBackend:
    return WeightFreeBackend()


def _open_liveportrait(choice: RendererChoice) -> RendererBackend:
    from .liveportrait_backend import open_liveportrait  # torch networks: only when asked for

    return open_liveportrait(choice)


RENDERERS: dict[str, Callable[[RendererChoice], RendererBackend]] = {
    WEIGHTFREE: _open_weightfree,
    LIVEPORTRAIT: _open_liveportrait,
}


def renderer_names() -> list[str]:
    return list(RENDERERS)


def open_renderer(choice: RendererChoice = RendererChoice()) -> RendererBackend:
    """The backend for `choice`; WeightsMissing (exit code 2 on the CLI) when a learned one has
    no usable checkpoints. Nothing is ever downloaded."""
    factory = RENDERERS.get(choice.name)
    if factory is None:
        raise PuppetCamError(f"No renderer is called {choice.name!r}.", f"Use one of: {', '.join(RENDERERS)}.")
    return factory(choice)


# ---------------------------------------------------------------- checking a weights folder


@dataclass(frozen=True)
class WeightsStatus:
    """What a folder holds, checked by file name only (cheap enough for a GUI to call on
    every folder change; the shapes are checked when the networks load)."""

    root: Path | None
    missing: tuple[str, ...]

    @property
    def found(self) -> bool:
        return self.root is not None and not self.missing

    def describe(self) -> str:
        if self.root is None:
            return "No weights folder chosen."
        if self.found:
            return f"LivePortrait weights found in {self.root}."
        return f"Missing in {self.root}: " + ", ".join(self.missing)


def liveportrait_weights_status(folder: Path | str | None) -> WeightsStatus:
    from models.liveportrait.checkpoints import expected_files, resolve_root

    if folder is None or str(folder) == "":
        return WeightsStatus(None, tuple(expected_files()))
    root = resolve_root(folder)
    return WeightsStatus(root, tuple(f for f in expected_files() if not (root / f).is_file()))
