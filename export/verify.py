"""Checks of an exported graph: onnx.checker, ONNX Runtime against torch on real inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import ModelConfig, ModelSpec


def check_model(path: Path | str) -> None:
    """onnx.checker with full shape/type checking; raises onnx.checker.ValidationError."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)


def ort_vs_torch(spec: ModelSpec, config: ModelConfig, path: Path | str, feeds: list[dict[str, np.ndarray]],
                 providers: list[str] | None = None) -> dict[str, float]:
    """Max abs difference between ONNX Runtime and the torch model over `feeds`:
    {"max_abs": over all, "batch1_max_abs": over the single-face feeds, "batched_max_abs": over the rest}."""
    import onnxruntime as ort
    import torch

    model = spec.build(config)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=providers or ["CPUExecutionProvider"])
    single, batched = [0.0], [0.0]
    for feed in feeds:
        got = session.run(None, feed)
        with torch.inference_mode():
            want = model(*(torch.from_numpy(np.ascontiguousarray(feed[n])) for n in spec.input_names))
        want = want if isinstance(want, (tuple, list)) else (want,)  # several outputs: all are compared
        err = max(float(np.abs(g - w.numpy()).max()) for g, w in zip(got, want))
        (single if next(iter(feed.values())).shape[0] == 1 else batched).append(err)
    return {"max_abs": max(single + batched), "batch1_max_abs": max(single), "batched_max_abs": max(batched),
            "feeds": len(feeds)}
