"""PSNR and SSIM (Wang et al. 2004, as MATLAB ``ssim_index``), batched, float64, any device."""

from __future__ import annotations

import functools

import numpy as np
import torch

from srcore.metrics.base import PerImageMetric
from srcore.metrics.prepare import YConvention, to_measured


def psnr(sr: torch.Tensor, hr: torch.Tensor, peak: float = 255.0) -> torch.Tensor:
    """Per-image PSNR in dB of NCHW float64 tensors in 0..peak (inf for identical images).

    On the CPU the squared error is summed by OpenCV's ``norm`` (one pass, no temporaries; exact
    for the integer levels of Y or 8-bit images, whatever the order)."""
    if sr.device.type == "cpu" and sr.dtype == hr.dtype == torch.float64:
        import cv2

        x, y = (t.detach().reshape(-1, *t.shape[-2:]).numpy() for t in (sr, hr))  # views of cropped maps
        sse = torch.tensor([cv2.norm(a, b, cv2.NORM_L2SQR) for a, b in zip(x, y)], dtype=torch.float64)
        mse = sse.reshape(sr.shape[0], -1).sum(dim=1) / sr[0].numel()
    else:
        mse = (sr - hr).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(peak**2 / mse)


@functools.lru_cache(maxsize=8)
def _gauss1d(size: int, sigma: float) -> torch.Tensor:
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2.0
    g = torch.exp(-(ax**2) / (2.0 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Gaussian filtering, 'valid' region (MATLAB ``filter2(w, x, 'valid')``), off the CPU: an
    FFT product, exact to ~1e-13, whose circular wrap-around only touches the border
    rows/columns that 'valid' discards (float64 ``conv2d`` has no fast kernel)."""
    h, w = x.shape[-2:]
    k = g.numel()
    spectrum = _kernel_spectrum(g, h, w, x.dtype, str(x.device))
    out = torch.fft.irfft2(torch.fft.rfft2(x) * spectrum, s=(h, w))
    return out[..., k - 1 :, k - 1 :]


@functools.lru_cache(maxsize=16)
def _kernel_spectrum(g: torch.Tensor, h: int, w: int, dtype: torch.dtype, device: str) -> torch.Tensor:
    """FFT of the flipped 2-D window at one image size (sets repeat sizes; cache a few)."""
    kernel = torch.outer(g, g).to(device=device, dtype=dtype).flip(0, 1)
    return torch.fft.rfft2(kernel, s=(h, w))


def ssim(
    sr: torch.Tensor, hr: torch.Tensor, peak: float = 255.0, win: int = 11, sigma: float = 1.5,
    k1: float = 0.01, k2: float = 0.03,
) -> torch.Tensor:
    """Per-image SSIM (mean over the valid map and over channels) of NCHW tensors, in float64.

    Four filtered maps instead of five: with s = x + y and d = x - y, and A = mu_s^2, B = mu_d^2,
    2 mu_x mu_y = (A - B) / 2, mu_x^2 + mu_y^2 = (A + B) / 2, and with the variances
    V_s = E[s^2] - A, V_d = E[d^2] - B, 2 cov_xy = (V_s - V_d) / 2, var_x + var_y = (V_s + V_d) / 2.
    """
    c, (h, w) = sr.shape[1], sr.shape[-2:]
    if min(h, w) < win:
        raise ValueError(f"SSIM needs at least {win}x{win} pixels after the border crop, got {h}x{w}")
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    g = _gauss1d(win, sigma)
    if sr.device.type == "cpu":
        x, y = (t.detach().to(torch.float64).reshape(-1, h, w).numpy() for t in (sr, hr))
        means = [_ssim_plane_cv2(a, b, g.numpy(), c1, c2) for a, b in zip(x, y)]
        return torch.tensor(means, dtype=torch.float64).reshape(-1, c).mean(dim=1)
    return _ssim_torch(sr.to(torch.float64), hr.to(torch.float64), g.to(sr.device), c1, c2)


def _ssim_torch(sr: torch.Tensor, hr: torch.Tensor, g: torch.Tensor, c1: float, c2: float) -> torch.Tensor:
    """``ssim`` on any device: the four maps filtered at once (``_filter_valid``), as tensors."""
    (n, c), (h, w) = sr.shape[:2], sr.shape[-2:]
    buf = torch.empty((n, 4 * c, h, w), dtype=sr.dtype, device=sr.device)
    s, d, ss, dd = buf.split(c, dim=1)
    torch.add(sr, hr, out=s)
    torch.sub(sr, hr, out=d)
    torch.mul(s, s, out=ss)
    torch.mul(d, d, out=dd)
    mu_s, mu_d, e_ss, e_dd = _filter_valid(buf, g).split(c, dim=1)
    a, b = mu_s * mu_s, mu_d * mu_d
    v_s, v_d = e_ss.sub_(a), e_dd.sub_(b)
    num = (a - b).mul_(0.5).add_(c1).mul_((v_s - v_d).mul_(0.5).add_(c2))
    den = a.add_(b).mul_(0.5).add_(c1).mul_(v_s.add_(v_d).mul_(0.5).add_(c2))
    return num.div_(den).flatten(1).mean(dim=1)


def _ssim_plane_cv2(x: np.ndarray, y: np.ndarray, taps: np.ndarray, c1: float, c2: float) -> float:
    """Mean SSIM of two float64 planes through OpenCV: separable filtering (``sepFilter2D``, ~5x
    faster than an FFT product on 500x500; the window is symmetric, so correlation ==
    convolution) and the map's arithmetic fused into ``addWeighted`` passes.

    By strips of about 32k map values with the window's halo: a strip's dozen temporaries stay
    in the cache (twice as fast as whole 1024x1024 maps streamed through memory, equal to 1e-16).
    """
    import cv2

    k = taps.size
    r = k // 2
    mh, mw = x.shape[0] - k + 1, x.shape[1] - k + 1
    rows = max(8, 2**15 // mw)

    def valid(p: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(p, cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT)[r:-r, r:-r]

    total = 0.0
    for top in range(0, mh, rows):
        xs, ys = x[top : top + rows + k - 1], y[top : top + rows + k - 1]
        s, d = cv2.add(xs, ys), cv2.subtract(xs, ys)
        mu_s, mu_d = valid(s), valid(d)
        a, b = cv2.multiply(mu_s, mu_s), cv2.multiply(mu_d, mu_d)
        v_s, v_d = cv2.subtract(valid(cv2.multiply(s, s)), a), cv2.subtract(valid(cv2.multiply(d, d)), b)
        num = cv2.multiply(cv2.addWeighted(a, 0.5, b, -0.5, c1), cv2.addWeighted(v_s, 0.5, v_d, -0.5, c2))
        den = cv2.multiply(cv2.addWeighted(a, 0.5, b, 0.5, c1), cv2.addWeighted(v_s, 0.5, v_d, 0.5, c2))
        total += float(cv2.divide(num, den).sum())
    return total / (mh * mw)


class _Measured(PerImageMetric):
    """PSNR/SSIM: a pure function of the measured (Y, cropped, 0..255) images.

    ``srcore eval`` measures such metrics in worker threads (``thread_safe``), prepares each
    image once for all metrics with the same ``prep_key`` and records the values in order
    with ``add``.
    """

    thread_safe = True

    def __init__(self, crop_border: int = 0, y_channel: bool = False, y_convention: YConvention = "matlab") -> None:
        self.crop_border, self.y_channel, self.y_convention = crop_border, y_channel, y_convention
        super().__init__()

    @property
    def prep_key(self) -> tuple[int, bool, str]:
        """Metrics with equal keys see the same measured images."""
        return self.crop_border, self.y_channel, self.y_convention

    def prep(self, x: torch.Tensor) -> torch.Tensor:
        """NCHW [0, 1] -> what ``from_measured`` compares."""
        return self._prep(x)

    def from_measured(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        """Per-image values of already prepared images; stateless, safe in any thread."""
        raise NotImplementedError

    def per_image(self, sr: torch.Tensor, hr: torch.Tensor | None) -> torch.Tensor:
        assert hr is not None, f"{self.name.upper()} needs a reference"
        return self.from_measured(self._prep(sr), self._prep(hr))

    @property
    def min_size(self) -> int:
        """Smallest image side measurable: something must be left after the border crop."""
        return 2 * self.crop_border + 1

    def _prep(self, x: torch.Tensor) -> torch.Tensor:
        return to_measured(x, crop_border=self.crop_border, y_channel=self.y_channel, y_convention=self.y_convention)


class PSNR(_Measured):
    """PSNR in dB (peak 255 on 0..255 values), averaged over images."""

    name = "psnr"
    higher_is_better = True

    def from_measured(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return psnr(sr, hr)


class SSIM(_Measured):
    """Wang's SSIM, Gaussian window 11x11 sigma 1.5, K = (0.01, 0.03), L = 255, valid region."""

    name = "ssim"
    higher_is_better = True
    window = 11

    @property
    def min_size(self) -> int:
        """The 11x11 window must fit in what the border crop leaves."""
        return 2 * self.crop_border + self.window

    def from_measured(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return ssim(sr, hr, win=self.window)
