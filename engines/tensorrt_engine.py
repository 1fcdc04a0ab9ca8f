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

from .base import EngineLifecycle
from .errors import EngineUnavailable
from .needs import needs_tensorrt
from .registry import register_engine
from .rig_cache import RigCache

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


@register_engine("tensorrt-fp32", needs=needs_tensorrt, precision="fp32")
@register_engine("tensorrt", needs=needs_tensorrt, auto_rank=10, aliases=("trt", "tensorrt-fp16"), precision="fp16")
class TensorRTFieldEngine(EngineLifecycle):
    """FieldEngine on TensorRT (fp16 by default). `max_batch` is the optimization profile's
    maximum, fixed when the engine is built."""

    def __init__(self, grid_size: int | None = None, precision: str = "fp16",
                 fit_steps: int | None = None, cache_dir: Path | str | None = None,
                 max_batch: int | None = None, device: int = 0, opset: int | None = None) -> None:
        from export import ensure_onnx
        from export.registry import DEFAULT_MAX_BATCH, DEFAULT_OPSET, ModelConfig
        from export.tensorrt_build import TensorRTUnavailable, ensure_engine, import_tensorrt
        from models.warp_field import DEFAULT_FIT_STEPS, DEFAULT_GRID_SIZE

        try:
            trt = import_tensorrt()
        except TensorRTUnavailable as exc:
            raise EngineUnavailable("tensorrt", exc.why, exc.what_to_do) from None
        import torch

        self._trt, self._torch = trt, torch
        self.device = torch.device("cuda", device)
        torch.cuda.set_device(self.device)
        self.max_batch = max_batch or DEFAULT_MAX_BATCH
        self.onnx_path = ensure_onnx("warp_field", ModelConfig(grid_size or DEFAULT_GRID_SIZE, fit_steps or DEFAULT_FIT_STEPS,
                                                             opset or DEFAULT_OPSET),
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
        self._rigs = RigCache(self._upload)
        self._out: dict[str, object] = {}

    def _upload(self, tri_index: np.ndarray, tri_weight: np.ndarray) -> dict[str, object]:
        """Constant per avatar: uploaded once (on self.stream, see __call__), kept on the GPU."""
        torch = self._torch
        return {"tri_index": torch.from_numpy(np.ascontiguousarray(tri_index)).to(self.device, self.inputs["tri_index"]),
                "tri_weight": torch.from_numpy(np.ascontiguousarray(tri_weight)).to(self.device,
                                                                                    self.inputs["tri_weight"])}

    def __call__(self, tri_index: np.ndarray, tri_weight: np.ndarray, displacement: np.ndarray) -> np.ndarray:
        torch, ctx = self._torch, self.context
        b = displacement.shape[0]
        if b > self.max_batch:
            raise ValueError(f"batch {b} exceeds the engine's optimization profile (max {self.max_batch})")
        with torch.cuda.stream(self.stream):
            feeds = dict(self._rigs.get(tri_index, tri_weight))
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

    def close(self) -> None:
        """Frees the device buffers, then the execution context, the engine and the runtime, in
        that order (TensorRT 10 has no destroy(): an object is freed when its last reference
        goes, and a context must go before its engine)."""
        if getattr(self, "context", None) is None:
            return
        self.stream.synchronize()  # nothing may still be reading the buffers
        self._rigs.clear()
        self._out.clear()
        self.context = None
        self.engine = None
        self._runtime = None
        self._torch.cuda.empty_cache()
