"""Super-resolve images with any registered model: colour space, pre-upsampling, tiling, ensemble.

``super_resolve`` hides what differs between models (``ModelInfo``):

* Y-channel models: RGB -> YCbCr (BT.601, MATLAB), the model runs on Y, Cb/Cr come from the
  MATLAB-bicubic upsampled input;
* pre-upsampled models (SRCNN, VDSR): the input is MATLAB-bicubic upsampled, kept in float;
* size requirements: inputs are reflect-padded to ``size_multiple``/``min_size`` and cropped back;
* tiling: overlapping tiles with feathered (linear-ramp) blending; the full image stays on the
  CPU and only one tile at a time is on the device, so device memory is bounded by the tile;
* x8 self-ensemble: the 8 dihedral transforms averaged in float, clamped once at the end;
* condition maps (FxSR's ``t``): a scalar or a per-pixel map at LR size, tiled with the input.

Without ``tile``, an out-of-memory error retries with tiles (512, 256, ... 64).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from srcore.registry import ModelInfo

Forward = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@dataclass
class Upscaler:
    """A forward function and the model description (used by validation during training)."""

    forward: Forward
    info: ModelInfo
    scale: int


def as_upscaler(model: Any) -> Upscaler:
    if isinstance(model, Upscaler):
        return model
    module: nn.Module = model.module

    def forward(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return module(x) if cond is None else module(x, cond)

    return Upscaler(forward, model.info, model.scale)


def _device_of(model: Any) -> torch.device:
    module = getattr(model, "module", None)
    if isinstance(module, nn.Module):
        for p in module.parameters():
            return p.device
    return torch.device("cpu")


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def condition_map(cond: float | torch.Tensor | None, lr: torch.Tensor) -> torch.Tensor | None:
    """A (N,1,h,w) map at LR size from a scalar or a (h,w)/(1,h,w)/(N,1,h,w) map."""
    if cond is None:
        return None
    n, _, h, w = lr.shape
    if not isinstance(cond, torch.Tensor):
        return torch.full((n, 1, h, w), float(cond), dtype=lr.dtype)
    c = cond.to(lr.dtype)
    while c.dim() < 4:
        c = c.unsqueeze(0)
    if c.shape[-2:] != (h, w):
        c = F.interpolate(c, size=(h, w), mode="bilinear", align_corners=False)
    return c.expand(n, 1, h, w).contiguous()


@torch.no_grad()
def super_resolve(
    model: Any,
    lr_rgb: torch.Tensor,
    cond: float | torch.Tensor | None = None,
    tile: int | None = None,
    self_ensemble: bool = False,
    overlap: int | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """RGB [0,1] LR image(s) ``(3,h,w)`` or ``(N,3,h,w)`` -> RGB SR ``(N,3,sh,sw)`` clamped to [0,1]."""
    from srcore.data.color import rgb_to_ycbcr, ycbcr_to_rgb
    from srcore.data.resize import imresize

    up = as_upscaler(model)
    info, s = up.info, up.scale
    dev = torch.device(device) if device is not None else _device_of(model)
    x = lr_rgb.unsqueeze(0) if lr_rgb.dim() == 3 else lr_rgb
    x = x.float().cpu()
    c = condition_map(cond, x)
    chroma = None
    if info.in_channels == 1:
        ycc = rgb_to_ycbcr(x)
        x, chroma = ycc[:, :1], ycc[:, 1:]
    net_scale = s
    if info.pre_upsampled:
        x, net_scale = imresize(x, scale=s), 1
        if c is not None:
            c = F.interpolate(c, size=x.shape[-2:], mode="nearest")
    out = _ensemble(up.forward, x, c, net_scale, info, tile, overlap, dev, self_ensemble)
    if chroma is not None:
        cbcr = imresize(chroma, size=out.shape[-2:])
        out = ycbcr_to_rgb(torch.cat([out, cbcr], dim=1))
    return out.clamp_(0, 1)


def _ensemble(fwd: Forward, x: torch.Tensor, c: torch.Tensor | None, s: int, info: ModelInfo,
              tile: int | None, overlap: int | None, dev: torch.device, self_ensemble: bool) -> torch.Tensor:
    if not self_ensemble:
        return _run_with_oom_retry(fwd, x, c, s, info, tile, overlap, dev)
    acc = None
    for k in range(8):
        xt = _dihedral(x, k)
        ct = None if c is None else _dihedral(c, k)
        y = _dihedral_inv(_run_with_oom_retry(fwd, xt, ct, s, info, tile, overlap, dev), k)
        acc = y if acc is None else acc.add_(y)
    assert acc is not None
    return acc.div_(8)


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    if k >= 4:
        x = x.flip(-1)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _dihedral_inv(x: torch.Tensor, k: int) -> torch.Tensor:
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    return x.flip(-1) if k >= 4 else x


def _run_with_oom_retry(fwd: Forward, x: torch.Tensor, c: torch.Tensor | None, s: int, info: ModelInfo,
                        tile: int | None, overlap: int | None, dev: torch.device) -> torch.Tensor:
    if tile is not None or info.fixed_size is not None:
        return run_tiled(fwd, x, c, s, info, tile or info.fixed_size, overlap, dev)  # type: ignore[arg-type]
    try:
        return _run_padded(fwd, x, c, s, info, dev)
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not _is_oom(exc):
            raise
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    size = 512
    while size >= max(x.shape[-2:]) and size > 64:
        size //= 2
    while True:
        try:
            return run_tiled(fwd, x, c, s, info, size, overlap, dev)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not _is_oom(exc) or size <= 64:
                raise
            size //= 2


def _pad_amounts(h: int, w: int, info: ModelInfo) -> tuple[int, int]:
    m = info.size_multiple
    th = max(-(-h // m) * m, info.min_size)
    tw = max(-(-w // m) * m, info.min_size)
    if info.fixed_size is not None:
        th, tw = max(th, info.fixed_size), max(tw, info.fixed_size)
    return th - h, tw - w


def _pad(x: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    if not ph and not pw:
        return x
    mode = "reflect" if ph < x.shape[-2] and pw < x.shape[-1] else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def _run_padded(fwd: Forward, x: torch.Tensor, c: torch.Tensor | None, s: int, info: ModelInfo,
                dev: torch.device) -> torch.Tensor:
    """One forward on the device, padded to the model's size requirements and cropped back."""
    h, w = x.shape[-2:]
    ph, pw = _pad_amounts(h, w, info)
    xin = _pad(x, ph, pw).to(dev)
    cin = None if c is None else _pad(c, ph, pw).to(dev)
    y = fwd(xin, cin).float()
    return y[..., : h * s, : w * s].cpu()


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _ramp(n: int, overlap: int, ramp_start: bool, ramp_end: bool) -> torch.Tensor:
    """1-D blending weights: 0 over the outer quarter of an overlap, then linear up to 1."""
    w = torch.ones(n)
    if overlap <= 0:
        return w
    margin = overlap // 4
    span = max(1, overlap - 2 * margin)
    i = torch.arange(n, dtype=torch.float32)
    rise = ((i + 0.5 - margin) / span).clamp(0, 1)
    if ramp_start:
        w = torch.minimum(w, rise)
    if ramp_end:
        w = torch.minimum(w, rise.flip(0))
    return w


