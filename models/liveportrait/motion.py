"""M: motion extractor, a ConvNeXt-V2 backbone with seven linear heads (pose bins, translation,
expression, scale, canonical keypoints)."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .config import MotionConfig
from .layers import ChannelsFirstLayerNorm


class GlobalResponseNorm(nn.Module):
    """ConvNeXt-V2's GRN on an NHWC tensor: channels compete through their spatial L2 energy."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, 1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        energy = torch.sqrt((x * x).sum(dim=(1, 2), keepdim=True))
        share = energy / (energy.mean(dim=-1, keepdim=True) + 1e-6)
        return self.gamma * (x * share) + self.beta + x


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.grn = GlobalResponseNorm(4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.grn(F.gelu(self.pwconv1(self.norm(y)))))
        return x + y.permute(0, 3, 1, 2)


class ConvNeXtV2(nn.Module):
    def __init__(self, cfg: MotionConfig) -> None:
        super().__init__()
        d = cfg.dims
        stem = nn.Sequential(nn.Conv2d(cfg.in_chans, d[0], 4, stride=4), ChannelsFirstLayerNorm(d[0]))
        self.downsample_layers = nn.ModuleList(
            [stem] + [nn.Sequential(ChannelsFirstLayerNorm(d[i - 1]), nn.Conv2d(d[i - 1], d[i], 2, stride=2))
                      for i in range(1, len(d))])
        self.stages = nn.ModuleList(nn.Sequential(*(ConvNeXtBlock(dim) for _ in range(depth)))
                                    for dim, depth in zip(d, cfg.depths))
        self.norm = nn.LayerNorm(d[-1], eps=1e-6)
        k, bins = cfg.num_kp, cfg.num_bins
        self.fc_kp = nn.Linear(d[-1], 3 * k)
        self.fc_scale = nn.Linear(d[-1], 1)
        self.fc_pitch = nn.Linear(d[-1], bins)
        self.fc_yaw = nn.Linear(d[-1], bins)
        self.fc_roll = nn.Linear(d[-1], bins)
        self.fc_t = nn.Linear(d[-1], 3)
        self.fc_exp = nn.Linear(d[-1], 3 * k)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for down, stage in zip(self.downsample_layers, self.stages):
            x = stage(down(x))
        return self.norm(x.mean(dim=(-2, -1)))


# Order of the raw head outputs returned by MotionExtractor.forward (and by its ONNX graph).
MOTION_OUTPUTS = ("pitch", "yaw", "roll", "t", "exp", "scale", "kp")


class MotionExtractor(nn.Module):
    """(B, 3, 256, 256) RGB in [0, 1] -> raw heads, in MOTION_OUTPUTS order: pitch/yaw/roll bins
    (B, 66), t (B, 3), exp (B, 63), scale (B, 1), kp (B, 63). keypoints.kp_info turns them into
    degrees and (B, 21, 3) arrays."""

    def __init__(self, cfg: MotionConfig = MotionConfig()) -> None:
        super().__init__()
        self.detector = ConvNeXtV2(cfg)

    def backbone(self, image: torch.Tensor) -> torch.Tensor:
        return self.detector.features(image)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f = self.backbone(image)
        d = self.detector
        return (d.fc_pitch(f), d.fc_yaw(f), d.fc_roll(f), d.fc_t(f), d.fc_exp(f), d.fc_scale(f), d.fc_kp(f))
