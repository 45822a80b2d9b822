"""ITU-R BT.601 colour conversion exactly as MATLAB's ``rgb2ycbcr``/``ycbcr2rgb``.

All functions take NCHW (or CHW) float tensors with RGB/YCbCr in [0, 1]; Y lies in
[16/255, 235/255] and Cb/Cr in [16/255, 240/255] for in-gamut colours. Nothing is rounded here:
8-bit rounding is a separate, explicit step (``quantize``) because metrics must be able to
choose between the "matlab" (rounded) and "float" (BasicSR) conventions. ``round_half_even`` is
the one float -> integer rounding rule of the core (saved images, ``quantize``, data prepare).
"""

from __future__ import annotations

import numpy as np
import torch

# Rows give Y, Cb, Cr from R, G, B in [0, 1], in units of 1/255 (MATLAB's table).
_MATRIX = (
    (65.481, 128.553, 24.966),
    (-37.797, -74.203, 112.0),
    (112.0, -93.786, -18.214),
)
_OFFSET = (16.0, 128.0, 128.0)


def _channel_dim(x: torch.Tensor) -> int:
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"expected a (N,)3,H,W tensor, got shape {tuple(x.shape)}")
    return x.dim() - 3


def _apply(x: torch.Tensor, matrix: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    dim = _channel_dim(x)
    shape = [1] * x.dim()
    shape[dim] = 3
    m = matrix.to(device=x.device, dtype=x.dtype)
    out = torch.tensordot(x.movedim(dim, -1), m.T, dims=1).movedim(-1, dim)
    return out + offset.to(device=x.device, dtype=x.dtype).view(shape)


def _float(x: torch.Tensor) -> torch.Tensor:
    return x if x.is_floating_point() else x.float()


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> YCbCr [0, 1] (MATLAB ``rgb2ycbcr`` on double input)."""
    m = torch.tensor(_MATRIX, dtype=torch.float64) / 255.0
    off = torch.tensor(_OFFSET, dtype=torch.float64) / 255.0
    return _apply(_float(x), m, off)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """YCbCr [0, 1] -> RGB [0, 1] (MATLAB ``ycbcr2rgb``: exact inverse of the forward matrix)."""
    m = torch.linalg.inv(torch.tensor(_MATRIX, dtype=torch.float64) / 255.0)
    off = -(m @ (torch.tensor(_OFFSET, dtype=torch.float64) / 255.0))
    return _apply(_float(x), m, off)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """RGB [0, 1] -> Y [16/255, 235/255], keeping a channel dimension of size 1."""
    dim = _channel_dim(x)
    x = _float(x)
    w = torch.tensor(_MATRIX[0], dtype=torch.float64, device=x.device).to(x.dtype) / 255.0
    shape = [1] * x.dim()
    shape[dim] = 3
    return (x * w.view(shape)).sum(dim=dim, keepdim=True) + 16.0 / 255.0


# A value this close (in levels) to a half level is taken as the half itself.
HALF_LEVEL_TOLERANCE = 1e-9


def round_half_even(v: torch.Tensor) -> torch.Tensor:
    """Nearest integer, exact halves to the even neighbour; values within ``HALF_LEVEL_TOLERANCE``
    of a half count as that half.

    Half to even is what ``cv2.imwrite`` of a float array, ``np.round`` and BasicSR's
    ``tensor2img`` do, so saved results match those reference scripts value for value (MATLAB's
    ``uint8`` rounds halves away from zero instead; see docs/data-and-metrics.md). The tolerance
    makes the result independent of the summation order: bicubic upsampling by an integer factor
    has dyadic weights, so k + 0.5 occurs in exact arithmetic, and a float64 sum lands 1e-14 above
    or below depending on the order (BLAS, MATLAB and BasicSR differ); a genuine value that close
    to a half has probability ~1e-9 per value. For float32 images it changes nothing (no float32
    in 0..65535 lies within 1e-9 of a half without being it).
    """
    half = torch.floor(v).add_(0.5)
    tie = (v - half).abs_() <= HALF_LEVEL_TOLERANCE
    return torch.where(tie, half, v).round_()


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round [0, 1] values to the nearest of 256 levels, as storing a uint8 image does
    (``round_half_even``, the rule ``srcore.data.io.write_image`` uses)."""
    return round_half_even(x.clamp(0, 1).mul_(255.0)).div_(255.0)


def exact_float64(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float64; a float32 copy of an 8-bit image (k/255 rounded to float32, as the
    readers and datasets hand images over), or such a copy widened to float64, becomes the
    exact k/255 (MATLAB's ``im2double``).

    Plain ``.double()`` keeps the float32 error (~1e-8), which is enough to move a MATLAB
    bicubic output across a rounding boundary now and then (3 LR pixels in a 1024x1024 photo)
    and the exact half levels of a later upsampling to either side, i.e. to change stored
    pixels. The image counts as 8-bit when every value rounds to the float32 of its nearest
    level; a sample is tested first, so other images cost little.
    """
    if x.dtype not in (torch.float32, torch.float64):
        return x.to(torch.float64)
    sample = x.reshape(-1)[:: max(1, x.numel() // 997)]
    if not _is_8bit(sample, _levels(sample)):
        return x.to(torch.float64)
    levels = _levels(x)
    return levels if _is_8bit(x, levels) else x.to(torch.float64)


def _levels(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.float64).mul(255.0).round_().div_(255.0)


def _is_8bit(x: torch.Tensor, levels: torch.Tensor) -> bool:
    return torch.equal(levels.to(torch.float32), x.to(torch.float32))


def quantize_uint8(x: torch.Tensor) -> torch.Tensor:
    """``quantize``'s levels as uint8, the stored 8-bit image itself (metrics take it as it is:
    ``srcore.metrics.prepare``); ``x`` is rounded in float64, as ``quantize`` of it widened.

    Three times faster on a 1024x1024 image: by strips of rows of about 64k values, whose
    passes stay in the cache, and with the nearest level (``rint``) for every value more than
    twice ``HALF_LEVEL_TOLERANCE`` away from a half level (where any tie rule agrees with it);
    the values near a half are rounded by ``quantize`` itself. The strips go through NumPy,
    single-threaded: torch's intra-op threads on such small pieces made a loaded 2-core machine
    100x slower. NaN has no level: ``ValueError``.
    """
    if x.device.type != "cpu":
        return _levels_uint8(x.to(torch.float64))
    x = x.detach().to(torch.float64)
    flat = x.reshape(-1, x.shape[-1]) if x.dim() >= 2 else x.reshape(1, -1)
    out = torch.empty(flat.shape, dtype=torch.uint8)
    rows = max(1, 2**16 // max(1, flat.shape[1]))
    src, dst = flat.numpy(), out.numpy()
    for r in range(0, flat.shape[0], rows):
        v = np.clip(src[r : r + rows], 0.0, 1.0) * 255.0
        levels = np.rint(v)
        near = ~(np.abs(v - levels) < 0.5 - 2 * HALF_LEVEL_TOLERANCE)  # v - rint(v) is exact; NaN is near
        if near.any():
            levels[near] = _levels_uint8(torch.from_numpy(src[r : r + rows][near])).numpy()
        dst[r : r + rows] = levels
    return out.reshape(x.shape)


def _levels_uint8(x: torch.Tensor) -> torch.Tensor:
    levels = round_half_even(x.clamp(0, 1).mul(255.0))  # quantize's levels, without the / 255 and back
    if levels.isnan().any():
        raise ValueError("NaN values have no 8-bit level")
    return levels.to(torch.uint8)