def tiles(h: int, w: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """(top, left, height, width) of overlapping tiles that cover an h x w image."""
    for top in _starts(h, tile, overlap):
        for left in _starts(w, tile, overlap):
            yield top, left, min(tile, h), min(tile, w)


def run_tiled(fwd: Forward, x: torch.Tensor, c: torch.Tensor | None, s: int, info: ModelInfo, tile: int,
              overlap: int | None, dev: torch.device) -> torch.Tensor:
    """Overlapping tiles blended with feathered weights; one tile on the device at a time."""
    n, _, h, w = x.shape
    if overlap is None:
        overlap = min(32, tile // 4)
    overlap = min(overlap, tile // 2)
    out = None
    weight = torch.zeros(1, 1, h * s, w * s)
    for top, left, th, tw in tiles(h, w, tile, overlap):
        xt = x[..., top : top + th, left : left + tw]
        ct = None if c is None else c[..., top : top + th, left : left + tw]
        y = _run_padded(fwd, xt, ct, s, info, dev)
        if out is None:
            out = torch.zeros(n, y.shape[1], h * s, w * s)
        wy = _ramp(th * s, overlap * s, top > 0, top + th < h)
        wx = _ramp(tw * s, overlap * s, left > 0, left + tw < w)
        wt = (wy[:, None] * wx[None, :])[None, None]
        out[..., top * s : (top + th) * s, left * s : (left + tw) * s] += y * wt
        weight[..., top * s : (top + th) * s, left * s : (left + tw) * s] += wt
    assert out is not None
    return out.div_(weight.clamp_min(1e-8))
