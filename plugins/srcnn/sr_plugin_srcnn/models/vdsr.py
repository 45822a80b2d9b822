"""VDSR (Kim et al., CVPR 2016): 20 bias-free 3x3 convs learning the residual of the
bicubic-upsampled Y channel; one model serves x2, x3 and x4."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import conv3x3, normal_init_


class VDSRConfig(StrictModel):
    scale: int = Field(2, description="Scale of the (pre-upsampled) input; the weights serve every scale.")
    depth: int = Field(20, ge=3, description="Conv layers in total (paper: 20).")
    channels: int = Field(64, ge=1)


class VDSR(nn.Module):
    """head Conv 1->64 + ReLU; (depth-2) x [Conv 64->64 + ReLU]; tail Conv 64->1; + input."""

    def __init__(self, cfg: VDSRConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.head = conv3x3(1, c, bias=False)
        self.body = nn.ModuleList(conv3x3(c, c, bias=False) for _ in range(cfg.depth - 2))
        self.tail = conv3x3(c, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        normal_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.relu(self.head(x))
        for conv in self.body:
            h = self.relu(conv(h))
        return self.tail(h) + x


def build_vdsr(cfg: VDSRConfig) -> VDSR:
    """VDSR on the bicubic-upsampled Y channel (global residual)."""
    return VDSR(cfg)
