"""RCAN (Zhang et al., ECCV 2018): residual-in-residual groups of channel-attention blocks.

Key names follow EDSR-PyTorch's rcan.py (``head.0``, ``body.g.body.b.body.{0,2,3}``,
``tail.0``/``tail.1``), the code base of the authors' released weights.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import DIV2K_MEAN, MeanShift, Upsampler, conv3x3


class RCANConfig(StrictModel):
    scale: int = Field(4, description="2, 3 or 4.")
    n_resgroups: int = Field(10, ge=1)
    n_resblocks: int = Field(20, ge=1)
    n_feats: int = Field(64, ge=1)
    reduction: int = Field(16, ge=1, description="Channel-attention squeeze ratio r.")
    rgb_range: float = Field(255.0, description="Internal pixel range (EDSR code base: 255).")
    n_colors: int = 3


class CALayer(nn.Module):
    """Channel attention: GAP -> Conv1x1 C->C/r -> ReLU -> Conv1x1 -> sigmoid -> rescale."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    """Conv3x3 -> ReLU -> Conv3x3 -> channel attention, plus identity."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(channels, channels),
            nn.ReLU(inplace=True),
            conv3x3(channels, channels),
            CALayer(channels, reduction),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class ResidualGroup(nn.Module):
    """n_resblocks RCABs and a Conv3x3, with a group-level skip connection."""

    def __init__(self, channels: int, reduction: int, n_resblocks: int) -> None:
        super().__init__()
        self.body = nn.Sequential(*[RCAB(channels, reduction) for _ in range(n_resblocks)], conv3x3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class RCAN(nn.Module):
    """sub_mean -> head -> groups + Conv3x3 (long skip) -> Upsampler -> Conv3x3 -> add_mean."""

    def __init__(self, cfg: RCANConfig) -> None:
        super().__init__()
        f = cfg.n_feats
        self.rgb_range = cfg.rgb_range
        self.sub_mean = MeanShift(DIV2K_MEAN, cfg.rgb_range, -1)
        self.add_mean = MeanShift(DIV2K_MEAN, cfg.rgb_range, 1)
        self.head = nn.Sequential(conv3x3(cfg.n_colors, f))
        self.body = nn.Sequential(
            *[ResidualGroup(f, cfg.reduction, cfg.n_resblocks) for _ in range(cfg.n_resgroups)], conv3x3(f, f)
        )
        self.tail = nn.Sequential(Upsampler(cfg.scale, f), conv3x3(f, cfg.n_colors))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.sub_mean(x * self.rgb_range))
        x = self.body(x) + x
        return self.add_mean(self.tail(x)) / self.rgb_range


def build_rcan(cfg: RCANConfig) -> RCAN:
    """RCAN on RGB LR input."""
    return RCAN(cfg)
