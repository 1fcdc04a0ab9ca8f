"""What each backend needs, checked cheaply (nothing is built): why it cannot run, or None."""

from __future__ import annotations

import importlib.util

GPU_INSTALL = "pip install -r requirements-gpu.txt"


def needs_torch() -> str | None:
    return None if importlib.util.find_spec("torch") else "torch is not installed"


def needs_torch_cuda() -> str | None:
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if torch.cuda.is_available():
        return None
    if torch.version.cuda is None:
        return f"no CUDA GPU: torch {torch.__version__} is a CPU-only build"
    return f"no CUDA GPU visible to torch {torch.__version__} (no NVIDIA driver or device)"


def needs_onnxruntime() -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install -r requirements.txt)"
    return None


def cuda_provider_available() -> bool:
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def needs_onnxruntime_cuda() -> str | None:
    missing = needs_onnxruntime()
    if missing or cuda_provider_available():
        return missing
    import onnxruntime as ort

    return (f"onnxruntime {ort.__version__} has no CUDA provider (CPU-only build; "
            f"{GPU_INSTALL} installs onnxruntime-gpu)")


def needs_tensorrt() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return f"not installed ({GPU_INSTALL})"
    cuda = needs_torch_cuda()
    return f"installed, but {cuda}" if cuda else None
