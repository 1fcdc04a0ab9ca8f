"""One source image animated by one driving image, the way LivePortrait's wrapper chains the
networks (absolute driving pose, with stitching). It is the parity fixture's chain; outputs are
named as in reference.npz so tests can compare them one by one."""

from __future__ import annotations

import torch

from . import keypoints as kpm
from .motion import MOTION_OUTPUTS
from .networks import LivePortraitNets

_FIXTURE_HEAD_NAMES = {"pitch": "pitch_bins", "yaw": "yaw_bins", "roll": "roll_bins"}


def fp16_round(x: torch.Tensor) -> torch.Tensor:
    """The reference hands f_s and W's output over in half precision."""
    return x.half().float()


def motion_outputs(nets: LivePortraitNets, image: torch.Tensor, prefix: str) -> dict[str, torch.Tensor]:
    """M's raw heads, then pose in degrees, R, kp, exp, under the fixture's names."""
    out: dict[str, torch.Tensor] = {}
    raw = nets.motion_extractor(image)
    out[f"M_{prefix}_backbone_feat"] = nets.motion_extractor.backbone(image)
    for name, value in zip(MOTION_OUTPUTS, raw):
        out[f"M_{prefix}_{_FIXTURE_HEAD_NAMES.get(name, name)}"] = value
    info = kpm.kp_info(*raw)
    for name in ("pitch", "yaw", "roll"):
        out[f"P_{prefix}_{name}_deg"] = getattr(info, name)
    out[f"P_{prefix}_R"] = kpm.rotation_matrix(info.pitch, info.yaw, info.roll)
    out[f"P_{prefix}_kp"], out[f"P_{prefix}_exp"] = info.kp, info.exp
    out["x_s" if prefix == "source" else "x_d"] = kpm.posed_keypoints(info)
    return out


@torch.no_grad()
def reference_chain(nets: LivePortraitNets, source: torch.Tensor, driving: torch.Tensor,
                    lip_ratio: torch.Tensor | None = None, eye_ratio: torch.Tensor | None = None,
                    w2_scale: float | None = 0.2, round_fp16: bool = True) -> dict[str, torch.Tensor]:
    """source, driving (B, 3, 256, 256) RGB in [0, 1] -> every intermediate, fixture-named.
    w2_scale: also run the warping module on keypoints scaled into the volume (the fixture's W2)."""
    hand = fp16_round if round_fp16 else (lambda x: x)
    out: dict[str, torch.Tensor] = {"F_f_s": hand(nets.appearance_feature_extractor(source))}
    out.update(motion_outputs(nets, source, "source"))
    out.update(motion_outputs(nets, driving, "driving"))
    x_s, x_d = out["x_s"], out["x_d"]
    out["S_stitching_input"] = kpm.stitching_input(x_s, x_d)
    out["S_stitching_delta"] = nets.stitching(out["S_stitching_input"])
    out["x_d_stitched"] = kpm.apply_stitching(x_d, out["S_stitching_delta"])
    if lip_ratio is not None:
        out["R_lip_delta"] = kpm.retarget(nets.lip, x_s, lip_ratio)
    if eye_ratio is not None:
        out["R_eye_delta"] = kpm.retarget(nets.eye, x_s, eye_ratio)
    warp = nets.warping_module
    out["W_dm_compressed_bn"] = warp.dense_motion_network.compressed(out["F_f_s"])
    w_out, out["W_deformation"], out["W_occlusion_map"] = warp(out["F_f_s"], out["x_d_stitched"], x_s)
    out["W_out"] = hand(w_out)
    if w2_scale is not None:
        w2_out, out["W2_deformation"], out["W2_occlusion_map"] = warp(
            out["F_f_s"], w2_scale * out["x_d_stitched"], w2_scale * x_s)
        out["W2_out"] = hand(w2_out)
    out["G_out"] = nets.spade_generator(out["W_out"])
    return out
