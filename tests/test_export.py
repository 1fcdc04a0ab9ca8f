"""python -m export: ONNX validity, plugin-free op set (TensorRT table), ORT vs torch parity on
synthetic inputs and on real ones the app records, the --trt message without TensorRT, the cache
folder, and the engine manifest's staleness logic (pure functions, no TensorRT needed)."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper
import pytest

from export import ModelConfig, ensure_onnx, models_dir, onnx_path
from export.manifest import engine_paths, make_manifest, manifest_status, read_manifest, write_manifest
from export.opcheck import check_plugin_free, graph_ops, grid_sample_ranks, load_table
from export.registry import MODELS
from export.tensorrt_build import engine_status, profile_from_onnx, wanted

TRT_SKIP = ("tensorrt is not installed: it is GPU-only (pip install -r requirements-gpu.txt) and its wheels "
            "cannot be installed on the CPU dev/CI machines, so the TensorRT build path is not run here")


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One cache folder for the whole test session (test_engines uses the same one)."""
    return tmp_path_factory.getbasetemp() / "puppetcam-cache"


@pytest.fixture(scope="module")
def warp_onnx(shared_cache):
    return ensure_onnx("warp_field", ModelConfig(), shared_cache / "models")


@pytest.fixture(scope="module")
def driven(data_dir, shared_cache):
    from app.model_inputs import load_or_drive

    return load_or_drive(shared_cache / "driven_lp_s9_lp_d3_30.pkl", frames=30, data_dir=data_dir)


def test_export_is_valid_onnx_with_a_dynamic_batch(warp_onnx):
    onnx.checker.check_model(str(warp_onnx), full_check=True)
    proto = onnx.load(str(warp_onnx))
    opset = {o.domain: o.version for o in proto.opset_import}[""]
    assert opset >= 17
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in list(proto.graph.input) + list(proto.graph.output)}
    g = ModelConfig().grid_size
    assert dims["tri_index"] == ["batch", g * g, 3]
    assert dims["displacement"][0] == "batch"
    assert dims["grid"] == ["batch", g, g, 2]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["puppetcam.source_sha256"] == MODELS["warp_field"].fingerprint(ModelConfig())


def test_every_op_is_in_tensorrt_parser_table_and_grid_sample_is_4d(warp_onnx):
    table = load_table()
    assert table["tensorrt_version"] and table["source"].startswith("https://github.com/onnx/onnx-tensorrt")
    ops = graph_ops(warp_onnx)
    print(f"\nops of {warp_onnx.name} ({sum(ops.values())} nodes): {dict(sorted(ops.items()))}")
    missing = sorted(op for op in ops if op not in table["supported"])
    assert not missing, f"ops TensorRT {table['tensorrt_version']} cannot parse without a plugin: {missing}"
    assert check_plugin_free(warp_onnx, table) == []
    ranks = grid_sample_ranks(warp_onnx)
    assert ranks and all(r == (4, 4) for r in ranks), f"GridSample must be 4-D only, got {ranks}"


