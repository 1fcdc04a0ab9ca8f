"""engines/: auto selection and its reasons, forced backends, ONNX Runtime vs torch on real
footage (model and whole renderer), export on first use, TensorRT where installed."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from engines import (EngineLifecycle, EngineUnavailable, UnknownEngine, auto_order, backends, describe_choice,
                     register_engine, run_batched, select_engine, unavailable_reason, unregister_engine)
from engines.rig_cache import RigCache
from engines.onnxruntime_engine import OnnxRuntimeFieldEngine
from engines.torch_engine import TorchFieldEngine

TRT_SKIP = ("tensorrt is not installed: it is GPU-only (pip install -r requirements-gpu.txt) and its wheels "
            "cannot be installed on the CPU dev/CI machines, so TensorRTFieldEngine is not run here")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """Same folder as test_export's: the ONNX file and the driven footage are made once."""
    return tmp_path_factory.getbasetemp() / "puppetcam-cache"


@pytest.fixture
def cache_env(shared_cache, monkeypatch):
    monkeypatch.setenv("PUPPETCAM_CACHE", str(shared_cache))
    return shared_cache


@pytest.fixture(scope="module")
def driven(data_dir, shared_cache):
    from app.model_inputs import load_or_drive

    return load_or_drive(shared_cache / "driven_lp_s9_lp_d3_30.pkl", frames=30, data_dir=data_dir)


@pytest.fixture(scope="module")
def ort_engine(shared_cache):
    return OnnxRuntimeFieldEngine(device="cpu", cache_dir=shared_cache / "models")


def test_auto_picks_a_working_engine_and_says_why_not_the_others(cache_env):
    choice = select_engine("auto")
    g = 96
    rng = np.random.default_rng(0)
    from models.warp_field import NUM_CONTROL_POINTS as V

    out = choice.engine(rng.integers(0, V, (1, g * g, 3)).astype(np.int64),
                        np.full((1, g * g, 3), 1 / 3, np.float32), (0.01 * rng.standard_normal((1, V, 2))).astype(np.float32))
    assert out.shape == (1, g, g, 2) and np.isfinite(out).all()
    assert set(choice.reasons) == set(auto_order())
    assert "tensorrt" in choice.reasons and choice.reasons["tensorrt"]
    assert choice.reasons[choice.engine.name].startswith("picked")
    line = describe_choice(choice)
    print("\n" + line)
    assert "\n" not in line and choice.engine.name in line and "tensorrt" in line
    if importlib.util.find_spec("tensorrt") is None:
        assert "not installed" in choice.reasons["tensorrt"] and "requirements-gpu.txt" in choice.reasons["tensorrt"]


def test_forcing_an_unavailable_engine_is_a_clear_error(cache_env):
    missing = [b for b in auto_order() if unavailable_reason(b)]
    if not missing:
        pytest.skip("every backend is available on this machine")
    for backend in missing:
        with pytest.raises(EngineUnavailable) as info:
            select_engine(backend)
        msg = str(info.value)
        assert backend in msg and unavailable_reason(backend) in msg and "--engine auto" in msg
    with pytest.raises(UnknownEngine, match="Unknown engine 'warp9000'"):
        select_engine("warp9000")
    with pytest.raises(ValueError):  # UnknownEngine is a ValueError too, for older callers
        select_engine("warp9000")


def test_forced_engines_that_exist_here_run(cache_env):
    for name in ("torch", "onnxruntime-cpu"):
        choice = select_engine(name, grid_size=96)
        assert choice.engine.name == ("torch-cpu" if name == "torch" else name)


def test_ort_engine_exports_the_model_on_first_use(tmp_path):
    models = tmp_path / "models"
    engine = OnnxRuntimeFieldEngine(device="cpu", cache_dir=models)
    assert engine.onnx_path.parent == models and engine.onnx_path.is_file()
    assert engine.name == "onnxruntime-cpu"


