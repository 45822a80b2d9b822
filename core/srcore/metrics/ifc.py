"""Information Fidelity Criterion (Sheikh, Bovik, de Veciana 2005), as the reference ``ifcvec.m``.

The reference code (LIVE, used by SelfExSR/seed004 ``compute_difference.m``) works on Y in
0..255 with the border cropped:

* steerable pyramid ``buildSpyr(im, 4, 'sp5Filters', 'reflect1')`` (6 orientations, 4 levels);
  the subbands used are orientations 1 and 4 (0 and 90 degrees) of every level;
* per subband, cropped to a multiple of M = 3: distortion channel (gain g, noise variance vv)
  from local moments in a (2^lev + 1)^2 box window evaluated on a stride-3 grid, where
  lev = ceil((wtree_index - 1) / 6) as the reference computes it;
* reference GSM: covariance C_U of all overlapping 3x3 blocks, S field s = x^T C_U^-1 x / 9 on
  the non-overlapping blocks, eigenvalues lambda of C_U;
* IFC = sum over subbands, blocks and eigenvalues of log2(1 + g^2 s lambda / (vv + 1e-10)),
  after dropping ceil(((2^lev + 1) - 1) / 2 / 3) blocks at each border, divided by the number of
  image pixels.

Everything is a convolution or a small batched linear-algebra step (no Python loops over
blocks). The pyramid filters are the sp5 filters of matlabPyrTools, read from ``pyrtools``.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from srcore.metrics.base import PerImageMetric
from srcore.metrics.prepare import YConvention, to_measured

M = 3
LEVELS = 4
ORIENTATIONS = (0, 3)  # bands 1 and 4 (1-based) of the 6
TOL = 1e-15


@functools.lru_cache(maxsize=1)
def sp5_filters() -> dict[str, torch.Tensor]:
    """lo0filt, lofilt and the oriented band filters (MATLAB column-major layout), float64."""
    try:
        from pyrtools.pyramids.filters import parse_filter
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ImportError("IFC needs the 'pyrtools' package for the sp5 steerable-pyramid filters") from exc
    f = parse_filter("sp5_filters", normalize=False)
    size = round(math.sqrt(f["bfilts"].shape[0]))
    bands = [torch.as_tensor(f["bfilts"][:, b].reshape(size, size).T.copy()) for b in range(f["bfilts"].shape[1])]
    return {
        "lo0filt": torch.as_tensor(f["lo0filt"]).double(),
        "lofilt": torch.as_tensor(f["lofilt"]).double(),
        "bfilts": torch.stack(bands).double(),
    }


def corr_reflect(x: torch.Tensor, filt: torch.Tensor, step: int = 1, start: int = 0) -> torch.Tensor:
    """matlabPyrTools ``corrDn(x, filt, 'reflect1', [step step], [start start])`` (0-based start).

    x: (N, 1, H, W); filt: (K, h, w) odd-sized -> (N, K, ceil((H - start) / step), ...).
    Correlation of the reflect-padded image, computed by FFT in float64 (agrees with direct
    summation to ~1e-12 relative, and float64 ``conv2d`` is very slow on CPU).
    """
    kh, kw = filt.shape[-2:]
    ph, pw = kh // 2, kw // 2
    h, w = x.shape[-2:]
    if ph >= h or pw >= w:
        raise ValueError(f"IFC: image of {h}x{w} is too small for its {kh}x{kw} pyramid filters")
    xp = F.pad(x, (pw, pw, ph, ph), mode="reflect")
    size = xp.shape[-2:]
    kernel = torch.fft.rfft2(filt.to(device=x.device, dtype=x.dtype).flip(-1, -2), s=size)
    full = torch.fft.irfft2(torch.fft.rfft2(xp) * kernel.unsqueeze(0), s=size)
    return full[..., kh - 1 + start : kh - 1 + h : step, kw - 1 + start : kw - 1 + w : step]


def pyramid_subbands(y: torch.Tensor) -> list[tuple[int, torch.Tensor]]:
    """[(lev, subbands (N, 2, h, w))] from fine to coarse, with the reference's ``lev`` per level."""
    f = sp5_filters()
    bfilts = f["bfilts"][list(ORIENTATIONS)]
    lo = corr_reflect(y, f["lo0filt"][None])
    out = []
    for level in range(LEVELS):
        out.append((LEVELS - level, corr_reflect(lo, bfilts)))
        lo = corr_reflect(lo, f["lofilt"][None], step=2)
    return out


