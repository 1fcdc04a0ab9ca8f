"""LivePortrait networks (models/liveportrait): the numpy weight recipe against the fixture's
hashes, module-by-module and end-to-end parity with the reference outputs, 4-D trilinear sampling
against torch's 5-D grid_sample, and checkpoint folders in the released layout.

The fixture (../shared/fixtures/liveportrait beside the checkout) holds the reference outputs of
LivePortrait's own code run with the recipe's random weights; see its README for the tolerances
used below. W and G are the slow parts (~10 s each on one core): the end-to-end chain runs once
per module (W2 is an isolated case only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.liveportrait import CheckpointError, LivePortraitNets, expected_files, load_liveportrait, save_liveportrait
from models.liveportrait import keypoints as kpm
from models.liveportrait.chain import motion_outputs, reference_chain
from models.liveportrait.config import BASE_FILES, RETARGETING_FILE
from models.liveportrait.grid_sample import trilinear_sample, trilinear_sample_5d
from models.liveportrait.recipe import module_listing, recipe_weights, sha256_16

FIXTURE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "liveportrait"
HALF_ULP = 2.0 ** -11
ULP = 2.0 ** -10

# Fixture README section 9 (also manifest.json -> suggested_tolerances): name -> (atol, rtol).
ISOLATED = {"M": (1e-4, 0), "P_deg": (1e-3, 0), "P": (1e-5, 0), "S": (1e-5, 0), "F_f_s": (1e-4, HALF_ULP),
            "W": (1e-5, 0), "W_out": (1e-4, HALF_ULP), "G_out": (1e-4, 0)}
END_TO_END = {"M": (1e-4, 0), "P_deg": (1e-3, 0), "P": (1e-4, 0), "S": (1e-4, 0), "F_f_s": (1e-4, ULP),
              "W_dm_compressed_bn": (1e-2, 0), "W": (1e-4, 0), "W_out": (1e-3, ULP), "G_out": (1e-2, 0)}


def _group(name: str) -> str:
    if name.startswith("M_"):
        return "M"
    if name.startswith("P_"):
        return "P_deg" if name.endswith("_deg") else "P"
    if name in ("x_s", "x_d"):
        return "P"
    if name.startswith(("S_", "R_")) or name == "x_d_stitched":
        return "S"
    if name in ("W_out", "W2_out"):
        return "W_out"
    if name.startswith("W") and name != "W_dm_compressed_bn":
        return "W"
    return name


def _check(ref: np.ndarray, got: torch.Tensor, atol: float, rtol: float, name: str) -> float:
    ref = ref.astype(np.float32)
    got = got.detach().cpu().numpy().reshape(ref.shape)
    err = np.abs(got - ref)
    bad = err > atol + rtol * np.abs(ref)
    assert not bad.any(), (f"{name}: {int(bad.sum())} of {bad.size} values outside atol {atol} + rtol {rtol}; "
                           f"max abs error {err.max():.3g}")
    return float(err.max())


@pytest.fixture(scope="module")
def fixture():
    if not (FIXTURE / "reference.npz").is_file():
        pytest.skip(f"LivePortrait parity fixture {FIXTURE} is absent (it sits beside the checkout in CI)")
    z = np.load(FIXTURE / "reference.npz")
    return {k: z[k] for k in z.files}, json.loads((FIXTURE / "manifest.json").read_text())


@pytest.fixture(scope="module")
def nets() -> LivePortraitNets:
    return LivePortraitNets.random()


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


@pytest.fixture(scope="module")
def chain(fixture, nets):
    z, _ = fixture
    # W2 is an isolated case (saved inputs), checked in test_warping_module_both_cases.
    return reference_chain(nets, _t(z["in_source_image"]), _t(z["in_driving_image"]),
                           lip_ratio=_t(z["R_lip_ratio"]), eye_ratio=_t(z["R_eye_ratio"]), w2_scale=None)


def _manifest_listings(manifest):
    for name, m in manifest["modules"].items():
        for sub, s in (m["sub_networks"].items() if "sub_networks" in m else [(name, m)]):
            yield sub, s


# --- weights and layout ----------------------------------------------------------------------

def test_recipe_port_reproduces_every_manifest_hash(fixture):
    _, manifest = fixture
    for name, sub in _manifest_listings(manifest):
        listing = [(e["key"], e["shape"], e["dtype"]) for e in sub["state_dict"]]
        w = recipe_weights(sub["recipe_module_name"], listing)
        wrong = [e["key"] for e in sub["state_dict"] if sha256_16(w[e["key"]]) != e["sha256_16"]]
        assert not wrong, f"{name}: recipe tensors differ from the manifest: {wrong[:5]}"
        import hashlib
        whole = hashlib.sha256(b"".join(np.ascontiguousarray(w[k]).tobytes() for k in sorted(w))).hexdigest()[:16]
        assert whole == sub["weights_sha256_16"], name


def test_state_dicts_match_the_manifest_key_for_key(fixture, nets):
    _, manifest = fixture
    for name, sub in _manifest_listings(manifest):
        want = [(e["key"], tuple(e["shape"]), e["dtype"]) for e in sub["state_dict"]]
        assert sorted(module_listing(getattr(nets, name))) == sorted(want), name


# --- 4-D trilinear sampling ----------------------------------------------------------------------

def test_trilinear_sampling_with_4d_grid_sample_equals_5d_grid_sample():
    gen = torch.Generator().manual_seed(0)
    volume = torch.randn(2, 3, 5, 7, 9, generator=gen) * 10
    # Beyond [-1, 1] in every axis too, so that zero padding (including in depth) is exercised.
    grid = (torch.rand(2, 4, 6, 8, 3, generator=gen) * 2.6 - 1.3)
    # fp32 rounding: a few ulps of the largest value (the two sum the 8 corner terms differently).
    tol = 8 * torch.finfo(torch.float32).eps * volume.abs().max().item()
    err = (trilinear_sample(volume, grid) - trilinear_sample_5d(volume, grid)).abs().max().item()
    assert err <= tol, (err, tol)
    # Several grids at once (the dense-motion network samples 22 of them in one call).
    grids = torch.rand(2, 3, 4, 6, 8, 3, generator=gen) * 2.2 - 1.1
    many = trilinear_sample(volume, grids)
    assert many.shape == (2, 3, 3, 4, 6, 8)
    for k in range(3):
        assert torch.allclose(many[:, :, k], trilinear_sample_5d(volume, grids[:, k]), atol=tol, rtol=0)


def test_trilinear_sampling_on_the_fixture_volume(fixture):
    z, _ = fixture
    f_s, deformation = _t(z["F_f_s"]), _t(z["W_deformation"])
    err = (trilinear_sample(f_s, deformation) - trilinear_sample_5d(f_s, deformation)).abs().max().item()
    assert err <= 2e-5, err  # fp32 rounding of values up to 13.5 (measured 3.8e-6 by the fixture's author)


# --- module-by-module parity (saved inputs in, own output compared) ------------------------------

@torch.no_grad()
def test_motion_extractor_and_pose_maths(fixture, nets):
    z, _ = fixture
    for who in ("source", "driving"):
        got = motion_outputs(nets, _t(z[f"in_{who}_image"]), who)
        for name in [k for k in got if k.startswith("M_")]:
            _check(z[name], got[name], *ISOLATED["M"], name)
        # Post-processing from the saved raw heads, so its own (tighter) tolerance applies.
        raw = [_t(z[f"M_{who}_{n}"]) for n in ("pitch_bins", "yaw_bins", "roll_bins", "t", "exp", "scale", "kp")]
        info = kpm.kp_info(*raw)
        for n in ("pitch", "yaw", "roll"):
            _check(z[f"P_{who}_{n}_deg"], getattr(info, n), *ISOLATED["P_deg"], n)
        _check(z[f"P_{who}_R"], kpm.rotation_matrix(info.pitch, info.yaw, info.roll), *ISOLATED["P"], "R")
        _check(z[f"P_{who}_kp"], info.kp, *ISOLATED["P"], "kp")
        _check(z[f"P_{who}_exp"], info.exp, *ISOLATED["P"], "exp")
        _check(z["x_s" if who == "source" else "x_d"], kpm.posed_keypoints(info), *ISOLATED["P"], "x")


@torch.no_grad()
def test_stitching_and_retargeting(fixture, nets):
    z, _ = fixture
    x_s, x_d = _t(z["x_s"]), _t(z["x_d"])
    _check(z["S_stitching_input"], kpm.stitching_input(x_s, x_d), 0, 0, "S_stitching_input")
    _check(z["S_stitching_delta"], nets.stitching(_t(z["S_stitching_input"])), *ISOLATED["S"], "delta")
    _check(z["x_d_stitched"], kpm.stitch(nets.stitching, x_s, x_d), *ISOLATED["S"], "x_d_stitched")
    _check(z["R_lip_delta"], kpm.retarget(nets.lip, x_s, _t(z["R_lip_ratio"])), *ISOLATED["S"], "lip")
    _check(z["R_eye_delta"], kpm.retarget(nets.eye, x_s, _t(z["R_eye_ratio"])), *ISOLATED["S"], "eye")


@torch.no_grad()
def test_appearance_feature_extractor(fixture, nets):
    z, _ = fixture
    f_s = nets.appearance_feature_extractor(_t(z["in_source_image"]))  # unrounded, vs the fp16-stored value
    _check(z["F_f_s"], f_s, *ISOLATED["F_f_s"], "F_f_s")


@torch.no_grad()
def test_warping_module_both_cases(fixture, nets):
    z, _ = fixture
    warp = nets.warping_module
    f_s = _t(z["F_f_s"])
    _check(z["W_dm_compressed_bn"], warp.dense_motion_network.compressed(f_s), *ISOLATED["W"], "W_dm_compressed_bn")
    # W: the chain's keypoints (all outside the volume); W2: scaled inside it, where heat maps and
    # per-keypoint samples are non-zero and a wrong axis order would show.
    for pre, ks, kd in (("W", "x_s", "x_d_stitched"), ("W2", "W2_kp_source", "W2_kp_driving")):
        out, deformation, occlusion = warp(f_s, _t(z[kd]), _t(z[ks]))
        _check(z[f"{pre}_deformation"], deformation, *ISOLATED["W"], f"{pre}_deformation")
        _check(z[f"{pre}_occlusion_map"], occlusion, *ISOLATED["W"], f"{pre}_occlusion_map")
        _check(z[f"{pre}_out"], out, *ISOLATED["W_out"], f"{pre}_out")


@torch.no_grad()
def test_spade_generator(fixture, nets):
    z, _ = fixture
    image = nets.spade_generator(_t(z["W_out"]))
    assert image.shape == (1, 3, 512, 512)
    _check(z["G_out"], image, *ISOLATED["G_out"], "G_out")


# --- end to end ----------------------------------------------------------------------------------

def test_end_to_end_chain_from_the_two_images(fixture, chain):
    z, _ = fixture
    compared = []
    for name, got in chain.items():
        if name in z:
            _check(z[name], got, *END_TO_END[_group(name)], name)
            compared.append(name)
    must = {"F_f_s", "x_s", "x_d", "x_d_stitched", "R_lip_delta", "R_eye_delta", "W_dm_compressed_bn", "W_deformation",
            "W_occlusion_map", "W_out", "G_out", "P_source_R", "M_driving_kp", "S_stitching_delta"}
    assert must <= set(compared)


# --- checkpoint folders --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def released_dir(tmp_path_factory, nets) -> Path:
    return save_liveportrait(nets, tmp_path_factory.mktemp("lp") / "pretrained_weights" / "liveportrait")


def _partial_copy(src: Path, dst: Path, skip: str) -> Path:
    """dst with links to every released file of src except `skip`."""
    for rel in expected_files():
        if rel != skip:
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            (dst / rel).symlink_to(src / rel)
    return dst


def test_released_layout_loads_strict_with_ddp_prefixes(released_dir, nets):
    bundle = torch.load(released_dir / RETARGETING_FILE, weights_only=True)
    assert set(bundle) == {"retarget_shoulder", "retarget_mouth", "retarget_eye"}
    assert all(k.startswith("module.") for k in bundle["retarget_eye"])
    # The folder above (pretrained_weights) is accepted too.
    loaded = load_liveportrait(released_dir.parent)
    for name, module in nets.modules().items():
        want, got = module.state_dict(), getattr(loaded, name).state_dict()
        assert list(want) == list(got), name
        assert all(torch.equal(want[k], got[k]) for k in want), name


def test_missing_file_names_it_and_says_where_to_get_the_checkpoints(released_dir, tmp_path):
    rel = BASE_FILES["warping_module"]
    with pytest.raises(CheckpointError) as info:
        load_liveportrait(_partial_copy(released_dir, tmp_path / "partial", rel))
    msg = str(info.value)
    assert "warping_module.pth" in msg and "Missing: base_models/warping_module.pth" in msg
    assert "huggingface.co/KwaiVGI/LivePortrait" in msg and "never downloaded" in msg
    with pytest.raises(CheckpointError, match="appearance_feature_extractor.pth"):
        load_liveportrait(tmp_path / "nothing-here")


def test_mismatched_file_names_the_file_and_the_keys(released_dir, tmp_path, nets):
    # A retargeting file whose eye network has the wrong input width.
    d = _partial_copy(released_dir, tmp_path / "bad_eye", RETARGETING_FILE)
    bundle = torch.load(released_dir / RETARGETING_FILE, weights_only=True)
    bundle["retarget_eye"]["module.mlp.0.weight"] = torch.zeros(256, 70)
    (d / RETARGETING_FILE).parent.mkdir(parents=True, exist_ok=True)
    torch.save(bundle, d / RETARGETING_FILE)
    with pytest.raises(CheckpointError) as info:
        load_liveportrait(d)
    msg = str(info.value)
    assert "stitching_retargeting_module.pth" in msg and "mlp.0.weight (256, 70) (expected (256, 66))" in msg
    assert "retarget_eye" in msg
    # A base file holding another network's weights.
    d = _partial_copy(released_dir, tmp_path / "swapped", BASE_FILES["motion_extractor"])
    (d / BASE_FILES["motion_extractor"]).parent.mkdir(parents=True, exist_ok=True)
    torch.save(nets.appearance_feature_extractor.state_dict(), d / BASE_FILES["motion_extractor"])
    with pytest.raises(CheckpointError, match=r"motion_extractor\.pth does not match .*missing keys \(212\)"):
        load_liveportrait(d)