def test_ort_engine_matches_torch_engine_on_real_footage(ort_engine, driven):
    torch_engine = TorchFieldEngine()
    err = 0.0
    for d in driven.displacements:
        a = ort_engine(driven.tri_index, driven.tri_weight, d[None])
        b = torch_engine(driven.tri_index, driven.tri_weight, d[None])
        err = max(err, float(np.abs(a - b).max()))
    print(f"\nonnxruntime-cpu vs torch-cpu over {len(driven.displacements)} frames: max abs error {err:.3g}")
    assert err < 1e-4
    # Several faces in one batch (the multi-face path): same as one by one.
    k = 3
    batch = ort_engine(np.repeat(driven.tri_index, k, 0), np.repeat(driven.tri_weight, k, 0), driven.displacements[-k:])
    single = np.concatenate([torch_engine(driven.tri_index, driven.tri_weight, d[None]) for d in driven.displacements[-k:]])
    assert batch.shape == single.shape and np.abs(batch - single).max() < 1e-4


def test_renderer_output_is_the_same_on_either_engine(ort_engine, driven):
    from app.render import Renderer

    on_torch, on_ort = Renderer(driven.avatar, TorchFieldEngine()), Renderer(driven.avatar, ort_engine)
    for i in range(0, len(driven.posed), 6):
        posed, mouth = driven.posed[i], driven.mouths[i]
        mt, _ = on_torch.sampling_maps(posed)
        mo, _ = on_ort.sampling_maps(posed)
        assert np.abs(mt - mo).max() < 0.01  # pixels
        a = on_torch.render(posed, mouth).astype(int)
        b = on_ort.render(posed, mouth).astype(int)
        assert np.abs(a - b).max() <= 4 and np.abs(a - b).mean() < 1e-3


def test_benchmark_runs(driven, shared_cache, capsys):
    import pickle

    from app.engine_bench import main

    inputs = shared_cache / "bench_inputs.pkl"
    with open(inputs, "wb") as f:
        pickle.dump({512: driven}, f)
    assert main(["--inputs", str(inputs), "--sizes", "512", "--rounds", "1", "--backends", "torch-cpu,tensorrt"]) == 0
    out = capsys.readouterr().out
    assert "torch-cpu" in out and "render 512 ms" in out
    assert ("skipped tensorrt" in out) or ("\ntensorrt " in out)


# --- TensorRT: only where it is installed (a CUDA machine) -------------------------------------

@pytest.fixture(scope="module")
def trt_module():
    trt = pytest.importorskip("tensorrt", reason=TRT_SKIP)
    import torch

    if not torch.cuda.is_available():
        pytest.skip(f"tensorrt {trt.__version__} is installed but torch sees no CUDA GPU")
    return trt


@pytest.mark.parametrize("precision, tolerance", [("fp16", 5e-3), ("fp32", 1e-4)])
def test_tensorrt_engine_matches_torch(trt_module, driven, tmp_path, precision, tolerance):
    from engines.tensorrt_engine import TensorRTFieldEngine

    engine = TensorRTFieldEngine(precision=precision, cache_dir=tmp_path / "models")
    assert engine.status_at_start.startswith("stale")  # nothing there: built on first use
    torch_engine = TorchFieldEngine()
    err = max(float(np.abs(engine(driven.tri_index, driven.tri_weight, d[None])
                           - torch_engine(driven.tri_index, driven.tri_weight, d[None])).max())
              for d in driven.displacements)
    print(f"\ntensorrt {precision} vs torch: max abs error {err:.3g}")
    assert err < tolerance


def test_tensorrt_engine_rebuilds_a_stale_or_foreign_engine(trt_module, tmp_path):
    from export.manifest import engine_paths, read_manifest, write_manifest

    from engines.tensorrt_engine import TensorRTFieldEngine

    first = TensorRTFieldEngine(cache_dir=tmp_path / "models")
    again = TensorRTFieldEngine(cache_dir=tmp_path / "models")
    assert again.status_at_start == "ok"
    _, manifest_file = engine_paths(first.onnx_path, "fp16")
    foreign = read_manifest(manifest_file)
    foreign.update(gpu_name="Some Other GPU", tensorrt_version="8.6.1")
    write_manifest(manifest_file, foreign)
    rebuilt = TensorRTFieldEngine(cache_dir=tmp_path / "models")
    assert rebuilt.status_at_start.startswith("stale: built with TensorRT 8.6.1")
    assert read_manifest(manifest_file)["tensorrt_version"] == trt_module.__version__


