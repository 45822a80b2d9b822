"""NIQE (Mittal, Soundararajan, Bovik 2013), following the MATLAB release, vectorised over blocks.

On Y (MATLAB rgb2ycbcr, rounded) in 0..255 with the border cropped: 96x96 blocks without
overlap; at two scales (the second is MATLAB imresize by 0.5) the MSCN image
(I - mu) / (sigma + 1) with a 7x7 Gaussian (replicate borders); per block an AGGD fit of the
MSCN values and of their products with 4 circularly shifted neighbours (18 features per scale);
NIQE = sqrt((mu_p - mu_d)^T pinv((C_p + C_d) / 2) (mu_p - mu_d)) against the pristine model.

The pristine model (``mu_pris_param``, ``cov_pris_param``, ``gaussian_window``) is the MATLAB
release's ``modelparameters.mat``. No PyPI package we depend on ships it; the ``basicsr`` sdist
does (``basicsr/metrics/niqe_pris_params.npz``), so it is read from an installed ``basicsr``
(``pip install --no-deps basicsr``; only the data file is read, nothing is imported) or from an
explicit ``params`` path (that ``.npz`` or MATLAB's ``modelparameters.mat``).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from srcore.data.resize import imresize
from srcore.metrics.base import PerImageMetric
from srcore.metrics.prepare import to_measured
from srcore.metrics.weights import MissingWeightsError

BLOCK = 96
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


class MissingNIQEParams(MissingWeightsError):
    """The NIQE pristine model is not available."""


def basicsr_params_path() -> Path | None:
    spec = importlib.util.find_spec("basicsr")
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(next(iter(spec.submodule_search_locations))) / "metrics" / "niqe_pris_params.npz"
    return p if p.is_file() else None


def matlab_gaussian(size: int = 7, sigma: float = 7 / 6) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', size, sigma)``."""
    ax = np.arange(size) - (size - 1) / 2
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * sigma**2))
    g[g < np.finfo(float).eps * g.max()] = 0
    return g / g.sum()


@lru_cache(maxsize=4)
def load_params(path: str | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mu (36,), cov (36, 36), gaussian window (7, 7)) in float64."""
    p = Path(path).expanduser() if path else basicsr_params_path()
    if p is None or not p.is_file():
        where = f"not found at {p}" if path else "not found"
        raise MissingNIQEParams(
            f"NIQE's pristine model parameters are {where}. They are MATLAB's modelparameters.mat from the NIQE "
            "release; install them with `pip install --no-deps basicsr` (it ships basicsr/metrics/"
            "niqe_pris_params.npz, which srcore reads without importing basicsr) or give the metric option "
            "'params' (that .npz, or modelparameters.mat)."
        )
    if p.suffix == ".mat":
        from scipy.io import loadmat

        m = loadmat(p)
        mu, cov, win = m["mu_prisparam"], m["cov_prisparam"], matlab_gaussian()
    else:
        with np.load(p) as d:
            mu, cov, win = d["mu_pris_param"], d["cov_pris_param"], d["gaussian_window"]
    as_t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    return as_t(mu).flatten(), as_t(cov), as_t(win)


_GAM = torch.arange(0.2, 10.001, 0.001, dtype=torch.float64)
_R_GAM = torch.exp(2 * torch.lgamma(2 / _GAM) - torch.lgamma(1 / _GAM) - torch.lgamma(3 / _GAM))


def aggd(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """AGGD (alpha, beta_l, beta_r) of each row of x (B, P), by the moment-matching grid search."""
    neg, pos = x < 0, x > 0
    left = torch.sqrt((x * x * neg).sum(1) / neg.sum(1))
    right = torch.sqrt((x * x * pos).sum(1) / pos.sum(1))
    gammahat = left / right
    rhat = x.abs().mean(1) ** 2 / (x * x).mean(1)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    r_gam = _R_GAM.to(x.device)
    alpha = _GAM.to(x.device)[torch.argmin((r_gam[None, :] - rhatnorm[:, None]) ** 2, dim=1)]
    ratio = torch.exp(0.5 * (torch.lgamma(1 / alpha) - torch.lgamma(3 / alpha)))
    return alpha, left * ratio, right * ratio


def block_features(blocks: torch.Tensor) -> torch.Tensor:
    """18 NIQE features of each block (B, h, w)."""
    flat = blocks.flatten(1)
    a, bl, br = aggd(flat)
    feats = [a, (bl + br) / 2]
    for dy, dx in SHIFTS:
        prod = (blocks * torch.roll(blocks, shifts=(dy, dx), dims=(1, 2))).flatten(1)
        a, bl, br = aggd(prod)
        mean = (br - bl) * torch.exp(torch.lgamma(2 / a) - torch.lgamma(1 / a))
        feats += [a, mean, bl, br]
    return torch.stack(feats, dim=1)


def _smooth(img: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Correlation with a small window, replicate borders (scipy ``convolve(mode='nearest')``)."""
    k = win.shape[-1]
    p = k // 2
    h, w = img.shape[-2:]
    xp = F.pad(img[None, None], (p, p, p, p), mode="replicate")[0, 0]
    out = torch.zeros_like(img)
    wf = win.flip(-1, -2)  # convolution = correlation with the flipped window
    for i in range(k):
        for j in range(k):
            out += wf[i, j] * xp[i : i + h, j : j + w]
    return out