def test_op_check_flags_5d_grid_sampling_and_custom_ops():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4, 4])
    grid = helper.make_tensor_value_info("grid", TensorProto.FLOAT, [1, 3, 3, 3, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, None)
    nodes = [helper.make_node("GridSample", ["x", "grid"], ["y"]),
             helper.make_node("FancyWarp", ["y"], ["z"], domain="com.example")]
    model = helper.make_model(helper.make_graph(nodes, "bad", [x, grid], [z]),
                              opset_imports=[helper.make_opsetid("", 20), helper.make_opsetid("com.example", 1)])
    problems = check_plugin_free(model)
    assert any("GridSample" in p and "4-D" in p for p in problems), problems
    assert any("custom domain" in p for p in problems), problems


def test_ort_matches_torch_on_real_footage(warp_onnx, driven, tmp_path):
    """Real inputs reach export as a file the app records (export never imports the app)."""
    from app.model_inputs import record
    from export.recorded import load_inputs
    from export.verify import ort_vs_torch

    spec = MODELS["warp_field"]
    recorded = load_inputs(record(driven, tmp_path / "inputs.npz"))
    assert recorded.source == driven.source
    feeds = spec.parity_inputs(ModelConfig(), 0, recorded.models["warp_field"])
    assert len(feeds) == len(driven.displacements) + 1
    assert np.abs(driven.displacements).max() > 0.02, "the footage should move the face away from neutral"
    result = ort_vs_torch(spec, ModelConfig(), warp_onnx, feeds)
    print(f"\nONNX Runtime vs torch, {driven.source}: max abs error {result['max_abs']:.3g} "
          f"(batch 1 {result['batch1_max_abs']:.3g}, batched {result['batched_max_abs']:.3g})")
    assert result["max_abs"] < 1e-4


def test_ort_matches_torch_on_synthetic_inputs(warp_onnx):
    from export.verify import ort_vs_torch

    spec = MODELS["warp_field"]
    feeds = spec.parity_inputs(ModelConfig(), 8, None)
    assert np.abs(feeds[0]["displacement"]).max() > 0.0 and np.abs(feeds[-1]["displacement"]).max() > 0.02
    result = ort_vs_torch(spec, ModelConfig(), warp_onnx, feeds)
    print(f"\nONNX Runtime vs torch, synthetic inputs: max abs error {result['max_abs']:.3g}")
    assert result["max_abs"] < 1e-4


def test_recorded_inputs_of_another_grid_are_a_clear_error(tmp_path):
    from export.recorded import load_inputs, save_inputs
    from export.warp_field_inputs import synthetic

    path = save_inputs(tmp_path / "g32.npz", {"warp_field": synthetic(32, frames=2)}, "test")
    with pytest.raises(ValueError, match="same --grid"):
        MODELS["warp_field"].parity_inputs(ModelConfig(), 0, load_inputs(path).models["warp_field"])


def test_cache_is_the_user_cache_not_the_checkout(monkeypatch, tmp_path):
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("PUPPETCAM_CACHE", raising=False)
    assert repo not in models_dir().parents
    monkeypatch.setenv("PUPPETCAM_CACHE", str(tmp_path))
    assert models_dir() == tmp_path / "models"
    assert onnx_path("warp_field", ModelConfig(96, 3, 18)).name == "warp_field_g96_f3_op18.onnx"


def test_stale_or_foreign_onnx_is_not_current(tmp_path, warp_onnx):
    from export.onnx_export import is_current

    spec, cfg = MODELS["warp_field"], ModelConfig()
    assert is_current(spec, cfg, warp_onnx)
    assert not is_current(spec, ModelConfig(fit_steps=cfg.fit_steps + 1), warp_onnx)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    assert not is_current(spec, cfg, junk)
    assert not is_current(spec, cfg, tmp_path / "absent.onnx")


def test_trt_flag_without_tensorrt_says_how_to_install(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("tensorrt is installed here: the not-installed message cannot be shown")
    from export.__main__ import main

    assert main(["--trt", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "tensorrt is not installed" in err and "requirements-gpu.txt" in err
    assert "Traceback" not in err
    assert not list(tmp_path.glob("*.engine"))


# --- engine manifest: staleness decided by pure functions -------------------------------------

ENV = {"tensorrt_version": "10.15.1", "gpu_name": "NVIDIA GeForce RTX 4070", "compute_capability": "8.9"}
PROFILE = {"displacement": {"min": [1, 574, 2], "opt": [1, 574, 2], "max": [8, 574, 2]}}


def _manifest(**change):
    fields = dict(onnx_path="m.onnx", onnx_sha256="a" * 64, precision="fp16", profile=PROFILE, **ENV)
    fields.update(change)
    return make_manifest(**fields)


def _current(**change):
    m = _manifest(**change)
    return {k: m[k] for k in ("manifest_version", "onnx_sha256", "tensorrt_version", "gpu_name",
                              "compute_capability", "precision", "profile")}


@pytest.mark.parametrize("change, words", [
    ({"onnx_sha256": "b" * 64}, "ONNX model changed"),
    ({"tensorrt_version": "10.16.0"}, "TensorRT 10.15.1, this is TensorRT 10.16.0"),
    ({"gpu_name": "NVIDIA H100 80GB HBM3"}, "this GPU is NVIDIA H100"),
    ({"compute_capability": "9.0"}, "compute capability 8.9, this GPU has 9.0"),
    ({"precision": "fp32"}, "built for fp16, fp32 requested"),
    ({"profile": {"displacement": {"min": [1, 574, 2], "opt": [1, 574, 2], "max": [16, 574, 2]}}},
     "optimization profile"),
])
def test_manifest_status_names_what_changed(change, words):
    assert manifest_status(_manifest(), _current()) == "ok"
    status = manifest_status(_manifest(), _current(**change))
    assert status.startswith("stale: ") and words in status, status


def test_manifest_status_without_or_with_a_broken_manifest(tmp_path):
    assert manifest_status(None, _current()).startswith("stale: no manifest")
    bad = tmp_path / "m.json"
    bad.write_text("{not json")
    assert read_manifest(bad) is None
    partial = _manifest()
    del partial["gpu_name"]
    assert manifest_status(partial, _current()) == "stale: manifest has no gpu_name"


def test_engine_status_beside_an_onnx_file(warp_onnx, tmp_path):
    onnx_copy = tmp_path / warp_onnx.name
    onnx_copy.write_bytes(warp_onnx.read_bytes())
    profile = profile_from_onnx(onnx_copy, max_batch=8)
    g2 = ModelConfig().grid_size ** 2
    assert profile["tri_index"] == {"min": [1, g2, 3], "opt": [1, g2, 3], "max": [8, g2, 3]}
    assert engine_status(onnx_copy, "fp16", 8, ENV) == "stale: no engine file"
    engine, manifest_file = engine_paths(onnx_copy, "fp16")
    engine.write_bytes(b"serialized engine")
    assert engine_status(onnx_copy, "fp16", 8, ENV).startswith("stale: no manifest")
    write_manifest(manifest_file, make_manifest(onnx_path=str(onnx_copy), **{
        k: v for k, v in wanted(onnx_copy, "fp16", 8, ENV).items() if k != "manifest_version"}))
    assert json.loads(manifest_file.read_text())["tensorrt_version"] == "10.15.1"
    assert engine_status(onnx_copy, "fp16", 8, ENV) == "ok"
    # Another machine (foreign engine), another TensorRT, another model: all rebuild.
    assert "this GPU is" in engine_status(onnx_copy, "fp16", 8, {**ENV, "gpu_name": "Tesla T4"})
    assert "TensorRT" in engine_status(onnx_copy, "fp16", 8, {**ENV, "tensorrt_version": "10.3.0"})
    assert engine_status(onnx_copy, "fp32", 8, ENV) == "stale: no engine file"
    proto = onnx.load(str(onnx_copy))
    proto.doc_string += " (re-exported)"
    onnx.save(proto, str(onnx_copy))
    assert "ONNX model changed" in engine_status(onnx_copy, "fp16", 8, ENV)


# --- TensorRT itself: only where it is installed (a CUDA machine) ------------------------------

def test_trt_build_writes_engine_and_manifest(warp_onnx, tmp_path):
    pytest.importorskip("tensorrt", reason=TRT_SKIP)
    from export.tensorrt_build import TensorRTUnavailable, build_engine, import_tensorrt

    try:
        import_tensorrt()
    except TensorRTUnavailable as exc:
        pytest.skip(str(exc))
    onnx_copy = tmp_path / warp_onnx.name
    onnx_copy.write_bytes(warp_onnx.read_bytes())
    engine, manifest = build_engine(onnx_copy, "fp16", max_batch=4)
    assert engine.is_file() and engine.stat().st_size > 0
    assert read_manifest(engine_paths(onnx_copy, "fp16")[1]) == manifest
    for key in ("onnx_sha256", "tensorrt_version", "gpu_name", "compute_capability", "precision", "profile"):
        assert manifest[key]
    assert list(tmp_path.glob("timing_*.cache"))
