"""ESPCN (Shi et al., CVPR 2016): convs at LR resolution and a sub-pixel (pixel shuffle) output."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import normal_init_


class ESPCNConfig(StrictModel):
    scale: int = Field(3, description="Upscaling factor r (last conv has r^2 channels).")
    n1: int = Field(64, ge=1)
    n2: int = Field(32, ge=1)


class ESPCN(nn.Module):
    """feature: Conv5x5 1->64 + tanh, Conv3x3 64->32 + tanh; subpixel: Conv3x3 32->r^2 + PixelShuffle(r)."""

    def __init__(self, cfg: ESPCNConfig) -> None:
        super().__init__()
        r = cfg.scale
        self.feature = nn.Sequential(
            nn.Conv2d(1, cfg.n1, 5, padding=2), nn.Tanh(), nn.Conv2d(cfg.n1, cfg.n2, 3, padding=1), nn.Tanh()
        )
        self.subpixel = nn.Sequential(nn.Conv2d(cfg.n2, r * r, 3, padding=1), nn.PixelShuffle(r))
        normal_init_(self.feature)
        normal_init_(self.subpixel, std=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.subpixel(self.feature(x))


def build_espcn(cfg: ESPCNConfig) -> ESPCN:
    """ESPCN on the LR Y channel."""
    return ESPCN(cfg)
