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

from srcore.data.color import rgb_to_y, round_half_even

YConvention = Literal["matlab", "float"]


def y_matlab_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """Integer Y (16..235) of NCHW RGB as rgb2ycbcr on the uint8 image, in 0..255 (float64).

    ``rgb`` is either the uint8 image itself or floats in [0, 1], rounded to 8 bits first
    (``round_half_even``, the storage rule).
    Y = round((65.481 R + 128.553 G + 24.966 B) / 255 + 16) is evaluated exactly:
    the numerator with 1000x scaled coefficients (at most 60e6: int32 for uint8 input, float64
    otherwise, where NaN stays NaN), the floor of its quotient by 255000 in float64 (division is
    correctly rounded, and a quotient that is not an integer is at least 1/255000 away from
    one), so ties round up deterministically instead of depending on floating-point error.
    """
    if rgb.dtype == torch.uint8:
        r, g, b = (rgb[:, i : i + 1].to(torch.int32) for i in range(3))
        num = r.mul_(65481)
    else:
        r, g, b = round_half_even(rgb.to(torch.float64).clamp(0, 1).mul_(255.0)).split(1, dim=1)
        num = r * 65481
    num = num.add_(g, alpha=128553).add_(b, alpha=24966).add_(127500 + 16 * 255000)
    return num.to(torch.float64).div_(255000.0).floor_()


def to_measured(
    x: torch.Tensor, *, crop_border: int, y_channel: bool, y_convention: YConvention = "matlab"
) -> torch.Tensor:
    """NCHW images -> NCHW float64 in 0..255, as the metric compares them.

    ``x`` holds floats in [0, 1] or, for an 8-bit image, its uint8 levels (exact: no k / 255
    rounding on the way; ``srcore eval`` hands 8-bit images over so). Both give the same values
    for the same image.
    """
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    if y_convention not in ("matlab", "float"):
        raise ValueError(f"y_convention must be 'matlab' or 'float', got {y_convention!r}")
    if y_channel and x.shape[1] not in (1, 3):
        raise ValueError(f"y_channel needs 1- or 3-channel images, got {x.shape[1]} channels")
    rgb_y = y_channel and x.shape[1] == 3
    if rgb_y and y_convention == "matlab":
        x = y_matlab_uint8(x)
    elif rgb_y:
        x = rgb_to_y(x.to(torch.float64).div_(255.0) if x.dtype == torch.uint8 else x.to(torch.float64)).mul_(255.0)
    elif x.dtype == torch.uint8:
        x = x.to(torch.float64)  # the levels (a 1-channel image is taken as Y, rounded already)
    elif y_channel and y_convention == "matlab":
        x = round_half_even(x.to(torch.float64).mul(255.0))  # Y given as floats: stored as 8-bit Y is
    else:
        x = x.to(torch.float64) * 255.0
    if crop_border:
        h, w = x.shape[-2:]
        if 2 * crop_border >= min(h, w):
            raise ValueError(f"crop_border {crop_border} leaves nothing of a {h}x{w} image")
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
    return x
