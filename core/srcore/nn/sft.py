"""Spatial feature transform (SFT, Wang et al. 2018) as used by FxSR: F * (1 + scale) + shift."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class SFTLayer(nn.Module):
    """Per-pixel affine modulation of ``nf`` features by a ``cond_nc``-channel condition.

    Scale and shift each have their own 1x1 conv pair (cond -> cond -> nf) with LeakyReLU(0.1)
    between; the names follow FxSR's release (``SFT_scale_conv0`` ... ``SFT_shift_conv1``).
    """

    def __init__(self, nf: int = 64, cond_nc: int = 32) -> None:
        super().__init__()
        self.SFT_scale_conv0 = nn.Conv2d(cond_nc, cond_nc, 1)
        self.SFT_scale_conv1 = nn.Conv2d(cond_nc, nf, 1)
        self.SFT_shift_conv0 = nn.Conv2d(cond_nc, cond_nc, 1)
        self.SFT_shift_conv1 = nn.Conv2d(cond_nc, nf, 1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = self.SFT_scale_conv1(F.leaky_relu(self.SFT_scale_conv0(cond), 0.1))
        shift = self.SFT_shift_conv1(F.leaky_relu(self.SFT_shift_conv0(cond), 0.1))
        return x * (scale + 1) + shift
