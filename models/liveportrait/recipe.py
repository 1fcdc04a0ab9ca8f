"""Deterministic random weights from numpy alone: the parity fixture's recipe
(../shared/fixtures/liveportrait/README.md, section 1). The weights are noise; they exist to test
arithmetic and conventions, and to make a checkpoint folder that loads like the released one."""

from __future__ import annotations

from dataclasses import dataclass
import hashlib
import math
import zlib

import numpy as np

_INT_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "bool")


@dataclass(frozen=True)
class RecipeConstants:
    running_var_scale: float = 0.1
    running_mean_scale: float = 0.1
    weight_gain: float = 1.0
    weight_1d_scale: float = 0.1
    other_1d_scale: float = 0.5  # 0.1 saturated the generator through its spectral norm (see fixture)


def recipe_weights(module_name: str, listing: list[tuple[str, tuple[int, ...], str]],
                   c: RecipeConstants = RecipeConstants()) -> dict[str, np.ndarray]:
    """{key: array} for a module's (key, shape, dtype) listing. One generator per module, seeded
    with crc32 of its name, drawing in sorted key order (code-point order)."""
    rng = np.random.default_rng(zlib.crc32(module_name.encode()))
    spec = {k: (tuple(s), d) for k, s, d in listing}
    out: dict[str, np.ndarray] = {}
    for key in sorted(spec):
        shape, dtype = spec[key]
        if dtype in _INT_DTYPES:
            out[key] = np.zeros(shape, dtype=np.dtype(dtype))
            continue
        if key.endswith("running_var"):
            a = 1.0 + c.running_var_scale * np.abs(rng.standard_normal(shape))
        elif key.endswith("running_mean"):
            a = c.running_mean_scale * rng.standard_normal(shape)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            # This exact evaluation order: another one can change the last float64 bit.
            a = rng.standard_normal(shape) * (c.weight_gain * math.sqrt(1.0 / fan_in))
        elif key.endswith("weight"):
            a = 1.0 + c.weight_1d_scale * rng.standard_normal(shape)
        else:
            a = c.other_1d_scale * rng.standard_normal(shape)
        out[key] = np.ascontiguousarray(a.astype(np.float32))
    return out


def sha256_16(a: np.ndarray) -> str:
    """First 16 hex digits of SHA-256 of the little-endian C-order bytes (the manifest's hash)."""
    return hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()[:16]


def module_listing(module) -> list[tuple[str, tuple[int, ...], str]]:
    """(key, shape, dtype) of a torch module's state_dict, as the recipe wants it."""
    return [(k, tuple(v.shape), str(v.dtype).replace("torch.", "")) for k, v in module.state_dict().items()]


def fill_with_recipe(module, module_name: str, c: RecipeConstants = RecipeConstants()):
    """Load the recipe's weights into `module` (strict) and return it."""
    import torch

    w = recipe_weights(module_name, module_listing(module), c)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in w.items()}, strict=True)
    return module