def _box_moments(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sum over a size x size box, reflect1 edges, on the stride-3 grid starting at 1 (0-based).

    Separable: the column sums are taken on every 3rd row, then the row sums on every 3rd column.
    """
    h, w = x.shape[-2:]
    pad = size // 2
    if pad >= h or pad >= w:
        raise ValueError(f"IFC: subband of {h}x{w} is too small for a {size}x{size} window")
    n, c = x.shape[:2]
    xp = F.pad(x.reshape(n * c, 1, h, w), (pad, pad, pad, pad), mode="reflect")
    start = M // 2
    oh, ow = -(-(h - start) // M), -(-(w - start) // M)
    rows = sum(xp[..., start + i : start + i + (oh - 1) * M + 1 : M, :] for i in range(size))
    cols = sum(rows[..., start + j : start + j + (ow - 1) * M + 1 : M] for j in range(size))
    return cols.reshape(n, c, oh, ow)


def distortion_channel(ref: torch.Tensor, dist: torch.Tensor, lev: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gain g and noise variance vv per 3x3 block (reference ``distsub_est_m``)."""
    size = 2**lev + 1
    area = float(size * size)
    mom = _box_moments(torch.cat([ref, dist, ref * dist, ref * ref, dist * dist], dim=1), size)
    c = ref.shape[1]
    sx, sy, sxy, sxx, syy = mom.split(c, dim=1)
    mean_x, mean_y = sx / area, sy / area
    cov_xy = sxy - area * mean_x * mean_y
    ss_x = (sxx - area * mean_x**2).clamp_min(0)
    ss_y = (syy - area * mean_y**2).clamp_min(0)
    g = cov_xy / (ss_x + TOL)
    vv = (ss_y - g * cov_xy) / area
    small_x = ss_x < TOL
    g = torch.where(small_x, torch.zeros_like(g), g)
    vv = torch.where(small_x, ss_y, vv)
    small_y = ss_y < TOL
    g = torch.where(small_y, torch.zeros_like(g), g)
    vv = torch.where(small_y, torch.zeros_like(vv), vv)
    neg = g < 0
    vv = torch.where(neg, ss_y, vv)
    g = torch.where(neg, torch.zeros_like(g), g)
    vv = vv.clamp_min(TOL)
    return g, vv


def reference_gsm(ref: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """S field (N, C, h/3, w/3) and eigenvalues of C_U (N, C, 9) (reference ``refparams_vecgsm``)."""
    n, c, h, w = ref.shape
    # all overlapping 3x3 blocks -> (N, C, 9, P); vector index = col_offset * 3 + row_offset
    blocks = F.unfold(ref.reshape(n * c, 1, h, w), M).reshape(n, c, M, M, -1)
    vecs = blocks.transpose(2, 3).reshape(n, c, M * M, -1)
    centred = vecs - vecs.mean(dim=-1, keepdim=True)
    cu = centred @ centred.transpose(-1, -2) / vecs.shape[-1]
    tiles = F.unfold(ref.reshape(n * c, 1, h, w), M, stride=M).reshape(n, c, M, M, -1)
    tiles = tiles.transpose(2, 3).reshape(n, c, M * M, -1)
    s = (torch.linalg.solve(cu, tiles) * tiles).sum(dim=-2) / (M * M)
    lam = torch.linalg.eigvalsh(cu)
    return s.reshape(n, c, h // M, w // M), lam


def ifc(ref: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    """Per-image IFC of (N, 1, H, W) float64 Y images in 0..255 (reference first)."""
    if ref.shape[1] != 1:
        raise ValueError(f"IFC is defined on one channel (Y); got {ref.shape[1]} channels")
    total = torch.zeros(ref.shape[0], dtype=torch.float64, device=ref.device)
    n = ref.shape[0]
    for lev, both in pyramid_subbands(torch.cat([ref, dist])):  # one pass for both images
        sub_r, sub_d = both[:n], both[n:]
        h, w = (sub_r.shape[-2] // M) * M, (sub_r.shape[-1] // M) * M
        sub_r, sub_d = sub_r[..., :h, :w], sub_d[..., :h, :w]
        g, vv = distortion_channel(sub_r, sub_d, lev)
        s, lam = reference_gsm(sub_r)
        off = math.ceil(((2**lev + 1) - 1) / 2 / M)
        crop = (slice(None), slice(None), slice(off, -off), slice(off, -off))
        g, vv, s = g[crop], vv[crop], s[crop]
        snr = (g * g * s / (vv + 1e-10)).unsqueeze(-1) * lam[:, :, None, None, :]
        total += torch.log2(1 + snr).flatten(1).sum(dim=1)
    return total / (ref.shape[-2] * ref.shape[-1])


class IFC(PerImageMetric):
    """IFC on Y (0..255), reference ``ifcvec.m``; higher is better."""

    name = "ifc"
    higher_is_better = True

    def __init__(self, crop_border: int = 0, y_channel: bool = True, y_convention: YConvention = "matlab") -> None:
        self.crop_border, self.y_channel, self.y_convention = crop_border, y_channel, y_convention
        super().__init__()

    def per_image(self, sr: torch.Tensor, hr: torch.Tensor | None) -> torch.Tensor:
        assert hr is not None, "IFC needs a reference"
        kw = {"crop_border": self.crop_border, "y_channel": self.y_channel, "y_convention": self.y_convention}
        ref, dist = to_measured(hr, **kw), to_measured(sr, **kw)
        if ref.shape[1] != 1:
            raise ValueError("IFC needs one channel: set y_channel=True for RGB images")
        return ifc(ref, dist)
