"""Small pieces several methods of this plugin share (init schemes, sub-pixel upsampler, mean shift)."""

from __future__ import annotations

import math

import torch
from torch import nn


def normal_init_(module: nn.Module, std: float | None = None) -> None:
    """Gaussian weights, zero biases on every (transposed) conv of ``module``.

    ``std=None`` gives He init as the classic papers write it: N(0, sqrt(2 / (k*k*out_channels))).
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            if std is None:
                k = m.kernel_size[0] * m.kernel_size[1]
                out_ch = m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (k * out_ch)))
            else:
                nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def conv3x3(in_ch: int, out_ch: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, 3, 1, 1, bias=bias)


class Upsampler(nn.Sequential):
    """EDSR-style sub-pixel upsampler (RDN's UPNet, RCAN's tail).

    x2/x3: Conv3x3 C -> C*r^2 + PixelShuffle(r); x4 (and other powers of two): log2(r) times
    [Conv3x3 C -> 4C + PixelShuffle(2)].
    """

    def __init__(self, scale: int, channels: int) -> None:
        layers: list[nn.Module] = []
        if scale & (scale - 1) == 0 and scale > 1:
            for _ in range(int(math.log2(scale))):
                layers += [conv3x3(channels, 4 * channels), nn.PixelShuffle(2)]
        elif scale == 3:
            layers += [conv3x3(channels, 9 * channels), nn.PixelShuffle(3)]
        else:
            raise ValueError(f"sub-pixel upsampler supports scales 2^n and 3, got {scale}")
        super().__init__(*layers)


class MeanShift(nn.Module):
    """Adds ``sign * mean * rgb_range`` per channel (EDSR/RCAN's fixed, non-learned layer)."""

    mean: torch.Tensor

    def __init__(self, mean: tuple[float, float, float], rgb_range: float, sign: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * rgb_range * sign, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mean


DIV2K_MEAN = (0.4488, 0.4371, 0.4040)
"""Mean RGB of DIV2K, the training set of RDN/RCAN/WDSR (EDSR's constant)."""


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
