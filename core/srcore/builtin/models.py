"""Built-in models of the core plugin.

* ``core:tiny``, a reference network for tests and docs: the smallest useful SR model
  (ESPCN-like: two 3x3 convs and a pixel shuffle, plus a bilinear skip so it starts close to
  interpolation) that exercises the whole engine in seconds.
* ``core:rrdbnet``, the RRDBNet of BasicSR and Real-ESRGAN (x4, and x2/x1 through
  pixel-unshuffle as BasicSR does), so their released ``params``/``params_ema`` files are
  detected and load as the core network (``detect_basicsr_rrdbnet``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from srcore.registry import CheckpointMatch, Registrar, StrictModel


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


class RRDBNetConfig(StrictModel):
    scale: Literal[1, 2, 4] = Field(
        4, description="Upscaling factor; x2 and x1 pixel-unshuffle the input by 2 and 4 (BasicSR)."
    )
    in_nc: int = Field(3, ge=1, description="Input channels (num_in_ch).")
    out_nc: int = Field(3, ge=1, description="Output channels (num_out_ch).")
    nf: int = Field(64, ge=1, description="Trunk features (num_feat).")
    nb: int = Field(23, ge=1, description="RRDB blocks (num_block): 23, or 6 in Real-ESRGAN's anime model.")
    gc: int = Field(32, ge=1, description="Growth channels of the dense blocks (num_grow_ch).")


_UNSHUFFLE = {1: 4, 2: 2, 4: 1}


def build_rrdbnet(cfg: RRDBNetConfig) -> nn.Module:
    """BasicSR's RRDBNet: always x4 in the trunk, the input pixel-unshuffled for x2/x1."""
    from srcore.nn.rrdb import RRDBNet

    return RRDBNet(cfg.in_nc, cfg.out_nc, cfg.nf, cfg.nb, cfg.gc, scale=cfg.scale, unshuffle=_UNSHUFFLE[cfg.scale])


def detect_basicsr_rrdbnet(state: Mapping[str, Any]) -> CheckpointMatch | None:
    """A BasicSR / Real-ESRGAN RRDBNet state dict (x1/x2/x4) as ``core:rrdbnet``, in srcore's names."""
    from srcore.nn.rrdb import basicsr_params, from_basicsr_keys, is_basicsr_rrdbnet

    if not is_basicsr_rrdbnet(state):
        return None
    params = basicsr_params(state)
    if params["scale"] not in _UNSHUFFLE:
        return None  # e.g. an x8 fork: not BasicSR's network
    return CheckpointMatch("core:rrdbnet", params, from_basicsr_keys(state), note="BasicSR / Real-ESRGAN RRDBNet keys")


def register_models(register: Registrar) -> None:
    register(
        "tiny",
        lambda c: TinySR(c.scale, c.channels),
        config=TinyConfig,
        description="Tiny conv + pixel-shuffle reference model (tests, docs).",
        scales=(2, 3, 4),
        tile_exact=True,
        receptive_field=2,
    )
    register(
        "rrdbnet",
        build_rrdbnet,
        config=RRDBNetConfig,
        description="ESRGAN RRDBNet as BasicSR / Real-ESRGAN release it (x4; x2, x1 by pixel-unshuffle).",
        scales=(1, 2, 4),
        tile_exact=True,
        receptive_field=1400,  # 23 RRDBs x 15 convs + 4, x4 after the x1 pixel-unshuffle
    )
