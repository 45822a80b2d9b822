"""Aligned crops and dihedral augmentation of LR/HR pairs (CHW tensors)."""

from __future__ import annotations

import torch


def mod_crop(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Crop the bottom/right so height and width are multiples of ``scale`` (MATLAB modcrop)."""
    h, w = x.shape[-2:]
    return x[..., : h - h % scale, : w - w % scale]


def randint(high: int, generator: torch.Generator | None = None) -> int:
    """Uniform integer in [0, high) from ``generator`` (or torch's global RNG)."""
    return int(torch.randint(high, (), generator=generator)) if high > 1 else 0


def random_crop(
    x: torch.Tensor, size: int, generator: torch.Generator | None = None, name: str = "image"
) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"{name} is {h}x{w}, smaller than the patch size {size}")
    top, left = randint(h - size + 1, generator), randint(w - size + 1, generator)
    return x[..., top : top + size, left : left + size]


def paired_random_crop(
    lr: torch.Tensor, hr: torch.Tensor, hr_size: int, scale: int, generator: torch.Generator | None = None,
    name: str = "image",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop an LR patch of hr_size/scale and the HR patch exactly above it.

    When ``lr`` already has the HR size (pre-upsampled data) both are cropped at the same place.
    """
    if hr_size % scale:
        raise ValueError(f"patch size {hr_size} is not a multiple of the scale {scale}")
    s = 1 if lr.shape[-2:] == hr.shape[-2:] else scale
    lr_size = hr_size // s
    h, w = lr.shape[-2:]
    if h < lr_size or w < lr_size:
        raise ValueError(f"{name}: LR is {h}x{w}, smaller than the LR patch {lr_size} (HR patch {hr_size})")
    top, left = randint(h - lr_size + 1, generator), randint(w - lr_size + 1, generator)
    lr = lr[..., top : top + lr_size, left : left + lr_size]
    hr = hr[..., top * s : top * s + hr_size, left * s : left * s + hr_size]
    return lr, hr


def dihedral(x: torch.Tensor, hflip: bool, vflip: bool, rot90: bool) -> torch.Tensor:
    """Apply left-right flip, top-bottom flip, then transpose (90-degree rotation with a flip)."""
    if hflip:
        x = x.flip(-1)
    if vflip:
        x = x.flip(-2)
    if rot90:
        x = x.transpose(-1, -2)
    return x


def random_dihedral(
    tensors: list[torch.Tensor], flip: bool, rot90: bool, generator: torch.Generator | None = None
) -> list[torch.Tensor]:
    """The same random flips/rotation on every tensor of the list (8 orientations with both)."""
    hflip = flip and randint(2, generator) == 1
    vflip = flip and randint(2, generator) == 1
    rot = rot90 and randint(2, generator) == 1
    return [dihedral(t, hflip, vflip, rot) for t in tensors]
