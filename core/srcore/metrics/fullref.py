"""PSNR and SSIM (Wang et al. 2004, as MATLAB ``ssim_index``), batched, float64, any device."""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from srcore.metrics.base import PerImageMetric
from srcore.metrics.prepare import YConvention, to_measured


def psnr(sr: torch.Tensor, hr: torch.Tensor, peak: float = 255.0) -> torch.Tensor:
    """Per-image PSNR in dB of NCHW float64 tensors in 0..peak (inf for identical images)."""
    mse = (sr - hr).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(peak**2 / mse)


@functools.lru_cache(maxsize=8)
def _gauss1d(size: int, sigma: float) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(ax**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering, 'valid' region (MATLAB ``filter2(w, x, 'valid')``)."""
    c = x.shape[1]
    k = g.to(device=x.device, dtype=x.dtype)
    x = F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)


def ssim(
    sr: torch.Tensor, hr: torch.Tensor, peak: float = 255.0, win: int = 11, sigma: float = 1.5,
    k1: float = 0.01, k2: float = 0.03,
) -> torch.Tensor:
    """Per-image SSIM (mean over the valid map and over channels) of NCHW float64 tensors."""
    c, (h, w) = sr.shape[1], sr.shape[-2:]
    if min(h, w) < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win} after cropping, got {h}x{w}")
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    # one grouped convolution for the five moments of every channel
    stack = torch.cat([sr, hr, sr * sr, hr * hr, sr * hr], dim=1)
    m = _filter_valid(stack, _gauss1d(win, sigma))
    mu1, mu2, s11, s22, s12 = m.split(c, dim=1)
    mu1_mu2, mu1_sq, mu2_sq = mu1 * mu2, mu1 * mu1, mu2 * mu2
    num = (2 * mu1_mu2 + c1) * (2 * (s12 - mu1_mu2) + c2)
    den = (mu1_sq + mu2_sq + c1) * ((s11 - mu1_sq) + (s22 - mu2_sq) + c2)
    return (num / den).flatten(1).mean(dim=1)


class _Measured(PerImageMetric):
    def __init__(self, crop_border: int = 0, y_channel: bool = False, y_convention: YConvention = "matlab") -> None:
        self.crop_border, self.y_channel, self.y_convention = crop_border, y_channel, y_convention
        super().__init__()

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return to_measured(x, crop_border=self.crop_border, y_channel=self.y_channel, y_convention=self.y_convention)


class PSNR(_Measured):
    """PSNR in dB (peak 255 on 0..255 values), averaged over images."""

    name = "psnr"
    higher_is_better = True

    def per_image(self, sr: torch.Tensor, hr: torch.Tensor | None) -> torch.Tensor:
        assert hr is not None, "PSNR needs a reference"
        return psnr(self._prep(sr), self._prep(hr))


class SSIM(_Measured):
    """Wang's SSIM, Gaussian window 11x11 sigma 1.5, K = (0.01, 0.03), L = 255, valid region."""

    name = "ssim"
    higher_is_better = True

    def per_image(self, sr: torch.Tensor, hr: torch.Tensor | None) -> torch.Tensor:
        assert hr is not None, "SSIM needs a reference"
        return ssim(self._prep(sr), self._prep(hr))
