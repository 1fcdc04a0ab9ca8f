"""torch -> ONNX for one registry entry, with its fingerprint in the file's metadata.

Exporter choice: `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript). On WarpField
it gives the cleaner graph by far, measured with torch 2.13 / onnxscript 0.7.2 at grid 96, opset 18:

- dynamo=True: 129 nodes, constants folded into initializers, every shape static except the
  named `batch` axis, output typed (batch, 96, 96, 2); only the ops the model uses (GatherElements,
  GridSample, Slice, Clip, element-wise maths).
- dynamo=False (TorchScript tracer): 292 nodes, 118 of them `Constant`, plus Shape/Gather/
  Equal/Where/ConstantOfShape chains that recompute the dynamic batch for every Reshape and
  Expand, and an output of unknown rank-4 shape (batch, ?, ?, ?): more for TensorRT to fold and
  nothing for shape inference to check.

The dynamo path costs ~6 s per export against ~0.3 s, paid once per cache entry. It is
the default; the TorchScript exporter is the fallback when dynamo export fails (e.g. onnxscript
missing), and the file's metadata says which one produced it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from pathlib import Path
import warnings

from .registry import ModelConfig, ModelSpec

META_PREFIX = "puppetcam."


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' progress prints, warnings and log lines."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript", "torch")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _export_dynamo(model, args, spec: ModelSpec, config: ModelConfig, path: Path) -> None:
    import torch

    kwargs = {}
    if spec.dynamic_batch:
        batch = torch.export.Dim("batch", min=1)
        kwargs["dynamic_shapes"] = {n: {0: batch} for n in spec.input_names}
    torch.onnx.export(model, args, str(path), input_names=list(spec.input_names),
                      output_names=list(spec.output_names), opset_version=config.opset, dynamo=True,
                      external_data=False, verbose=False, **kwargs)


def _export_torchscript(model, args, spec: ModelSpec, config: ModelConfig, path: Path) -> None:
    import torch

    kwargs = {}
    if spec.dynamic_batch:
        kwargs["dynamic_axes"] = {n: {0: "batch"} for n in spec.input_names + spec.output_names}
    torch.onnx.export(model, args, str(path), input_names=list(spec.input_names),
                      output_names=list(spec.output_names), opset_version=config.opset, dynamo=False,
                      do_constant_folding=True, **kwargs)


def export_onnx(spec: ModelSpec, config: ModelConfig, path: Path, exporter: str = "auto",
                quiet: bool = True) -> str:
    """Export `spec` at `config` to `path` (atomically). Returns the exporter used."""
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = spec.build(config)
    # Batch 2 for tracing so that torch.export cannot specialise the batch axis to 1.
    args = spec.example_inputs(config, 2)
    # A temporary name beside the target, then os.replace: readers never see a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    used = None
    errors = []
    try:
        order = {"auto": ("dynamo", "torchscript"), "dynamo": ("dynamo",), "torchscript": ("torchscript",)}[exporter]
        for name in order:
            try:
                with (_quiet() if quiet else contextlib.nullcontext()), torch.no_grad():
                    (_export_dynamo if name == "dynamo" else _export_torchscript)(model, args, spec, config, tmp)
                used = name
                break
            except Exception as exc:  # noqa: BLE001 - fall back to the next exporter, report all
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
        if used is None:
            raise RuntimeError(f"could not export {spec.name} to ONNX: " + "; ".join(errors))
        proto = onnx.load(str(tmp))
        meta = {
            "model": spec.name,
            "source_sha256": spec.fingerprint(config),
            "grid_size": str(config.grid_size),
            "fit_steps": str(config.fit_steps),
            "exporter": used,
            "torch_version": torch.__version__,
        }
        del proto.metadata_props[:]
        for k, v in meta.items():
            proto.metadata_props.add(key=META_PREFIX + k, value=v)
        proto.doc_string = spec.summary
        onnx.save(proto, str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return used


def read_metadata(path: Path) -> dict[str, str]:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key[len(META_PREFIX):]: p.value for p in proto.metadata_props if p.key.startswith(META_PREFIX)}


def is_current(spec: ModelSpec, config: ModelConfig, path: Path) -> bool:
    """True when `path` exists and was exported from the model's current source and config."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        return read_metadata(path).get("source_sha256") == spec.fingerprint(config)
    except Exception:  # noqa: BLE001 - a truncated or foreign file is simply not current
        return False
