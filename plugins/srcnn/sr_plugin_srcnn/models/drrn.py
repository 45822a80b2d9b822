"""DRRN (Tai et al., CVPR 2017), B1U25: one recursive block of 25 pre-activation residual units
whose two convs are shared by all units; every unit adds the block's first feature (multi-path)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import conv3x3, normal_init_


class DRRNConfig(StrictModel):
    scale: int = Field(2, description="Scale of the (pre-upsampled) input.")
    units: int = Field(25, ge=1, description="U, residual units in the recursive block (B1U25).")
    channels: int = Field(128, ge=1)
    batch_norm: bool = Field(
        True,
        description="Paper's BN-ReLU-conv pre-activation (BN per unit, not shared; conv weights shared). "
        "The seed collection omits BN: set false to reproduce it (297,216 parameters).",
    )


def _preact(channels: int, batch_norm: bool) -> nn.Module:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU()) if batch_norm else nn.ReLU()


class DRRN(nn.Module):
    """h0 = conv_in(x); u_0 = h0; u_i = conv_b(act(conv_a(act(u_{i-1})))) + h0 (conv_a/conv_b shared);
    output = conv_out(act(u_U)) + x. Convs 3x3 without bias."""

    def __init__(self, cfg: DRRNConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.conv_in = conv3x3(1, c, bias=False)
        self.conv_a = conv3x3(c, c, bias=False)
        self.conv_b = conv3x3(c, c, bias=False)
        self.act_a = nn.ModuleList(_preact(c, cfg.batch_norm) for _ in range(cfg.units))
        self.act_b = nn.ModuleList(_preact(c, cfg.batch_norm) for _ in range(cfg.units))
        self.act_out = _preact(c, cfg.batch_norm)
        self.conv_out = conv3x3(c, 1, bias=False)
        normal_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.conv_in(x)
        u = h0
        for act_a, act_b in zip(self.act_a, self.act_b):
            u = self.conv_b(act_b(self.conv_a(act_a(u)))) + h0
        return self.conv_out(self.act_out(u)) + x


def build_drrn(cfg: DRRNConfig) -> DRRN:
    """DRRN B1U25 on the bicubic-upsampled Y channel."""
    return DRRN(cfg)
