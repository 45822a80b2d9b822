"""RDN (Zhang et al., CVPR 2018): residual dense blocks with local and global feature fusion.

Key names follow the EDSR-PyTorch RDN (``SFENet1``, ``RDBs.i.convs.c.conv.0``, ``GFF``,
``UPNet``), so weights trained with that code base load as they are.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import Upsampler, conv3x3

RDN_CONFIGS = {"A": (20, 6, 32), "B": (16, 8, 64)}
"""Paper configurations: (D blocks, C convs per block, G growth rate)."""


class RDNConfig(StrictModel):
    scale: int = Field(3, description="2, 3 or 4.")
    config: Literal["A", "B"] = Field("B", description="A: D=20, C=6, G=32; B (paper's main): D=16, C=8, G=64.")
    G0: int = Field(64, ge=1, description="Channels between blocks.")
    n_colors: int = 3


class _DenseConv(nn.Module):
    def __init__(self, in_ch: int, growth: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(conv3x3(in_ch, growth), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((x, self.conv(x)), 1)


class RDB(nn.Module):
    """C densely connected Conv3x3+ReLU layers, 1x1 local feature fusion, local residual."""

    def __init__(self, g0: int, growth: int, n_convs: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*[_DenseConv(g0 + c * growth, growth) for c in range(n_convs)])
        self.LFF = nn.Conv2d(g0 + n_convs * growth, g0, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.LFF(self.convs(x)) + x


class RDN(nn.Module):
    """SFENet1/2 -> D RDBs -> GFF (1x1 over the concatenation, then 3x3) + F_-1 -> UPNet -> 3 channels.

    RGB in [0, 1], no mean shift (as the seed collection and the authors' code)."""

    def __init__(self, cfg: RDNConfig) -> None:
        super().__init__()
        d, c, g = RDN_CONFIGS[cfg.config]
        g0 = cfg.G0
        self.SFENet1 = conv3x3(cfg.n_colors, g0)
        self.SFENet2 = conv3x3(g0, g0)
        self.RDBs = nn.ModuleList(RDB(g0, g, c) for _ in range(d))
        self.GFF = nn.Sequential(nn.Conv2d(d * g0, g0, 1), conv3x3(g0, g0))
        self.UPNet = nn.Sequential(*Upsampler(cfg.scale, g0), conv3x3(g0, cfg.n_colors))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f_1 = self.SFENet1(x)
        h = self.SFENet2(f_1)
        outs = []
        for block in self.RDBs:
            h = block(h)
            outs.append(h)
        h = self.GFF(torch.cat(outs, 1)) + f_1
        return self.UPNet(h)


def build_rdn(cfg: RDNConfig) -> RDN:
    """RDN on RGB LR input."""
    return RDN(cfg)
