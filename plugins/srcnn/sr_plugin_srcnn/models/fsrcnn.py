"""FSRCNN (Dong et al., ECCV 2016): LR Y input, shrink/map/expand, 9x9 deconvolution."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import normal_init_


class FSRCNNConfig(StrictModel):
    scale: int = Field(3, description="Upscaling factor (stride of the deconvolution).")
    d: int = Field(56, ge=1, description="LR feature dimension.")
    s: int = Field(12, ge=1, description="Shrunk dimension of the mapping layers.")
    m: int = Field(4, ge=0, description="Number of 3x3 mapping layers.")


class FSRCNN(nn.Module):
    """feature Conv5x5 1->d + PReLU; shrink Conv1x1 d->s + PReLU; m x [Conv3x3 s->s + PReLU];
    expand Conv1x1 s->d + PReLU; deconv 9x9 d->1 stride r, padding 4, output_padding r-1."""

    def __init__(self, cfg: FSRCNNConfig) -> None:
        super().__init__()
        d, s, m, r = cfg.d, cfg.s, cfg.m, cfg.scale
        self.feature = nn.Sequential(nn.Conv2d(1, d, 5, padding=2), nn.PReLU(d))
        self.shrink = nn.Sequential(nn.Conv2d(d, s, 1), nn.PReLU(s))
        mapping: list[nn.Module] = []
        for _ in range(m):
            mapping += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        self.mapping = nn.Sequential(*mapping)
        self.expand = nn.Sequential(nn.Conv2d(s, d, 1), nn.PReLU(d))
        self.deconv = nn.ConvTranspose2d(d, 1, 9, stride=r, padding=4, output_padding=r - 1)
        normal_init_(nn.ModuleList([self.feature, self.shrink, self.mapping, self.expand]))
        normal_init_(self.deconv, std=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.expand(self.mapping(self.shrink(self.feature(x)))))


def build_fsrcnn(cfg: FSRCNNConfig) -> FSRCNN:
    """FSRCNN(d, s, m) on the LR Y channel."""
    return FSRCNN(cfg)
