"""Built-in models of the core plugin: ``core:tiny``, a reference network for tests and docs.

It is the smallest useful SR model (ESPCN-like: two 3x3 convs and a pixel shuffle, plus a
bilinear skip so it starts close to interpolation) and exercises the whole engine in seconds.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from srcore.registry import Registrar, StrictModel


class TinyConfig(StrictModel):
    scale: int = Field(2, ge=2, le=4, description="Upscaling factor.")
    channels: int = Field(8, ge=1, description="Feature channels.")


class TinySR(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 -> pixel shuffle, added to a bilinear upsampling of the input."""

    def __init__(self, scale: int = 2, channels: int = 8) -> None:
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, 3 * scale * scale, 3, padding=1),
            nn.PixelShuffle(scale),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)
        return base + self.body(x)


def register_models(register: Registrar) -> None:
    register(
        "tiny",
        lambda c: TinySR(c.scale, c.channels),
        config=TinyConfig,
        description="Tiny conv + pixel-shuffle reference model (tests, docs).",
        scales=(2, 3, 4),
    )
