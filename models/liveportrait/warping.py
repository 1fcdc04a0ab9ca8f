"""W: the warping module. A dense-motion network turns the 21 source/driving keypoint pairs into
a 3-D deformation field and an occlusion map; the source feature volume is sampled along that
field and projected back to a 2-D feature map for the generator."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .config import DenseMotionConfig, WarpingConfig
from .grid_sample import trilinear_sample
from .layers import ConvNormRelu2d, ConvNormRelu3d


def identity_grid(d: int, h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(D, H, W, 3) in (x, y, z) order, corner-aligned spacing 2i/(n-1) - 1. It is sampled with
    align_corners=False, so it is not an exact identity; that half-voxel shift is part of the
    trained model and is kept."""
    def axis(n: int) -> torch.Tensor:
        return 2.0 * (torch.arange(n, dtype=dtype, device=device) / (n - 1)) - 1.0

    z = axis(d).reshape(d, 1, 1).expand(d, h, w)
    y = axis(h).reshape(1, h, 1).expand(d, h, w)
    x = axis(w).reshape(1, 1, w).expand(d, h, w)
    return torch.stack([x, y, z], dim=-1)


class Hourglass3d(nn.Module):
    """U-Net over (D, H, W) that halves H and W at each level and keeps D."""

    def __init__(self, in_features: int, cfg: DenseMotionConfig) -> None:
        super().__init__()
        be, mf, n = cfg.block_expansion, cfg.max_features, cfg.num_blocks
        self.encoder = nn.Module()
        self.encoder.down_blocks = nn.ModuleList(
            ConvNormRelu3d(in_features if i == 0 else min(mf, be * 2 ** i), min(mf, be * 2 ** (i + 1)), pool=True)
            for i in range(n))
        self.decoder = nn.Module()
        ups = []
        for i in reversed(range(n)):
            cin = (1 if i == n - 1 else 2) * min(mf, be * 2 ** (i + 1))
            ups.append(ConvNormRelu3d(cin, min(mf, be * 2 ** i), upsample=True))
        self.decoder.up_blocks = nn.ModuleList(ups)
        self.out_filters = be + in_features
        self.decoder.conv = nn.Conv3d(self.out_filters, self.out_filters, 3, padding=1)
        self.decoder.norm = nn.BatchNorm3d(self.out_filters, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [x]
        for block in self.encoder.down_blocks:
            skips.append(block(skips[-1]))
        out = skips.pop()
        for block in self.decoder.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return F.relu(self.decoder.norm(self.decoder.conv(out)))


class DenseMotionNetwork(nn.Module):
    def __init__(self, num_kp: int, feature_channel: int, cfg: DenseMotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.num_kp = num_kp
        self.hourglass = Hourglass3d((num_kp + 1) * (cfg.compress + 1), cfg)
        self.mask = nn.Conv3d(self.hourglass.out_filters, num_kp + 1, 7, padding=3)
        self.compress = nn.Conv3d(feature_channel, cfg.compress, 1)
        self.norm = nn.BatchNorm3d(cfg.compress, affine=True)
        self.occlusion = nn.Conv2d(self.hourglass.out_filters * cfg.reshape_depth, 1, 7, padding=3)

    def compressed(self, feature: torch.Tensor) -> torch.Tensor:
        """Compressed features after BatchNorm, before ReLU (what the fixture saves)."""
        return self.norm(self.compress(feature))

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> deformation (B, D, H, W, 3), occlusion map (B, 1, H, W)."""
        b, _, d, h, w = feature.shape
        k = self.num_kp
        phi = F.relu(self.compressed(feature))
        grid = identity_grid(d, h, w, feature.dtype, feature.device)  # (D, H, W, 3)
        g = grid.reshape(1, 1, d, h, w, 3)
        kd = kp_driving.reshape(b, k, 1, 1, 1, 3)
        ks = kp_source.reshape(b, k, 1, 1, 1, 3)
        # Backward motion per keypoint: a pure translation taking driving points to source points;
        # entry 0 is the identity (the background).
        motions = torch.cat([g.expand(b, 1, d, h, w, 3), g - kd + ks], dim=1)  # (B, K+1, D, H, W, 3)
        deformed = trilinear_sample(phi, motions).transpose(1, 2)  # (B, K+1, C', D, H, W)
        var = self.cfg.kp_variance
        heat = torch.exp(-0.5 * ((g - kd) ** 2).sum(-1) / var) - torch.exp(-0.5 * ((g - ks) ** 2).sum(-1) / var)
        heat = torch.cat([torch.zeros_like(heat[:, :1]), heat], dim=1).unsqueeze(2)  # (B, K+1, 1, D, H, W)
        x = torch.cat([heat, deformed], dim=2).reshape(b, -1, d, h, w)
        pred = self.hourglass(x)
        mask = torch.softmax(self.mask(pred), dim=1)  # (B, K+1, D, H, W)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        occlusion = torch.sigmoid(self.occlusion(pred.reshape(b, -1, h, w)))
        return deformation, occlusion


class WarpingNetwork(nn.Module):
    """(f_s (B, 32, 16, 64, 64), kp_driving (B, 21, 3), kp_source (B, 21, 3)) ->
    (out (B, 256, 64, 64), deformation (B, 16, 64, 64, 3), occlusion (B, 1, 64, 64))."""

    def __init__(self, cfg: WarpingConfig = WarpingConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.dense_motion_network = DenseMotionNetwork(cfg.num_kp, cfg.reshape_channel, cfg.dense_motion)
        channels = min(cfg.max_features, cfg.block_expansion * 2 ** cfg.num_down_blocks)
        depth = cfg.dense_motion.reshape_depth
        self.third = ConvNormRelu2d(cfg.reshape_channel * depth, channels, leaky=True)
        self.fourth = nn.Conv2d(channels, channels, 1)

    def forward(self, feature: torch.Tensor, kp_driving: torch.Tensor, kp_source: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        deformation, occlusion = self.dense_motion_network(feature, kp_driving, kp_source)
        b, c, d, h, w = feature.shape
        warped = trilinear_sample(feature, deformation).reshape(b, c * d, h, w)
        out = self.fourth(self.third(warped))
        if self.cfg.estimate_occlusion_map:
            out = out * occlusion
        return out, deformation, occlusion
