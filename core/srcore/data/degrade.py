"""HR -> LR degradations (tensor in, tensor out), the implementations behind ``core:*`` ids.

Every degradation is a callable ``(hr, generator=None) -> lr`` on NCHW float tensors in [0, 1]
with a ``scale`` attribute (1 for blur/noise/JPEG without downsampling). Random parameters are
drawn from ``generator`` (a ``torch.Generator``) per image, so a seeded generator gives the
same LR images on every run and every machine; ``Chain`` owns a seeded generator when given a
seed. ``quantize=True`` rounds the result to 8 bits, as storing the LR image as PNG would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from srcore.data.color import quantize as _quantize
from srcore.data.resize import imresize

Degradation = Callable[..., torch.Tensor]


def _check_batch(hr: torch.Tensor) -> torch.Tensor:
    if hr.dim() == 3:
        return hr.unsqueeze(0)
    if hr.dim() != 4:
        raise ValueError(f"a degradation takes (N,)C,H,W tensors, got shape {tuple(hr.shape)}")
    return hr


def _lr_size(hr: torch.Tensor, scale: int) -> tuple[int, int]:
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(
            f"HR size {h}x{w} is not a multiple of the scale {scale}; crop it first "
            "(srcore.data.transforms.mod_crop)"
        )
    return h // scale, w // scale


def _finish(x: torch.Tensor, quantize: bool, squeeze: bool) -> torch.Tensor:
    x = _quantize(x) if quantize else x.clamp(0, 1)
    return x[0] if squeeze else x


def _uniform(lo: float, hi: float | None, generator: torch.Generator | None) -> float:
    if hi is None or hi == lo:
        return float(lo)
    return float(lo + (hi - lo) * torch.rand((), generator=generator, dtype=torch.float64))


class BicubicMatlab:
    """MATLAB ``imresize(hr, 1/scale, 'bicubic')`` (antialiased): the benchmark LR."""

    def __init__(self, scale: int, quantize: bool = True) -> None:
        self.scale, self.quantize = scale, quantize

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(hr)
        lr = imresize(x, 1.0 / self.scale, size=_lr_size(x, self.scale))
        return _finish(lr, self.quantize, hr.dim() == 3)


class BicubicCV:
    """OpenCV ``resize(INTER_CUBIC)``: a = -0.75, no antialiasing (GFLmser's degradation)."""

    def __init__(self, scale: int, quantize: bool = True) -> None:
        self.scale, self.quantize = scale, quantize

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        import cv2

        x = _check_batch(hr)
        h, w = _lr_size(x, self.scale)
        n, c = x.shape[:2]
        arr = x.detach().float().cpu().reshape(n * c, *x.shape[-2:]).permute(1, 2, 0).numpy()
        # OpenCV resizes at most 4 channels per call reliably for cubic; go channel by channel.
        out = np.stack([cv2.resize(arr[:, :, i], (w, h), interpolation=cv2.INTER_CUBIC) for i in range(n * c)])
        lr = torch.from_numpy(out).reshape(n, c, h, w).to(device=x.device, dtype=x.dtype)
        return _finish(lr, self.quantize, hr.dim() == 3)


class BicubicPIL:
    """PIL ``Image.resize(BICUBIC)`` on 8-bit images: antialiased, a = -0.5, uint8 result.

    This is what the seed collection's data_aug.py does; the input is rounded to 8 bits first,
    as PIL works on uint8 images.
    """

    def __init__(self, scale: int, quantize: bool = True) -> None:
        self.scale, self.quantize = scale, quantize

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(hr)
        h, w = _lr_size(x, self.scale)
        out = torch.stack([pil_resize(img, (h, w), "bicubic") for img in x]).to(device=x.device, dtype=x.dtype)
        return _finish(out, self.quantize, hr.dim() == 3)


PIL_FILTERS = ("bicubic", "bilinear", "nearest", "antialias")


def pil_resize(img: torch.Tensor, size: tuple[int, int], method: str) -> torch.Tensor:
    """Resize one (C,H,W) [0, 1] image with PIL on uint8 data; ``size`` is (height, width)."""
    from PIL import Image

    filters = {
        "bicubic": Image.Resampling.BICUBIC,
        "bilinear": Image.Resampling.BILINEAR,
        "nearest": Image.Resampling.NEAREST,
        "antialias": Image.Resampling.LANCZOS,  # PIL's old ANTIALIAS is LANCZOS
    }
    if method not in filters:
        raise ValueError(f"unknown PIL resampling '{method}'; choose from {', '.join(PIL_FILTERS)}")
    from srcore.data.io import to_uint8

    arr = to_uint8(img.detach().float().cpu()).permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        pil = Image.fromarray(arr[:, :, 0], mode="L")
    else:
        pil = Image.fromarray(arr, mode="RGB")
    out = np.asarray(pil.resize((size[1], size[0]), filters[method]))
    if out.ndim == 2:
        out = out[:, :, None]
    return torch.from_numpy(out.copy()).permute(2, 0, 1).float() / 255.0


def gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Normalised (size, size) Gaussian; anisotropic when sigma_y differs, rotated by theta (rad)."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    r = (size - 1) / 2.0
    ax = torch.arange(size, dtype=torch.float64) - r
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    c, s = math.cos(theta), math.sin(theta)
    u = c * xx + s * yy
    v = -s * xx + c * yy
    k = torch.exp(-0.5 * ((u / sigma_x) ** 2 + (v / sigma_y) ** 2))
    return (k / k.sum()).to(dtype)


class Blur:
    """Gaussian blur (isotropic or anisotropic, random within ranges), then optional s-fold
    decimation (the "BD" degradation: blur, keep every s-th pixel)."""

    def __init__(
        self,
        scale: int = 1,
        kernel_size: int = 21,
        sigma: float = 1.6,
        sigma_max: float | None = None,
        sigma_y: float | None = None,
        sigma_y_max: float | None = None,
        angle: float = 0.0,
        angle_max: float | None = None,
        quantize: bool = False,
    ) -> None:
        self.scale, self.kernel_size, self.quantize = scale, kernel_size, quantize
        self.sigma, self.sigma_max = sigma, sigma_max
        self.sigma_y, self.sigma_y_max = sigma_y, sigma_y_max
        self.angle, self.angle_max = angle, angle_max

    def kernel(self, generator: torch.Generator | None = None) -> torch.Tensor:
        sx = _uniform(self.sigma, self.sigma_max, generator)
        sy = sx if self.sigma_y is None else _uniform(self.sigma_y, self.sigma_y_max, generator)
        theta = math.radians(_uniform(self.angle, self.angle_max, generator))
        return gaussian_kernel(self.kernel_size, sx, sy, theta)

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(hr)
        if self.scale > 1:
            _lr_size(x, self.scale)
        c = x.shape[1]
        pad = self.kernel_size // 2
        outs = []
        for img in x:
            k = self.kernel(generator).to(device=x.device, dtype=x.dtype)
            weight = k.expand(c, 1, *k.shape).contiguous()
            padded = F.pad(img.unsqueeze(0), (pad, pad, pad, pad), mode="reflect")
            outs.append(F.conv2d(padded, weight, groups=c))
        out = torch.cat(outs)
        if self.scale > 1:
            out = out[..., :: self.scale, :: self.scale]
        return _finish(out, self.quantize, hr.dim() == 3)


class Noise:
    """Additive Gaussian noise with sigma in 0..255 units (random in [sigma, sigma_max])."""

    scale = 1

    def __init__(
        self, sigma: float = 10.0, sigma_max: float | None = None, gray: bool = False, clip: bool = True,
        quantize: bool = False,
    ) -> None:
        self.sigma, self.sigma_max, self.gray, self.clip, self.quantize = sigma, sigma_max, gray, clip, quantize

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        x = _check_batch(hr)
        outs = []
        for img in x:
            sigma = _uniform(self.sigma, self.sigma_max, generator) / 255.0
            shape = (1, *img.shape[1:]) if self.gray else tuple(img.shape)
            noise = torch.randn(shape, generator=generator, dtype=torch.float64).to(device=x.device, dtype=x.dtype)
            outs.append(img + sigma * noise)
        out = torch.stack(outs)
        if self.quantize:
            return _finish(out, True, hr.dim() == 3)
        out = out.clamp(0, 1) if self.clip else out
        return out[0] if hr.dim() == 3 else out


class Jpeg:
    """JPEG compression at quality q (random integer in [quality, quality_max]), via OpenCV."""

    scale = 1

    def __init__(self, quality: int = 30, quality_max: int | None = None) -> None:
        self.quality, self.quality_max = quality, quality_max

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        import cv2

        from srcore.data.io import array_to_tensor, tensor_to_array

        x = _check_batch(hr)
        outs = []
        for img in x:
            q = self.quality
            if self.quality_max is not None and self.quality_max > self.quality:
                q = int(torch.randint(self.quality, self.quality_max + 1, (), generator=generator))
            ok, buf = cv2.imencode(".jpg", tensor_to_array(img), [cv2.IMWRITE_JPEG_QUALITY, q])
            if not ok:
                raise RuntimeError("OpenCV JPEG encoding failed")
            dec = array_to_tensor(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED))
            outs.append(dec[: img.shape[0]] if img.shape[0] == 1 else dec)
        out = torch.stack(outs).to(device=x.device, dtype=x.dtype)
        return out[0] if hr.dim() == 3 else out


class Chain:
    """Apply degradations in order; ``seed`` makes the random parameters reproducible."""

    def __init__(self, steps: Sequence[Degradation], seed: int | None = None) -> None:
        self.steps = list(steps)
        self.seed = seed
        self.scale = int(np.prod([getattr(s, "scale", 1) for s in self.steps])) if self.steps else 1
        self._generator: torch.Generator | None = None
        if seed is not None:
            self._generator = torch.Generator().manual_seed(seed)

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        gen = generator if generator is not None else self._generator
        x = hr
        for step in self.steps:
            x = step(x, generator=gen)
        return x
