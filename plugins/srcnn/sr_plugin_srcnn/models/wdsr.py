"""WDSR-A and WDSR-B (Yu et al., "Wide Activation for Efficient and Accurate Image
Super-Resolution", 2018): wide activation before ReLU, weight normalisation, no conv after the
upsampler, and a global 5x5 skip branch with its own pixel shuffle. The seed collection has no
WDSR code; this follows the paper (and the authors' NTIRE 2018 code for unstated details).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from srcore.registry import StrictModel

from .blocks import DIV2K_MEAN


class WDSRConfig(StrictModel):
    scale: int = Field(2, description="2, 3 or 4.")
    n_resblocks: int = Field(16, ge=1)
    n_feats: int = Field(32, ge=1, description="Width of the identity path.")
    expansion: int | None = Field(None, description="Activation width ratio (default: A 4, B 6).")
    low_rank: float = Field(0.8, gt=0, description="WDSR-B: linear low-rank 1x1 conv width / n_feats.")
    res_scale: float = 1.0
    n_colors: int = 3


def _wn_conv(in_ch: int, out_ch: int, k: int) -> nn.Module:
    return weight_norm(nn.Conv2d(in_ch, out_ch, k, padding=k // 2))


class BlockA(nn.Module):
    """Conv3x3 C -> rC, ReLU, Conv3x3 rC -> C (weight-normalised), residual."""

    def __init__(self, c: int, expansion: int, res_scale: float) -> None:
        super().__init__()
        self.res_scale = res_scale
        self.body = nn.Sequential(_wn_conv(c, c * expansion, 3), nn.ReLU(inplace=True), _wn_conv(c * expansion, c, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class BlockB(nn.Module):
    """Conv1x1 C -> rC, ReLU, linear low-rank Conv1x1 rC -> 0.8C, Conv3x3 0.8C -> C, residual."""

    def __init__(self, c: int, expansion: int, low_rank: float, res_scale: float) -> None:
        super().__init__()
        self.res_scale = res_scale
        mid = int(c * low_rank)
        self.body = nn.Sequential(
            _wn_conv(c, c * expansion, 1), nn.ReLU(inplace=True), _wn_conv(c * expansion, mid, 1), _wn_conv(mid, c, 3)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) * self.res_scale


class WDSR(nn.Module):
    """(x - mean)/0.5 -> head Conv3x3 -> blocks -> tail Conv3x3 -> 3r^2 + PS(r), plus
    skip Conv5x5 3 -> 3r^2 + PS(r); result * 0.5 + mean. The authors' normalisation in [0,1] units."""

    mean: torch.Tensor

    def __init__(self, cfg: WDSRConfig, kind: Literal["A", "B"]) -> None:
        super().__init__()
        c, r, n = cfg.n_feats, cfg.scale, cfg.n_colors
        exp = cfg.expansion or (4 if kind == "A" else 6)
        self.register_buffer("mean", torch.tensor(DIV2K_MEAN).view(1, 3, 1, 1), persistent=False)
        self.head = nn.Sequential(_wn_conv(n, c, 3))
        if kind == "A":
            blocks = [BlockA(c, exp, cfg.res_scale) for _ in range(cfg.n_resblocks)]
        else:
            blocks = [BlockB(c, exp, cfg.low_rank, cfg.res_scale) for _ in range(cfg.n_resblocks)]
        self.body = nn.Sequential(*blocks)
        self.tail = nn.Sequential(_wn_conv(c, n * r * r, 3), nn.PixelShuffle(r))
        self.skip = nn.Sequential(_wn_conv(n, n * r * r, 5), nn.PixelShuffle(r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / 0.5
        out = self.tail(self.body(self.head(x))) + self.skip(x)
        return out * 0.5 + self.mean


def build_wdsr_a(cfg: WDSRConfig) -> WDSR:
    """WDSR-A: wide 3x3 residual blocks."""
    return WDSR(cfg, "A")


def build_wdsr_b(cfg: WDSRConfig) -> WDSR:
    """WDSR-B: wider 1x1 activation with a linear low-rank 1x1 conv."""
    return WDSR(cfg, "B")
