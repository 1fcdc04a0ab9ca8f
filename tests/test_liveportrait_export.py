"""python -m export --model liveportrait: plugin-free ONNX (every op in TensorRT's native table,
GridSample 4-D only), ONNX Runtime vs torch, and the TensorRT build path's view of these files.

Exporting and running the full-size W and G takes minutes on two cores, so the tests export the
small stitching network through the CLI and a down-sized warping network (same code, fewer
channels) for the GridSample checks; `python -m export --model liveportrait` does the full ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from export.liveportrait import GROUP, NAMES
from export.opcheck import check_plugin_free, graph_ops, grid_sample_ranks, load_table
from export.registry import ModelConfig, ModelSpec

TRT_SKIP = ("tensorrt is not installed: it is GPU-only (pip install -r requirements-gpu.txt) and cannot be "
            "installed on the CPU dev/CI machines, so LivePortrait engines are not built here")


def _tiny_warping():
    from models.liveportrait.config import DenseMotionConfig, WarpingConfig
    from models.liveportrait.recipe import fill_with_recipe
    from models.liveportrait.warping import WarpingNetwork

    cfg = WarpingConfig(num_kp=3, block_expansion=4, max_features=16, reshape_channel=4,
                        dense_motion=DenseMotionConfig(block_expansion=4, max_features=16, num_blocks=2,
                                                       reshape_depth=4, compress=2))
    net = fill_with_recipe(WarpingNetwork(cfg), "warping_module").eval()

    class OutOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, feature, kp_driving, kp_source):
            return self.net(feature, kp_driving, kp_source)[0]

    return OutOnly().eval()


def _tiny_warp_inputs(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(batch, 4, 4, 16, 16, generator=g), 0.5 * torch.randn(batch, 3, 3, generator=g),
            0.5 * torch.randn(batch, 3, 3, generator=g))


TINY_W = ModelSpec(
    name="liveportrait_warping_tiny", summary="down-sized LivePortrait W (test)",
    input_names=("feature", "kp_driving", "kp_source"), output_names=("out",), build=lambda c: _tiny_warping(),
    example_inputs=lambda c, b: _tiny_warp_inputs(b),
    parity_inputs=lambda c, *a: [{k: v.numpy() for k, v in zip(("feature", "kp_driving", "kp_source"),
                                                                    _tiny_warp_inputs(b, seed=b))} for b in (1, 3)],
    source_files=(), variant=lambda c: "test")


@pytest.fixture(scope="module")
def tiny_w_onnx(tmp_path_factory) -> Path:
    from export.onnx_export import export_onnx

    path = tmp_path_factory.mktemp("lpx") / TINY_W.filename(ModelConfig())
    export_onnx(TINY_W, ModelConfig(), path)
    return path


def test_warping_graph_uses_only_4d_grid_sample_and_native_ops(tiny_w_onnx):
    table = load_table()
    ops = graph_ops(tiny_w_onnx)
    assert check_plugin_free(tiny_w_onnx, table) == [], ops
    ranks = grid_sample_ranks(tiny_w_onnx)
    # One for the 22 (here 4) per-keypoint deformed volumes, one for the final warp.
    assert len(ranks) == 2 and all(r == (4, 4) for r in ranks), ranks


def test_warping_graph_ort_matches_torch_at_batch_1_and_3(tiny_w_onnx):
    from export.verify import ort_vs_torch

    r = ort_vs_torch(TINY_W, ModelConfig(), tiny_w_onnx, TINY_W.parity_inputs(ModelConfig()))
    assert r["batch1_max_abs"] < 1e-4 and r["batched_max_abs"] < 1e-4, r


def test_trt_profile_covers_every_input_of_the_warping_graph(tiny_w_onnx):
    from export.tensorrt_build import profile_from_onnx

    prof = profile_from_onnx(tiny_w_onnx, max_batch=4)
    assert prof["feature"] == {"min": [1, 4, 4, 16, 16], "opt": [1, 4, 4, 16, 16], "max": [4, 4, 4, 16, 16]}
    assert prof["kp_driving"]["max"] == [4, 3, 3] and prof["kp_source"]["min"] == [1, 3, 3]


def test_model_group_expands_to_the_five_networks():
    from export.__main__ import _resolve_specs

    specs = _resolve_specs([GROUP], None)
    assert [s.name for s in specs] == list(NAMES)
    assert all(s.filename(ModelConfig()).startswith(s.name + "_random_op") for s in specs)
    # Not part of the default export (random weights are only good for checking graphs).
    from export.registry import MODELS
    assert not set(NAMES) & set(MODELS)


def test_cli_exports_the_stitching_network_plugin_free_with_ort_parity(tmp_path, capsys):
    from export.__main__ import main

    assert main(["--model", "liveportrait_stitching", "--out", str(tmp_path), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "liveportrait_stitching: plugin-free" in out and "ONNX Runtime vs torch" in out and "ok" in out
    (onnx_file,) = tmp_path.glob("liveportrait_stitching_random_op*.onnx")
    assert set(graph_ops(onnx_file)) <= {"Gemm", "Relu"}


def test_trt_engine_for_a_liveportrait_graph(tiny_w_onnx, tmp_path):
    pytest.importorskip("tensorrt", reason=TRT_SKIP)
    from export.tensorrt_build import TensorRTUnavailable, ensure_engine

    try:
        engine, manifest, before = ensure_engine(tiny_w_onnx, "fp32", 2)
    except TensorRTUnavailable as exc:
        pytest.skip(str(exc))
    assert engine.is_file() and before != "ok"
    assert ensure_engine(tiny_w_onnx, "fp32", 2)[2] == "ok"  # manifest says up to date: no rebuild
