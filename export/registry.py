"""Every torch model on the per-frame path, as one registry entry each.

Adding a second per-frame model is one more `ModelSpec` in `MODELS`: how to build it for a
config, example inputs for tracing, inputs for the parity check (synthetic, or recorded by the app:
see export/recorded.py), and the source files whose hash tells a cached ONNX file that it is out
of date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
from pathlib import Path
from typing import Callable

import numpy as np

from models.warp_field import DEFAULT_FIT_STEPS, DEFAULT_GRID_SIZE, NUM_CONTROL_POINTS

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OPSET = 18  # GridSample needs >= 16; TensorRT 10.x parses opsets 9..24 (see engines/trt_supported_ops.json)
DEFAULT_MAX_BATCH = 8  # TensorRT optimization profile: 1 face (opt) up to this many (multi-face)


@dataclass(frozen=True)
class ModelConfig:
    """What fixes an exported graph: shapes come from the grid size, so one file per grid."""

    grid_size: int = DEFAULT_GRID_SIZE
    fit_steps: int = DEFAULT_FIT_STEPS
    opset: int = DEFAULT_OPSET


@dataclass(frozen=True)
class ModelSpec:
    name: str
    summary: str
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    build: Callable[[ModelConfig], "object"]  # -> torch.nn.Module in eval mode
    example_inputs: Callable[[ModelConfig, int], tuple]  # (config, batch) -> torch tensors
    # (config, frames, recorded) -> feeds; recorded: this model's arrays from a recorded-inputs
    # file (export/recorded.py) or None, then the model makes its own
    parity_inputs: Callable[[ModelConfig, int, dict[str, np.ndarray] | None], list[dict[str, np.ndarray]]]
    source_files: tuple[Path, ...]
    dynamic_batch: bool = True
    tolerance: float = 1e-4  # max abs error allowed between ONNX Runtime and torch
    variant: Callable[[ModelConfig], str] = field(default=lambda c: f"g{c.grid_size}")

    def filename(self, config: ModelConfig) -> str:
        return f"{self.name}_{self.variant(config)}_op{config.opset}.onnx"

    def fingerprint(self, config: ModelConfig) -> str:
        """Hash of the model's source code and config: a cached export with another one is stale."""
        h = hashlib.sha256()
        for path in self.source_files:
            h.update(path.read_bytes())
        h.update(repr((self.name, config)).encode())
        return h.hexdigest()

    def input_shapes(self, config: ModelConfig, batch: int = 1) -> dict[str, tuple[int, ...]]:
        return {n: tuple(t.shape) for n, t in zip(self.input_names, self.example_inputs(config, batch))}


# --- WarpField: control-point displacement -> dense backward sampling grid ------------------

def _warp_field_build(config: ModelConfig):
    from models.warp_field import WarpField

    return WarpField(config.grid_size, config.fit_steps).eval()


def _warp_field_example(config: ModelConfig, batch: int):
    import torch

    g, v = config.grid_size, NUM_CONTROL_POINTS
    gen = torch.Generator().manual_seed(0)
    tri_index = torch.randint(0, v, (batch, g * g, 3), generator=gen, dtype=torch.int64)
    w = torch.rand(batch, g * g, 3, generator=gen)
    tri_weight = w / w.sum(dim=-1, keepdim=True)
    displacement = 0.02 * torch.randn(batch, v, 2, generator=gen)
    return tri_index, tri_weight, displacement


def _warp_field_parity(config: ModelConfig, frames: int = 30,
                       recorded: dict[str, np.ndarray] | None = None) -> list[dict[str, np.ndarray]]:
    from .warp_field_inputs import feeds, synthetic

    return feeds(recorded if recorded is not None else synthetic(config.grid_size, frames), config.grid_size)


WARP_FIELD = ModelSpec(
    name="warp_field",
    summary="WarpField: control-point displacement -> (B, G, G, 2) sampling grid (models/warp_field.py)",
    input_names=("tri_index", "tri_weight", "displacement"),
    output_names=("grid",),
    build=_warp_field_build,
    example_inputs=_warp_field_example,
    parity_inputs=_warp_field_parity,
    source_files=(REPO / "models" / "warp_field.py",),
    variant=lambda c: f"g{c.grid_size}_f{c.fit_steps}",
)

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in (WARP_FIELD,)}
