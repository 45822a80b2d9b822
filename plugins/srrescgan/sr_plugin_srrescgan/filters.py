"""Frequency-separation filters of DSGAN and SRResCGAN (box filters by average pooling)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def high_pass(x: torch.Tensor, kernel_size: int, count_include_pad: bool) -> torch.Tensor:
    """0.5 + 0.5 * (x - box(x)), box = AvgPool(k, stride 1, 'same' padding) (FilterHigh).

    SRResCGAN's SR discriminator uses k = 9 with the padding counted in the average; DSGAN's patch
    discriminator k = 5 without. The input range is kept (0..255 images stay in 0..255 units).
    """
    low = F.avg_pool2d(x, kernel_size, stride=1, padding=kernel_size // 2, count_include_pad=count_include_pad)
    return 0.5 + 0.5 * (x - low)


def low_pass_valid(x: torch.Tensor, kernel_size: int = 5) -> torch.Tensor:
    """Box filter without padding: DSGAN's colour-loss filter (FilterLow(padding=False))."""
    return F.avg_pool2d(x, kernel_size, stride=1, padding=0)
