"""Degradations: the learned DSGAN one and the fixed corruptions of the paper's table.

``srrescgan:sensor_noise`` and ``srrescgan:jpeg`` are named presets of the core's
``core:chain`` (the test corruptions of DSGAN's add_corruptions.py, applied to the MATLAB-bicubic
LR): they only write the chain's config and let the core build it.
"""

from __future__ import annotations

from typing import Any

import torch

from sr_plugin_srrescgan.configs import DSGANDegradationConfig, JpegChainConfig, SensorNoiseChainConfig
from sr_plugin_srrescgan.dsgan import DSGANGenerator, load_dsgan_generator


class DSGANDegradation:
    """HR [0, 1] -> MATLAB imresize(HR, 1/scale) -> G_d -> LR [0, 1] (deterministic).

    As DSGAN's create_dataset.py: the bicubic LR is kept in float before G_d; ``quantize``
    rounds the result to 8 bits like the PNG it saved. ``generator`` is accepted and unused.
    """

    def __init__(self, net: DSGANGenerator, scale: int = 4, quantize: bool = True) -> None:
        self.net, self.scale, self.quantize = net.eval().requires_grad_(False), scale, quantize

    @torch.no_grad()
    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        from srcore.data.color import quantize
        from srcore.data.degrade import BicubicMatlab

        x = hr.unsqueeze(0) if hr.dim() == 3 else hr
        z = BicubicMatlab(self.scale, quantize=False)(x)
        param = next(self.net.parameters())
        if param.device != z.device:  # follow the data (a loader worker or the run's device)
            self.net.to(z.device)
        lr = self.net(z.to(param.dtype)).to(hr.dtype)
        lr = quantize(lr) if self.quantize else lr
        return lr[0] if hr.dim() == 3 else lr


def build_dsgan_degradation(cfg: DSGANDegradationConfig) -> DSGANDegradation:
    return DSGANDegradation(load_dsgan_generator(cfg.checkpoint), cfg.scale, cfg.quantize)


def sensor_noise_chain(cfg: SensorNoiseChainConfig) -> dict[str, Any]:
    """core:chain params: float bicubic LR + Gaussian noise sigma (0..255), then 8-bit rounding."""
    return {
        "steps": [
            {"id": "core:bicubic", "params": {"scale": cfg.scale, "quantize": False}},
            {"id": "core:noise", "params": {"sigma": cfg.sigma, "quantize": True}},
        ],
        "seed": cfg.seed,
    }


def jpeg_chain(cfg: JpegChainConfig) -> dict[str, Any]:
    """core:chain params: 8-bit bicubic LR, then JPEG at the given quality."""
    return {
        "steps": [
            {"id": "core:bicubic", "params": {"scale": cfg.scale, "quantize": True}},
            {"id": "core:jpeg", "params": {"quality": cfg.quality}},
        ]
    }


def build_core_chain(params: dict[str, Any]) -> Any:
    from srcore.plugins import load_plugins

    return load_plugins().registries.degradations.get("core:chain").build(params)
