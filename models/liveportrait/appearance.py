"""F: appearance feature extractor. A 2-D encoder whose output channels are read as a small
3-D feature volume, refined by 3-D residual blocks."""

from __future__ import annotations

import torch
from torch import nn

from .config import AppearanceConfig
from .layers import ConvNormRelu2d, ResBlock3d


class AppearanceFeatureExtractor(nn.Module):
    """(B, 3, 256, 256) RGB in [0, 1] -> f_s (B, 32, 16, 64, 64)."""

    def __init__(self, cfg: AppearanceConfig = AppearanceConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.first = ConvNormRelu2d(cfg.image_channel, cfg.block_expansion)
        blocks = []
        for i in range(cfg.num_down_blocks):
            cin = min(cfg.max_features, cfg.block_expansion * 2 ** i)
            cout = min(cfg.max_features, cfg.block_expansion * 2 ** (i + 1))
            blocks.append(ConvNormRelu2d(cin, cout, pool=True))
        self.down_blocks = nn.ModuleList(blocks)
        self.second = nn.Conv2d(cout, cfg.max_features, 1)
        self.resblocks_3d = nn.Sequential()
        for i in range(cfg.num_resblocks):
            # The released names ("3dr0"...) are not valid Python identifiers, hence add_module.
            self.resblocks_3d.add_module(f"3dr{i}", ResBlock3d(cfg.reshape_channel))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.first(image)
        for block in self.down_blocks:
            x = block(x)
        x = self.second(x)
        b, _, h, w = x.shape
        # 2-D channel c*depth + d becomes volume channel c at depth d.
        x = x.reshape(b, self.cfg.reshape_channel, self.cfg.reshape_depth, h, w)
        return self.resblocks_3d(x)
