"""Keypoint maths around the networks: head pose from the bins, the keypoint transform,
stitching and eye/lip retargeting (LivePortrait's camera.py and wrapper conventions)."""

from __future__ import annotations

from dataclasses import dataclass
import math

import torch

from .config import POSE_BINS


@dataclass
class KpInfo:
    """One image's motion: angles in degrees (B, 1), t (B, 3), exp and kp (B, K, 3), scale (B, 1)."""

    pitch: torch.Tensor
    yaw: torch.Tensor
    roll: torch.Tensor
    t: torch.Tensor
    exp: torch.Tensor
    scale: torch.Tensor
    kp: torch.Tensor


def bins_to_degrees(bins: torch.Tensor) -> torch.Tensor:
    """Softmax expectation over 66 bins of 3 degrees, centred: range +-97.5 degrees. (B, 66) -> (B,)."""
    idx = torch.arange(POSE_BINS, dtype=bins.dtype, device=bins.device)
    return (torch.softmax(bins, dim=1) * idx).sum(dim=1) * 3 - 97.5


def kp_info(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor, t: torch.Tensor, exp: torch.Tensor,
            scale: torch.Tensor, kp: torch.Tensor) -> KpInfo:
    """Raw motion-extractor heads (MOTION_OUTPUTS order) -> degrees and keypoint-major arrays."""
    b = kp.shape[0]
    return KpInfo(bins_to_degrees(pitch)[:, None], bins_to_degrees(yaw)[:, None], bins_to_degrees(roll)[:, None],
                  t, exp.reshape(b, -1, 3), scale, kp.reshape(b, -1, 3))


def rotation_matrix(pitch: torch.Tensor, yaw: torch.Tensor, roll: torch.Tensor) -> torch.Tensor:
    """Degrees (B, 1) -> (B, 3, 3) = (Rz(roll) Ry(yaw) Rx(pitch))^T, for row vectors: kp @ R."""
    x, y, z = (a.reshape(-1, 1) / 180 * math.pi for a in (pitch, yaw, roll))
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rx = torch.cat([one, zero, zero, zero, x.cos(), -x.sin(), zero, x.sin(), x.cos()], dim=1).reshape(-1, 3, 3)
    ry = torch.cat([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], dim=1).reshape(-1, 3, 3)
    rz = torch.cat([z.cos(), -z.sin(), zero, z.sin(), z.cos(), zero, zero, zero, one], dim=1).reshape(-1, 3, 3)
    return (rz @ ry @ rx).transpose(1, 2)


def transform_keypoints(kp: torch.Tensor, rot: torch.Tensor, exp: torch.Tensor, scale: torch.Tensor,
                        t: torch.Tensor) -> torch.Tensor:
    """scale * (kp @ R + exp), then + t on x and y only (t_z is dropped). (B, K, 3)."""
    x = (kp @ rot + exp) * scale[..., None]
    return torch.cat([x[..., :2] + t[:, None, :2], x[..., 2:]], dim=-1)


def posed_keypoints(info: KpInfo) -> torch.Tensor:
    """The image's own keypoints x = transform(kp, R(pose), exp, scale, t)."""
    return transform_keypoints(info.kp, rotation_matrix(info.pitch, info.yaw, info.roll), info.exp, info.scale,
                               info.t)


def stitching_input(kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
    """Source first, then driving, each flattened: (B, 2*3K)."""
    return torch.cat([kp_source.flatten(1), kp_driving.flatten(1)], dim=1)


def apply_stitching(kp_driving: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """Add the MLP's per-keypoint offsets (first 3K values) and its shared (tx, ty) shift (next 2)
    to the driving keypoints; returns a new tensor."""
    b, k = kp_driving.shape[:2]
    x = kp_driving + delta[:, :3 * k].reshape(b, k, 3)
    shift = delta[:, 3 * k:3 * k + 2].reshape(b, 1, 2)
    return torch.cat([x[..., :2] + shift, x[..., 2:]], dim=-1)


def stitch(stitching_mlp: torch.nn.Module, kp_source: torch.Tensor, kp_driving: torch.Tensor) -> torch.Tensor:
    return apply_stitching(kp_driving, stitching_mlp(stitching_input(kp_source, kp_driving)))


def retarget(mlp: torch.nn.Module, kp_source: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Eye or lip retargeting: [x_s flat, ratios] -> per-keypoint delta (B, K, 3), to be added to
    the driving keypoints by the caller."""
    b, k = kp_source.shape[:2]
    return mlp(torch.cat([kp_source.reshape(b, -1), ratio], dim=1)).reshape(b, k, 3)


def relative_driving_keypoints(source: KpInfo, driver: KpInfo, driver_neutral: KpInfo) -> torch.Tensor:
    """LivePortrait's relative motion: the source keeps its own pose, expression, scale and
    position and receives the driver's change since its neutral frame. (B, K, 3); t_z dropped."""
    r_s = rotation_matrix(source.pitch, source.yaw, source.roll)
    r_d = rotation_matrix(driver.pitch, driver.yaw, driver.roll)
    r_0 = rotation_matrix(driver_neutral.pitch, driver_neutral.yaw, driver_neutral.roll)
    rot = r_d @ r_0.transpose(1, 2) @ r_s
    exp = source.exp + (driver.exp - driver_neutral.exp)
    scale = source.scale * (driver.scale / driver_neutral.scale)
    t = source.t + (driver.t - driver_neutral.t)
    return transform_keypoints(source.kp, rot, exp, scale, t)
