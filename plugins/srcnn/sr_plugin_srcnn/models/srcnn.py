"""SRCNN (Dong et al., ECCV 2014 / TPAMI 2016): three convs on the bicubic-upsampled Y channel."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import normal_init_


class SRCNNConfig(StrictModel):
    scale: int = Field(3, description="Upscaling factor the model is trained for (input is pre-upsampled).")
    variant: Literal["9-5-5", "9-1-5"] = Field(
        "9-5-5", description="Filter sizes f1-f2-f3; 9-5-5 has 57,281 parameters, 9-1-5 has 8,129."
    )
    n1: int = Field(64, description="Filters of the patch-extraction layer.")
    n2: int = Field(32, description="Filters of the non-linear mapping layer.")


class SRCNN(nn.Module):
    """conv1 9x9 1->n1 + ReLU, conv2 f2 n1->n2 + ReLU, conv3 5x5 n2->1; 'same' padding so the
    output has the input's size (the paper trains with valid convs on 33x33 -> 21x21)."""

    def __init__(self, cfg: SRCNNConfig) -> None:
        super().__init__()
        f2 = int(cfg.variant.split("-")[1])
        self.conv1 = nn.Conv2d(1, cfg.n1, 9, padding=4)
        self.conv2 = nn.Conv2d(cfg.n1, cfg.n2, f2, padding=f2 // 2)
        self.conv3 = nn.Conv2d(cfg.n2, 1, 5, padding=2)
        self.relu = nn.ReLU(inplace=True)
        normal_init_(self, std=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(self.relu(self.conv2(self.relu(self.conv1(x)))))


def build_srcnn(cfg: SRCNNConfig) -> SRCNN:
    """SRCNN on the bicubic-upsampled Y channel."""
    return SRCNN(cfg)
