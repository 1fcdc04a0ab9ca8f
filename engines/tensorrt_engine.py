"""The WarpField model run by TensorRT: a serialized engine built from the cached ONNX file,
executed with named I/O tensors on a CUDA stream (torch.cuda supplies the stream and buffers).

The engine's manifest (ONNX hash, TensorRT version, GPU and compute capability, precision,
profile) is checked on every start; a stale or foreign engine is rebuilt, not loaded. An engine
that still fails to deserialize is rebuilt once more before giving up.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from models.warp_field import DEFAULT_FIT_STEPS, DEFAULT_GRID_SIZE

from .errors import EngineUnavailable

log = logging.getLogger("puppetcam.engines")


def _torch_dtype(trt, torch, dt):
    table = {
        trt.DataType.FLOAT: torch.float32,
        trt.DataType.HALF: torch.float16,
        trt.DataType.INT32: torch.int32,
        trt.DataType.INT8: torch.int8,
        trt.DataType.BOOL: torch.bool,
    }
    for name, tdt in (("INT64", torch.int64), ("UINT8", torch.uint8), ("BF16", torch.bfloat16)):
        if hasattr(trt.DataType, name):
            table[getattr(trt.DataType, name)] = tdt
    return table[dt]


class TensorRTFieldEngine:
    """FieldEngine on TensorRT (fp16 by default)."""

    def __init__(self, grid_size: int = DEFAULT_GRID_SIZE, precision: str = "fp16",
                 fit_steps: int = DEFAULT_FIT_STEPS, cache_dir: Path | str | None = None,
                 max_batch: int | None = None, device: int = 0, opset: int | None = None) -> None:
        from export import ensure_onnx
        from export.registry import DEFAULT_MAX_BATCH, DEFAULT_OPSET, ModelConfig
        from export.tensorrt_build import TensorRTUnavailable, ensure_engine, import_tensorrt

        try:
            trt = import_tensorrt()
        except TensorRTUnavailable as exc:
            raise EngineUnavailable("tensorrt", exc.why, exc.what_to_do) from None
        import torch

        self._trt, self._torch = trt, torch
        self.device = torch.device("cuda", device)
        torch.cuda.set_device(self.device)
        self.max_batch = max_batch or DEFAULT_MAX_BATCH
        self.onnx_path = ensure_onnx("warp_field", ModelConfig(grid_size, fit_steps, opset or DEFAULT_OPSET),
                                     cache_dir)
        self.engine_path, self.manifest, self.status_at_start = ensure_engine(self.onnx_path, precision,
                                                                              self.max_batch)
        # The precision built may differ from the one asked for (fp16 -> fp32 on TensorRT 11).
        precision = self.precision = self.manifest["precision"]
        self.name = "tensorrt" if precision == "fp16" else f"tensorrt-{precision}"
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
        if engine is None:
            log.warning("TensorRT could not deserialize %s despite its manifest; rebuilding it", self.engine_path)
            self.engine_path, self.manifest, _ = ensure_engine(self.onnx_path, precision, self.max_batch, force=True)
            engine = self._runtime.deserialize_cuda_engine(self.engine_path.read_bytes())
            if engine is None:
                raise RuntimeError(f"TensorRT cannot load the engine it just built: {self.engine_path}")
        self.engine = engine
        self.context = engine.create_execution_context()
        self.stream = torch.cuda.Stream(self.device)
        self.inputs: dict[str, object] = {}
        self.outputs: dict[str, object] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = _torch_dtype(trt, torch, engine.get_tensor_dtype(name))
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = dtype
        self._rig: tuple | None = None
        self._out: dict[str, object] = {}

    def __call__(self, tri_index: np.ndarray, tri_weight: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        torch, ctx = self._torch, self.context
        b = displacement.shape[0]
        if b > self.max_batch:
            raise ValueError(f"batch {b} exceeds the engine's optimization profile (max {self.max_batch})")
        with torch.cuda.stream(self.stream):
            key = id(tri_index)
            if self._rig is None or self._rig[0] != key:
                # Constant per avatar: uploaded once, kept on the GPU.
                self._rig = (key, {
                    "tri_index": torch.from_numpy(np.ascontiguousarray(tri_index)).to(
                        self.device, self.inputs["tri_index"]),
                    "tri_weight": torch.from_numpy(np.ascontiguousarray(tri_weight)).to(
                        self.device, self.inputs["tri_weight"]),
                }, tri_index)
            feeds = dict(self._rig[1])
            feeds["displacement"] = torch.from_numpy(np.ascontiguousarray(displacement)).to(
                self.device, self.inputs["displacement"])
            for name, tensor in feeds.items():
                ctx.set_input_shape(name, tuple(tensor.shape))
                ctx.set_tensor_address(name, tensor.data_ptr())
            results = {}
            for name, dtype in self.outputs.items():
                shape = tuple(ctx.get_tensor_shape(name))
                out = self._out.get(name)
                if out is None or tuple(out.shape) != shape:
                    out = self._out[name] = torch.empty(shape, dtype=dtype, device=self.device)
                ctx.set_tensor_address(name, out.data_ptr())
                results[name] = out
            if not ctx.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError("TensorRT execute_async_v3 failed")
            grid = results["grid"].float().to("cpu")  # on self.stream: ordered after the engine
        self.stream.synchronize()
        return grid.numpy()
