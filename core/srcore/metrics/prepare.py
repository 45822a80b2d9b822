"""What PSNR/SSIM see: channel choice, the Y convention, border crop, 0..255 float64 values.

Conventions (see docs/data-and-metrics.md):

* ``y_channel=False``: all channels as given.
* ``y_channel=True`` on RGB input, ``y_convention="matlab"``: the pipeline of the MATLAB
  benchmark scripts: RGB rounded to 8 bits (the stored image), Y = rgb2ycbcr on uint8, which
  rounds Y to an integer in 16..235.
* ``y_channel=True``, ``y_convention="float"``: Y computed in float from the values as given
  and not rounded (BasicSR's ``to_y_channel``).
* 1-channel input with ``y_channel=True`` is taken as Y already (rounded under "matlab").
* ``crop_border=c`` removes c pixels on every side before measuring (benchmarks: c = scale).
"""

from __future__ import annotations

from typing import Literal

import torch

from srcore.data.color import rgb_to_y

YConvention = Literal["matlab", "float"]


def _round_half_up(x: torch.Tensor) -> torch.Tensor:
    return torch.floor(x + 0.5)


def y_matlab_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """Integer Y (16..235) of NCHW RGB in [0, 1] as rgb2ycbcr on the uint8 image, in 0..255.

    The RGB values are rounded to 8 bits, then Y = round((65.481 R + 128.553 G + 24.966 B) / 255
    + 16) is evaluated in exact integer arithmetic (1000x scaled coefficients), so ties round up
    deterministically instead of depending on floating-point error.
    """
    u8 = rgb.to(torch.float64).clamp(0, 1).mul_(255.0).add_(0.5).floor_()
    w = torch.tensor([65481.0, 128553.0, 24966.0], dtype=torch.float64, device=rgb.device)
    num = torch.einsum("nchw,c->nhw", u8, w).unsqueeze(1)
    # exact: num + 127500 and 255000 are integers far below 2^53, so floor(a / b) is exact
    return num.add_(127500.0).div_(255000.0).floor_().add_(16.0)


def to_measured(
    x: torch.Tensor, *, crop_border: int, y_channel: bool, y_convention: YConvention = "matlab"
) -> torch.Tensor:
    """NCHW [0, 1] -> NCHW float64 in 0..255, as the metric compares it."""
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if y_convention not in ("matlab", "float"):
        raise ValueError(f"y_convention must be 'matlab' or 'float', got {y_convention!r}")
    x = x.to(torch.float64)
    if y_channel:
        if x.shape[1] == 3:
            x = y_matlab_uint8(x) if y_convention == "matlab" else rgb_to_y(x) * 255.0
        elif x.shape[1] == 1:
            x = _round_half_up(x * 255.0) if y_convention == "matlab" else x * 255.0
        else:
            raise ValueError(f"y_channel needs 1- or 3-channel images, got {x.shape[1]} channels")
    else:
        x = x * 255.0
    if crop_border:
        h, w = x.shape[-2:]
        if 2 * crop_border >= min(h, w):
            raise ValueError(f"crop_border {crop_border} leaves nothing of a {h}x{w} image")
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    return x
