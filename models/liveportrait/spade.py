"""G: the SPADE generator. Decodes the warped 2-D feature map to a 512x512 RGB image; every
normalisation is modulated by that same feature map (the "segmentation" input of SPADE)."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .config import SpadeConfig
from .layers import SpectralNormConv2d

_HIDDEN = 128


class Spade(nn.Module):
    """Instance norm (no affine) modulated per pixel by gamma/beta predicted from `seg`."""

    def __init__(self, channels: int, seg_channels: int) -> None:
        super().__init__()
        self.mlp_shared = nn.Sequential(nn.Conv2d(seg_channels, _HIDDEN, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(_HIDDEN, channels, 3, padding=1)
        self.mlp_beta = nn.Conv2d(_HIDDEN, channels, 3, padding=1)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        normalized = F.instance_norm(x, eps=1e-5)
        if seg.shape[-2:] != x.shape[-2:]:
            seg = F.interpolate(seg, size=x.shape[-2:], mode="nearest")
        a = self.mlp_shared(seg)
        return normalized * (1 + self.mlp_gamma(a)) + self.mlp_beta(a)


class SpadeResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, seg_channels: int) -> None:
        super().__init__()
        middle = min(cin, cout)
        self.learned_shortcut = cin != cout
        self.conv_0 = SpectralNormConv2d(cin, middle, 3)
        self.conv_1 = SpectralNormConv2d(middle, cout, 3)
        self.norm_0 = Spade(cin, seg_channels)
        self.norm_1 = Spade(middle, seg_channels)
        if self.learned_shortcut:
            self.conv_s = SpectralNormConv2d(cin, cout, 1, bias=False)
            self.norm_s = Spade(cin, seg_channels)

    def forward(self, x: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
        shortcut = self.conv_s(self.norm_s(x, seg)) if self.learned_shortcut else x
        dx = self.conv_0(F.leaky_relu(self.norm_0(x, seg), 0.2))
        dx = self.conv_1(F.leaky_relu(self.norm_1(dx, seg), 0.2))
        return shortcut + dx


class SpadeGenerator(nn.Module):
    """(B, 256, 64, 64) warped features -> (B, 3, 512, 512) RGB in (0, 1)."""

    def __init__(self, cfg: SpadeConfig = SpadeConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        c = min(cfg.max_features, cfg.block_expansion * 2 ** cfg.num_down_blocks)  # 256
        self.fc = nn.Conv2d(c, 2 * c, 3, padding=1)
        for i in range(cfg.num_middle_blocks):
            self.add_module(f"G_middle_{i}", SpadeResBlock(2 * c, 2 * c, c))
        self.up_0 = SpadeResBlock(2 * c, c, c)
        self.up_1 = SpadeResBlock(c, cfg.out_channels, c)
        self.conv_img = nn.Sequential(nn.Conv2d(cfg.out_channels, 3 * cfg.upscale ** 2, 3, padding=1),
                                      nn.PixelShuffle(cfg.upscale))

    def forward(self, feature: torch.Tensor) -> torch.Tensor:
        x = self.fc(feature)
        for i in range(self.cfg.num_middle_blocks):
            x = getattr(self, f"G_middle_{i}")(x, feature)
        x = self.up_0(F.interpolate(x, scale_factor=2.0, mode="nearest"), feature)
        x = self.up_1(F.interpolate(x, scale_factor=2.0, mode="nearest"), feature)
        return torch.sigmoid(self.conv_img(F.leaky_relu(x, 0.2)))
