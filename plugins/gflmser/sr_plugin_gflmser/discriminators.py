"""GFLmser discriminators: residual conv nets ending in FC(64*4*4 -> 1) and a sigmoid.

LR domain (``v1_discriminator.py``, 16x16 input): conv 3->64, 4 residual units, then
2 x [maxpool 3/2/1, residual unit] (16 -> 4). HR domain (``low_to_high/Discriminator.py``,
64x64 input): conv 3->64, 2 residual units, then 4 x [maxpool, residual unit] (64 -> 4).
Both have 445,953 parameters. Key names are the authors' (``pre_process``, ``layers.<i>``
with the max-pool entries keeping their Sequential indices, ``fully_connect``).

The output is a probability (sigmoid), as in the authors' code: their least-squares GAN loss
is the MSE of that probability to 1/0, i.e. ``GANLoss("lsgan")`` applied to this output.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

FEATURES = 64


class DResUnit(nn.Module):
    """ReLU-conv-ReLU-conv + identity (default PyTorch init, as the authors' D)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv_1 = nn.Conv2d(FEATURES, FEATURES, 3, padding=1)
        self.conv_2 = nn.Conv2d(FEATURES, FEATURES, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_2(F.relu(self.conv_1(F.relu(x))))


class ResidualDiscriminator(nn.Module):
    """``input_size`` 16 (LR domain) or 64 (HR domain); one pooling per halving down to 4x4."""

    def __init__(self, input_size: int = 16, sigmoid: bool = True) -> None:
        super().__init__()
        pools = {16: 2, 64: 4}.get(input_size)
        if pools is None:
            raise ValueError(f"input_size must be 16 (LR domain) or 64 (HR domain), got {input_size}")
        self.input_size = input_size
        self.sigmoid = sigmoid
        self.pre_process = nn.Conv2d(3, FEATURES, 3, padding=1)
        blocks: list[nn.Module] = [DResUnit() for _ in range(6 - pools)]
        for _ in range(pools):
            blocks += [nn.MaxPool2d(3, stride=2, padding=1), DResUnit()]
        self.layers = nn.Sequential(*blocks)
        self.fully_connect = nn.Linear(FEATURES * 4 * 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, s, s) in [0, 1] -> (N, 1); the authors' nets saw [-1, 1], converted here."""
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            raise ValueError(f"discriminator expects {self.input_size}x{self.input_size} inputs, got {tuple(x.shape)}")
        out = self.layers(self.pre_process(x * 2 - 1))
        out = self.fully_connect(out.flatten(1))
        return torch.sigmoid(out) if self.sigmoid else out
