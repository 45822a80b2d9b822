"""DRRN (Tai et al., CVPR 2017), B1U25: one recursive block of 25 pre-activation residual units
whose two convs are shared by all units; every unit adds the block's first feature (multi-path).

``variant: paper`` (default) has the paper's BN-ReLU-conv pre-activation, which the authors'
Caffe release (tyshiwo/DRRN_CVPR17, ``DRRN_B1U25_52C128_train.prototxt``) also has: a separate
BatchNorm + Scale before every ReLU-conv, convolution weights shared by name. ``variant: seed``
is the seed collection's ``models/DRRN/model.py`` (from jt827859032/DRRN-pytorch): no BN, its key
names (``input``, ``conv1``, ``conv2``, ``output``), and the forward its ``nn.ReLU(inplace=True)``
really computes (see ``DRRNSeed``).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from srcore.registry import StrictModel

from .blocks import conv3x3, normal_init_


class DRRNConfig(StrictModel):
    scale: int = Field(2, description="Scale of the (pre-upsampled) input.")
    variant: Literal["paper", "seed"] = Field(
        "paper",
        description="'paper': BN-ReLU-conv units as the paper and the authors' Caffe release; 'seed': the "
        "collection's BN-free net with its key names and its in-place-ReLU forward (297,216 parameters).",
    )
    units: int = Field(25, ge=1, description="U, residual units in the recursive block (B1U25).")
    channels: int = Field(128, ge=1)
    batch_norm: bool = Field(
        True,
        description="variant 'paper' only: the BN of the pre-activation (BN per unit, not shared; conv "
        "weights shared); false drops it (297,216 parameters). The seed variant never has BN.",
    )


def _preact(channels: int, batch_norm: bool) -> nn.Module:
    return nn.Sequential(nn.BatchNorm2d(channels), nn.ReLU()) if batch_norm else nn.ReLU()


class DRRN(nn.Module):
    """h0 = conv_in(x); u_0 = h0; u_i = conv_b(act(conv_a(act(u_{i-1})))) + h0 (conv_a/conv_b shared);
    output = conv_out(act(u_U)) + x. Convs 3x3 without bias.

    Init: the release's ``msra`` filler, Caffe's default FAN_IN variant, N(0, sqrt(2 / (9 * in))).
    (The fan-out formula of the PyTorch ports gives the 1-channel output conv std 0.47, an output
    of std ~10 at the start, which the clipped SGD then needs thousands of steps to undo.)
    """

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
        for conv in (self.conv_in, self.conv_a, self.conv_b, self.conv_out):
            nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h0 = self.conv_in(x)
        u = h0
        for act_a, act_b in zip(self.act_a, self.act_b):
            u = self.conv_b(act_b(self.conv_a(act_a(u)))) + h0
        return self.conv_out(self.act_out(u)) + x


class DRRNSeed(nn.Module):
    """The collection's DRRN as it computes: its one ``nn.ReLU(inplace=True)`` rewrites tensors
    that are used again, written out here without in-place ops.

    ``inputs = self.input(self.relu(x))`` rectifies x itself, so the global residual adds ReLU(x);
    the first unit's ``self.relu(out)`` rectifies ``inputs`` (``out`` is that tensor), so every
    unit adds ReLU(h0), not h0. Y inputs in [0, 1] make the first a no-op, not the second.
    Convs 3x3 without bias, N(0, sqrt(2 / (9 * out))) init, as the collection.
    """

    def __init__(self, cfg: DRRNConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.units = cfg.units
        self.input = conv3x3(1, c, bias=False)
        self.conv1 = conv3x3(c, c, bias=False)
        self.conv2 = conv3x3(c, c, bias=False)
        self.output = conv3x3(c, 1, bias=False)
        normal_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        h0 = self.input(x)
        added = F.relu(h0)
        u = h0
        for _ in range(self.units):
            u = self.conv2(F.relu(self.conv1(F.relu(u)))) + added
        return self.output(F.relu(u)) + x


def build_drrn(cfg: DRRNConfig) -> nn.Module:
    """DRRN B1U25 on the bicubic-upsampled Y channel (paper's BN units, or the seed collection's net)."""
    return DRRNSeed(cfg) if cfg.variant == "seed" else DRRN(cfg)
