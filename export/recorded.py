"""Recorded model inputs: what the app fed the per-frame models, kept in one .npz file.

export/ cannot make real inputs itself (that takes the app's tracker, retargeting and rig, and
export sits below the app), so the app records them (`python -m app.model_inputs --out FILE.npz`)
and `python -m export --inputs FILE.npz` checks ONNX Runtime against torch on them.

Layout: one array per model input, named "<model>/<input>", each with a leading axis of frames
(or of 1 where the input is the same every frame), plus "source", a line saying where they came
from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class RecordedInputs:
    models: dict[str, dict[str, np.ndarray]]  # model name -> input name -> array
    source: str


def save_inputs(path: Path | str, models: dict[str, dict[str, np.ndarray]], source: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{model}/{name}": np.asarray(a) for model, inputs in models.items() for name, a in inputs.items()}
    with open(path, "wb") as f:  # a file object: np.savez would append .npz to a name without it
        np.savez_compressed(f, source=np.array(source), **arrays)
    return path


def load_inputs(path: Path | str) -> RecordedInputs:
    models: dict[str, dict[str, np.ndarray]] = {}
    with np.load(Path(path), allow_pickle=False) as data:
        source = str(data["source"]) if "source" in data.files else str(path)
        for key in data.files:
            model, sep, name = key.partition("/")
            if sep:
                models.setdefault(model, {})[name] = data[key]
    return RecordedInputs(models, source)