def test_tensorrt_engine_closes_and_splits_batches_over_its_profile(trt_module, driven, tmp_path):
    from engines.tensorrt_engine import TensorRTFieldEngine

    with TensorRTFieldEngine(cache_dir=tmp_path / "models", max_batch=2) as engine:
        assert engine.max_batch == 2
        k = 5
        out = run_batched(engine, np.repeat(driven.tri_index, k, 0), np.repeat(driven.tri_weight, k, 0),
                          driven.displacements[-k:])
        assert out.shape[0] == k
    assert engine.context is None and engine.engine is None


class _EchoEngine(EngineLifecycle):
    """A backend in one class: a grid of zeros, counting calls and closes."""

    max_batch = 2

    def __init__(self, grid_size, scale: float = 1.0) -> None:
        self.name = "echo"
        self.grid_size = grid_size or 8
        self.scale = scale
        self.calls: list[int] = []
        self.closed = 0

    def __call__(self, tri_index, tri_weight, displacement):
        self.calls.append(displacement.shape[0])
        return np.full((displacement.shape[0], self.grid_size, self.grid_size, 2), self.scale, np.float32)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def echo_backend():
    register_engine("echo", aliases=("mirror",), scale=0.5)(_EchoEngine)
    yield "echo"
    unregister_engine("echo")


def test_a_new_engine_is_one_registered_class_selected_by_name(echo_backend):
    assert "echo" in backends() and "echo" not in auto_order()  # no auto_rank: by name only
    for name in ("echo", "ECHO", "mirror"):
        choice = select_engine(name, grid_size=4)
        assert isinstance(choice.engine, _EchoEngine) and choice.engine.scale == 0.5
        assert choice.reasons["echo"].startswith("picked")
    with select_engine("echo").engine as engine:
        out = run_batched(engine, np.zeros((5, 64, 3), np.int64), np.zeros((5, 64, 3), np.float32),
                          np.zeros((5, 10, 2), np.float32))
    assert out.shape == (5, 8, 8, 2) and engine.calls == [2, 2, 1] and engine.closed == 1


def test_an_unavailable_registered_engine_says_why(echo_backend):
    register_engine("echo-gpu", needs=lambda: "no echo chamber here")(_EchoEngine)
    try:
        with pytest.raises(EngineUnavailable, match="no echo chamber here"):
            select_engine("echo-gpu")
    finally:
        unregister_engine("echo-gpu")


def test_onnxruntime_alias_means_the_first_that_runs_here():
    from engines import resolve
    from engines.needs import cuda_provider_available

    assert resolve("onnxruntime") == ("onnxruntime-cuda" if cuda_provider_available() else "onnxruntime-cpu")
    assert resolve("trt") == "tensorrt" and resolve("torch") == "torch-cpu" and resolve("") == "auto"


def test_the_rig_cache_uploads_once_per_rig_and_keeps_a_few():
    uploads = []
    cache = RigCache(lambda i, w: uploads.append(1) or (i.sum(), w.sum()), entries=2)
    a, b, c = (np.full((1, 4, 3), k) for k in range(3))
    for rig in (a, a, b, a, b):
        cache.get(rig, rig)
    assert len(uploads) == 2
    cache.get(c, c)  # evicts the least recently used (a)
    cache.get(a, a)
    assert len(uploads) == 4 and len(cache) == 2
    cache.clear()
    assert len(cache) == 0


def test_engines_free_what_they_allocate_on_close(shared_cache, driven):
    with TorchFieldEngine() as torch_engine:
        torch_engine(driven.tri_index, driven.tri_weight, driven.displacements[:1])
        assert len(torch_engine._rigs) == 1
    assert torch_engine.model is None and len(torch_engine._rigs) == 0
    torch_engine.close()  # twice is fine
    with OnnxRuntimeFieldEngine(device="cpu", cache_dir=shared_cache / "models") as ort_engine:
        assert ort_engine.max_batch is None
    assert ort_engine.session is None