def niqe_y(img: torch.Tensor, mu_p: torch.Tensor, cov_p: torch.Tensor, win: torch.Tensor) -> float:
    """NIQE of one (H, W) float64 Y image in 0..255 (already cropped and rounded)."""
    nh, nw = img.shape[0] // BLOCK, img.shape[1] // BLOCK
    if nh < 1 or nw < 1:
        raise ValueError(f"NIQE needs images of at least {BLOCK}x{BLOCK} (after cropping), got {tuple(img.shape)}")
    img = img[: nh * BLOCK, : nw * BLOCK]
    win = win.to(img)
    feats = []
    for scale in (1, 2):
        mu = _smooth(img, win)
        sigma = torch.sqrt((_smooth(img * img, win) - mu * mu).abs())
        mscn = (img - mu) / (sigma + 1)
        b = BLOCK // scale
        blocks = mscn[: nh * b, : nw * b].reshape(nh, b, nw, b).permute(0, 2, 1, 3).reshape(-1, b, b)
        feats.append(block_features(blocks))
        if scale == 1:
            img = imresize((img / 255.0)[None, None], 0.5)[0, 0] * 255.0
    d = torch.cat(feats, dim=1)
    valid = ~torch.isnan(d).any(dim=1)
    mu_d = torch.nanmean(d, dim=0)
    kept = d[valid]
    cov_d = torch.cov(kept.T) if kept.shape[0] > 1 else torch.zeros_like(cov_p)
    diff = (mu_p.to(d) - mu_d)[None]
    inv = torch.linalg.pinv((cov_p.to(d) + cov_d) / 2)
    return float(torch.sqrt(diff @ inv @ diff.T).squeeze())


class NIQE(PerImageMetric):
    """No-reference NIQE on Y (lower is better); ``hr`` is ignored."""

    name = "niqe"
    higher_is_better = False

    def __init__(self, crop_border: int = 0, params: str | None = None) -> None:
        self.crop_border = crop_border
        self.mu, self.cov, self.win = load_params(params)
        super().__init__()

    def per_image(self, sr: torch.Tensor, hr: torch.Tensor | None) -> torch.Tensor:
        y = to_measured(sr, crop_border=self.crop_border, y_channel=True, y_convention="matlab")
        return torch.tensor([niqe_y(img[0], self.mu, self.cov, self.win) for img in y], dtype=torch.float64)


