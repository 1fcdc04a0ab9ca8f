"""Small building blocks shared by LivePortrait's networks. Attribute names follow the released
state_dicts, so they are part of the checkpoint format."""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F


class ConvNormRelu2d(nn.Module):
    """conv -> BatchNorm -> ReLU (or LeakyReLU 0.01), optionally followed by 2x2 average pooling."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, pool: bool = False, leaky: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
        self.norm = nn.BatchNorm2d(cout, affine=True)
        self.pool = pool
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        x = F.leaky_relu(x) if self.leaky else F.relu(x)
        return F.avg_pool2d(x, 2) if self.pool else x


class ConvNormRelu3d(nn.Module):
    """3x3x3 conv -> BatchNorm3d -> ReLU, with an optional (1,2,2) average pool after it or a (1,2,2)
    nearest upsample before it: the hourglass never changes the depth axis."""

    def __init__(self, cin: int, cout: int, pool: bool = False, upsample: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, 3, padding=1)
        self.norm = nn.BatchNorm3d(cout, affine=True)
        self.pool = pool
        self.upsample = upsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest")
        x = F.relu(self.norm(self.conv(x)))
        return F.avg_pool3d(x, (1, 2, 2)) if self.pool else x


class ResBlock3d(nn.Module):
    """Pre-activation residual block: x + conv2(relu(bn2(conv1(relu(bn1(x))))))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv3d(channels, channels, 3, padding=1)
        self.norm1 = nn.BatchNorm3d(channels, affine=True)
        self.norm2 = nn.BatchNorm3d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(F.relu(self.norm1(x)))
        y = self.conv2(F.relu(self.norm2(y)))
        return x + y


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over dim 1 of an NCHW tensor (biased variance), written out so that it
    exports as plain reductions and needs no transpose."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class SpectralNormConv2d(nn.Module):
    """A conv whose weight is `weight_orig / sigma`, sigma = u . (W v) from the stored vectors.

    This is what torch's `spectral_norm` computes in eval mode (no power iteration), with the same
    state_dict entries (`weight_orig`, `weight_u`, `weight_v`), so released files load as they are.
    """

    def __init__(self, cin: int, cout: int, kernel: int, bias: bool = True) -> None:
        super().__init__()
        self.padding = kernel // 2
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.weight_orig = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        self.register_buffer("weight_u", torch.zeros(cout))
        self.register_buffer("weight_v", torch.zeros(cin * kernel * kernel))
        nn.init.kaiming_uniform_(self.weight_orig, a=5 ** 0.5)

    def effective_weight(self) -> torch.Tensor:
        w = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(w.reshape(w.shape[0], -1), self.weight_v))
        return w / sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.effective_weight(), self.bias, padding=self.padding)
