"""LapSRN (Lai et al., CVPR 2017): progressive x2 levels, each predicting a residual that is
added to the deconvolution-upsampled image of the previous level."""

from __future__ import annotations

import math

import torch
from pydantic import Field, field_validator
from torch import nn

from srcore.registry import StrictModel

from .blocks import normal_init_


class LapSRNConfig(StrictModel):
    scale: int = Field(4, description="2, 4 or 8: log2(scale) x2 levels.")
    depth: int = Field(10, ge=1, description="Conv layers per level's feature branch (paper: 10).")
    channels: int = Field(64, ge=1)

    @field_validator("scale")
    @classmethod
    def _power_of_two(cls, v: int) -> int:
        if v < 2 or v & (v - 1):
            raise ValueError("LapSRN upsamples in x2 levels: scale must be 2, 4 or 8")
        return v


def bilinear_kernel(size: int) -> torch.Tensor:
    """The (size x size) bilinear upsampling filter used to initialise the image deconvolutions."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float64)
    filt = 1 - (og - center).abs() / factor
    return (filt[:, None] * filt[None, :]).float()


class LapLevel(nn.Module):
    """features: depth x [Conv3x3 + LReLU(0.2)] + Deconv4x4 s2 + LReLU; residual: Conv3x3 C->1;
    image_up: Deconv4x4 s2 1->1 (bilinear init). All without bias."""

    def __init__(self, channels: int, depth: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(depth):
            layers += [nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        layers += [nn.ConvTranspose2d(channels, channels, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
        self.features = nn.Sequential(*layers)
        self.residual = nn.Conv2d(channels, 1, 3, 1, 1, bias=False)
        self.image_up = nn.ConvTranspose2d(1, 1, 4, 2, 1, bias=False)

    def forward(self, feat: torch.Tensor, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.features(feat)
        return feat, self.image_up(img) + self.residual(feat)


class LapSRN(nn.Module):
    """conv_input Conv3x3 1->C + LReLU, then log2(scale) LapLevels; forward returns the last level."""

    def __init__(self, cfg: LapSRNConfig) -> None:
        super().__init__()
        self.conv_input = nn.Conv2d(1, cfg.channels, 3, 1, 1, bias=False)
        self.relu = nn.LeakyReLU(0.2, inplace=True)
        self.levels = nn.ModuleList(LapLevel(cfg.channels, cfg.depth) for _ in range(int(math.log2(cfg.scale))))
        normal_init_(self)
        for level in self.levels:
            level.image_up.weight.data.copy_(bilinear_kernel(4).view(1, 1, 4, 4))

    def forward_all(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The image of every level (x2, x4, ...), each supervised against the HR downscaled to it."""
        feat, img = self.relu(self.conv_input(x)), x
        outs = []
        for level in self.levels:
            feat, img = level(feat, img)
            outs.append(img)
        return outs, outs[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[1]


def build_lapsrn(cfg: LapSRNConfig) -> LapSRN:
    """LapSRN on the LR Y channel."""
    return LapSRN(cfg)
