"""DRCN (Kim et al., CVPR 2016): one conv applied recursively, every recursion reconstructed,
the predictions averaged with learned weights; skip connection from the input.

Wired as the paper (embedding -> D recursions H_1..H_D -> shared reconstruction of each H_d),
not as the seed collection's code, which fed the reconstruction conv back into the recursion.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import conv3x3, normal_init_


class DRCNConfig(StrictModel):
    scale: int = Field(2, description="Scale of the (pre-upsampled) input.")
    channels: int = Field(256, ge=1, description="Filters of every hidden layer (paper: 256).")
    recursions: int = Field(16, ge=1, description="D, applications of the shared conv (paper: 16).")


class DRCN(nn.Module):
    """embed: Conv 1->C + ReLU, Conv C->C + ReLU (H_0); H_d = ReLU(shared(H_{d-1})), d = 1..D;
    y_d = reconstruct(H_d) + x with reconstruct = Conv C->C + ReLU, Conv C->1;
    output = sum_d w_d y_d / sum_d w_d, w initialised to 1/D."""

    def __init__(self, cfg: DRCNConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.recursions = cfg.recursions
        self.embed = nn.Sequential(conv3x3(1, c), nn.ReLU(inplace=True), conv3x3(c, c), nn.ReLU(inplace=True))
        self.shared = conv3x3(c, c)
        self.reconstruct = nn.Sequential(conv3x3(c, c), nn.ReLU(inplace=True), conv3x3(c, 1))
        self.weights = nn.Parameter(torch.full((cfg.recursions,), 1.0 / cfg.recursions))
        self.relu = nn.ReLU()
        normal_init_(self)

    def forward_all(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """All D intermediate predictions (for recursive supervision) and the weighted output."""
        h = self.embed(x)
        preds = []
        for _ in range(self.recursions):
            h = self.relu(self.shared(h))
            preds.append(self.reconstruct(h) + x)
        w = self.weights
        out = sum(wd * p for wd, p in zip(w, preds)) / w.sum()
        return preds, out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[1]


def build_drcn(cfg: DRCNConfig) -> DRCN:
    """DRCN on the bicubic-upsampled Y channel."""
    return DRCN(cfg)
