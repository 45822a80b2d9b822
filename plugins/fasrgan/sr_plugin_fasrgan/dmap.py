"""FASRGAN's per-pixel discriminator map as an image, the point of the method made visible.

``d_map`` runs the U-Net's decoder branch (no image head, so any image size works) in eval
mode and returns sigmoid(mask) averaged over the colour channels: 1 = the pixel looks real to
D, 0 = fake. During training the generator's attention L1 weights each pixel by
``1 - sigmoid(mask)``, so dark regions of the map are where G is pushed hardest.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


@torch.no_grad()
def d_map(discriminator: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, 3, H, W) RGB in [0, 1] -> (1, H, W) per-pixel realness in [0, 1]."""
    if not hasattr(discriminator, "mask"):
        raise TypeError(f"{type(discriminator).__name__} has no per-pixel output (use fasrgan:unet)")
    x = image.unsqueeze(0) if image.dim() == 3 else image
    was_training = discriminator.training
    discriminator.eval()
    try:
        param = next(discriminator.parameters())
        logits = discriminator.mask(x.to(param.device, param.dtype))
    finally:
        discriminator.train(was_training)
    return torch.sigmoid(logits).mean(dim=1)[0:1].cpu().float()


def save_d_map(path: str | Path, discriminator: nn.Module, image: torch.Tensor) -> Path:
    """Write ``d_map(discriminator, image)`` as an 8-bit grayscale PNG; returns the path."""
    from srcore.data.io import write_image

    return write_image(path, d_map(discriminator, image))
