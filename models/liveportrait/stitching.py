"""S and R: the stitching and eye/lip retargeting MLPs (Linear/ReLU stacks)."""

from __future__ import annotations

import torch
from torch import nn

from .config import MlpConfig


class RetargetingMlp(nn.Module):
    def __init__(self, cfg: MlpConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        sizes = (cfg.input_size, *cfg.hidden_sizes)
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        layers.append(nn.Linear(sizes[-1], cfg.output_size))
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)
