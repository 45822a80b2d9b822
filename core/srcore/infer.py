"""Super-resolve images with any registered model: colour space, pre-upsampling, tiling, ensemble.

``super_resolve`` hides what differs between models (``ModelInfo``):

* Y-channel models: RGB -> YCbCr (BT.601, MATLAB), the model runs on Y, Cb/Cr come from the
  MATLAB-bicubic upsampled input;
* pre-upsampled models (SRCNN, VDSR): the input is MATLAB-bicubic upsampled, kept in float;
* size requirements: inputs are reflect-padded to ``size_multiple``/``min_size`` and cropped back;
* tiling: the full image stays on the CPU and only one tile at a time is on the device, so device
  memory is bounded by the tile. Tile-exact models (``ModelInfo.tile_exact``) get tiles whose
  context covers the receptive field, each cropped to its core: the result is the untiled one bit
  for bit. Other models get feathered (linear-ramp) blending and a warning, since their global
  statistics (channel attention, image-wide norms) differ per tile;
* memory budget (``max_memory``): a tile-exact model whose estimated activations exceed it is
  tiled automatically; above ``memory_target`` too, when its tiles cost little extra work (a
  small receptive field: SRResCGAN, FSRCNN, not a 23-block RRDB);
* x8 self-ensemble: the 8 dihedral transforms averaged in float, clamped once at the end;
* condition maps (FxSR's ``t``): a scalar or a per-pixel map at LR size, tiled with the input.

Without ``tile``, an out-of-memory error of a tile-exact model retries with tiles (512, 256, ... 64);
other models are never tiled behind the user's back (the error says to pass ``tile``).
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from srcore.errors import SrcoreError
from srcore.registry import ModelInfo

Forward = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]


@dataclass
class Upscaler:
    """A forward function and the model description (used by validation during training)."""

    forward: Forward
    info: ModelInfo
    scale: int
    name: str = "model"
    module: nn.Module | None = None  # for the memory probe's hooks


class TileSplit(NamedTuple):
    """What a model with image-wide statistics returns from ``module.tile_split(x)`` (x: the whole
    padded input, on the device) to be tiled exactly: ``local(tile, (top, left))`` maps an input
    tile (its origin in ``x``: a model may slice what it computed once on the whole image) to its
    output tile, tile-exact within ``receptive_field``; ``finish`` maps the assembled local output
    of the whole image to the model's output (where the global statistics are applied);
    ``receptive_field``: that of ``local`` for this instance (depth, scale), when it is smaller
    than the model's declared one (which covers every configuration)."""

    local: Callable[[torch.Tensor, tuple[int, int]], torch.Tensor]
    finish: Callable[[torch.Tensor], torch.Tensor]
    receptive_field: int | None = None


class TilingWarning(UserWarning):
    """Tiling a model that is not tile-exact: the output differs from the untiled one."""


class OutOfMemoryError(SrcoreError):
    """Out of memory with a model that tiling would change; the user must ask for tiles."""


def as_upscaler(model: Any) -> Upscaler:
    if isinstance(model, Upscaler):
        return model
    module: nn.Module = model.module

    def forward(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        return module(x) if cond is None else module(x, cond)

    component = getattr(model, "component", None)
    return Upscaler(forward, model.info, model.scale, getattr(component, "id", "model"), module)


def _ceil_to(v: int, m: int) -> int:
    return -(-v // m) * m


def exact_margin(info: ModelInfo) -> int | None:
    """Context each side (network input pixels, a multiple of size_multiple) for bit-exact tiles."""
    if not info.tile_exact or info.receptive_field is None:
        return None
    return _ceil_to(info.receptive_field, info.size_multiple)


def _warn_not_exact(up: Upscaler) -> None:
    # warnings' default filter shows one message once: once per model and process
    why = "not tile-exact" if not up.info.tile_exact else "tile-exact but its receptive field is unknown"
    warnings.warn(f"{up.name} is {why}: tiled output differs from untiled (seams, per-tile statistics)",
                  TilingWarning, stacklevel=4)


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


Progress = Callable[[int, int], None]
"""``progress(done, total)``: forwards (tiles x ensemble passes) done for the current image."""


@dataclass
class _Job:
    """One image's settings, passed down to every forward of its ensemble passes."""

    up: Upscaler
    scale: int
    tile: int | None
    overlap: int | None
    max_memory: int | None
    dev: torch.device
    progress: Progress | None
    done: int = 0
    total: int = 0
    memory_target: int | None = None

    def tick(self, extra: int = 0) -> None:
        """One forward done; ``extra`` more forwards than planned (tiles of this pass)."""
        self.total += extra
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, max(self.total, self.done))


@torch.no_grad()
def super_resolve(
    model: Any,
    lr_rgb: torch.Tensor,
    cond: float | torch.Tensor | None = None,
    tile: int | None = None,
    self_ensemble: bool = False,
    overlap: int | None = None,
    device: torch.device | str | None = None,
    max_memory: int | None = None,
    progress: Progress | None = None,
    memory_target: int | None = None,
) -> torch.Tensor:
    """RGB [0,1] LR image(s) ``(3,h,w)`` or ``(N,3,h,w)`` -> RGB SR ``(N,3,sh,sw)`` clamped to [0,1].

    ``max_memory`` (bytes of activations on the device) tiles a tile-exact model whose estimated
    untiled forward would exceed it; the result is the same bit for bit. ``memory_target`` tiles
    above it only where the tiles' context adds at most ``CHEAP_TILING`` work (a soft limit:
    lower peak memory at about the same speed).
    """
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
    job = _Job(up, net_scale, tile, overlap, max_memory, dev, progress, total=8 if self_ensemble else 1,
               memory_target=memory_target)
    out = _ensemble(job, x, c, self_ensemble)
    if chroma is not None:
        cbcr = imresize(chroma, size=out.shape[-2:])
        out = ycbcr_to_rgb(torch.cat([out, cbcr], dim=1))
    return out.clamp_(0, 1)


def _ensemble(job: _Job, x: torch.Tensor, c: torch.Tensor | None, self_ensemble: bool) -> torch.Tensor:
    if not self_ensemble:
        return _run(job, x, c)
    acc = None
    for k in range(8):
        xt = _dihedral(x, k)
        ct = None if c is None else _dihedral(c, k)
        y = _dihedral_inv(_run(job, xt, ct), k)
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


def _run(job: _Job, x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
    """One pass: tiles as asked or as the budget needs, else one forward, tiles after an OOM."""
    info = job.up.info
    exact = exact_margin(info) is not None
    if job.tile is not None or info.fixed_size is not None:
        return _run_tiles(job, x, c, job.tile or info.fixed_size)  # type: ignore[arg-type]
    budgeted = job.max_memory is not None or job.memory_target is not None
    budget_tile = _budget_tile(job, x, c) if exact and budgeted else None
    if budget_tile is not None:
        return _run_tiles(job, x, c, budget_tile)
    try:
        y = _run_padded(job.up.forward, x, c, job.scale, info, job.dev)
        job.tick()
        return y
    except (torch.OutOfMemoryError, RuntimeError) as exc:
        if not _is_oom(exc):
            raise
    if job.dev.type == "cuda":
        torch.cuda.empty_cache()
    if not exact:
        raise OutOfMemoryError(f"out of memory upscaling a {x.shape[-1]}x{x.shape[-2]} image with {job.up.name}, "
                               "which is not tile-exact; pass --tile N to tile anyway (the output will differ)")
    size, smallest = 512, min(64, min_exact_tile(*x.shape[-2:], info))
    while size >= max(x.shape[-2:]) and size > smallest:
        size //= 2
    while True:
        try:
            return _run_tiles(job, x, c, size)
        except (torch.OutOfMemoryError, RuntimeError) as exc:
            if not _is_oom(exc) or size <= smallest:
                raise
            size //= 2


def _run_tiles(job: _Job, x: torch.Tensor, c: torch.Tensor | None, tile: int) -> torch.Tensor:
    """Exact tiles for tile-exact models, feathered ones (and a warning) for the others."""
    up = job.up
    if exact_margin(up.info) is not None:
        split = getattr(up.module, "tile_split", None)
        return run_exact_tiles(up.forward, x, c, job.scale, up.info, tile, job.dev, job.tick, split)
    h, w = x.shape[-2:]
    if max(h, w) > tile:
        _warn_not_exact(up)
    return run_tiled(up.forward, x, c, job.scale, up.info, tile, job.overlap, job.dev, job.tick)


NATIVE_CONV_NUMEL = 20480
"""PyTorch runs a batch-1 CPU conv (kernel <= 3x3) natively, not with oneDNN, at most this many input
elements; the two round differently, so every tile must stay above it as the full image is."""
MIN_EXACT_TILE = 160
"""Smallest automatic tile core: 160 x 160 > NATIVE_CONV_NUMEL even for a 1-channel input."""
ACTIVATIONS_ALIVE = 6
"""Peak memory of a forward in units of its largest layer output (measured on SRResCGAN: 4.3 GB / 0.71 GB)."""
CHEAP_TILING = 1.25
"""``memory_target`` tiles only if the tiles' inputs (cores + context) are at most this x the image."""
PROBE = 32
"""Side of the memory probe's input: conv activations per pixel do not depend on the size."""
_PER_PIXEL: weakref.WeakKeyDictionary[nn.Module, float] = weakref.WeakKeyDictionary()


def activation_bytes(up: Upscaler, x: torch.Tensor, c: torch.Tensor | None, dev: torch.device) -> float:
    """Bytes per input pixel of the largest layer output, from a small probe forward with hooks
    (once per module: a folder of images or the 8 ensemble passes probe once)."""
    if up.module is not None and up.module in _PER_PIXEL:
        return _PER_PIXEL[up.module]
    info = up.info
    p = _ceil_to(max(PROBE, info.min_size), info.size_multiple)
    xs, cs = x[:1, :, :p, :p], None if c is None else c[:1, :, :p, :p]
    ph, pw = _pad_amounts(*xs.shape[-2:], info)
    xs, cs = _pad(xs, ph, pw), None if cs is None else _pad(cs, ph, pw)
    largest = [0]

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        if isinstance(out, torch.Tensor):
            largest[0] = max(largest[0], out.numel() * out.element_size())

    handles = [sub.register_forward_hook(hook) for sub in (up.module.modules() if up.module else ())]
    try:
        y = up.forward(xs.to(dev), None if cs is None else cs.to(dev))
    finally:
        for hd in handles:
            hd.remove()
    largest[0] = max(largest[0], y.numel() * y.element_size())
    per_px = largest[0] / (xs.shape[-2] * xs.shape[-1])
    if up.module is not None and xs.shape[-2:] == (p, p):  # a smaller image is no probe of others
        _PER_PIXEL[up.module] = per_px
    return per_px


def _budget_tile(job: _Job, x: torch.Tensor, c: torch.Tensor | None) -> int | None:
    """The tile side that keeps the estimated activations under ``max_memory`` (or, where tiles
    are cheap, ``memory_target``); None if untiled fits. An image no larger than the memory
    probe is not probed (the probe would cost as much as its forward)."""
    info, (h, w) = job.up.info, x.shape[-2:]
    if h * w <= PROBE * PROBE:
        return None
    per_px = ACTIVATIONS_ALIVE * activation_bytes(job.up, x, c, job.dev) * x.shape[0]
    floor = min_exact_tile(h, w, info)
    if job.max_memory is not None and per_px * h * w > job.max_memory:
        return max(int((job.max_memory / per_px) ** 0.5), floor)
    if job.memory_target is not None and per_px * h * w > job.memory_target:
        side = max(int((job.memory_target / per_px) ** 0.5), floor)
        return side if tiling_work(h, w, side, info) <= CHEAP_TILING else None
    return None


def tiling_work(h: int, w: int, tile: int, info: ModelInfo) -> float:
    """Pixels the exact tiles of side ``tile`` feed the network, over the image's pixels."""
    margin, (ph, pw) = exact_margin(info) or 0, _pad_amounts(h, w, info)
    rows = exact_spans(h + ph, tile, margin, info.size_multiple, info.min_size)
    cols = exact_spans(w + pw, tile, margin, info.size_multiple, info.min_size)
    return sum(i1 - i0 for i0, i1, _, _ in rows) * sum(j1 - j0 for j0, j1, _, _ in cols) / ((h + ph) * (w + pw))


def min_exact_tile(h: int, w: int, info: ModelInfo) -> int:
    """Smallest tile whose every tile (the corners lack one margin) keeps oneDNN's kernels."""
    margin = exact_margin(info) or 0
    thin = -(-NATIVE_CONV_NUMEL // max(1, min(h, w)))  # a thin image's tiles are long and narrow
    return max(MIN_EXACT_TILE, thin) + 2 * margin


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
              overlap: int | None, dev: torch.device, tick: Callable[[int], None] | None = None) -> torch.Tensor:
    """Overlapping tiles blended with feathered weights; one tile on the device at a time."""
    n, _, h, w = x.shape
    if overlap is None:
        overlap = min(32, tile // 4)
    overlap = min(overlap, tile // 2)
    out = None
    weight = torch.zeros(1, 1, h * s, w * s)
    plan = list(tiles(h, w, tile, overlap))
    for i, (top, left, th, tw) in enumerate(plan):
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
        if tick is not None:
            tick(len(plan) - 1 if i == 0 else 0)
    assert out is not None
    return out.div_(weight.clamp_min(1e-8))


Span = tuple[int, int, int, int]
"""(input start, input end, core start, core end) of a tile along one axis."""


def exact_spans(length: int, tile: int, margin: int, multiple: int = 1, min_size: int = 1) -> list[Span]:
    """Cores that partition ``length`` (balanced, aligned to ``multiple``), each with ``margin`` of
    context on both sides where the image has it; a tile is at most ``tile`` long where possible."""
    core = max(tile - 2 * margin, multiple)
    core = _ceil_to(-(-length // -(-length // core)), multiple)  # n = ceil(length / core) equal cores
    spans = []
    for c0 in range(0, length, core):
        c1 = min(c0 + core, length)
        i1 = min(length, c1 + margin)
        i0 = max(0, min(c0 - margin, i1 - min_size) // multiple * multiple)
        spans.append((i0, i1, c0, c1))
    return spans


def run_exact_tiles(fwd: Forward, x: torch.Tensor, c: torch.Tensor | None, s: int, info: ModelInfo, tile: int,
                    dev: torch.device, tick: Callable[[int], None] | None = None,
                    split: Callable[[torch.Tensor], TileSplit] | None = None) -> torch.Tensor:
    """Tiles whose context covers the receptive field, each output cropped to its core: with the
    image padded once as untiled, every kept pixel sees what it sees untiled, so the result is
    the untiled one bit for bit (for a tile-exact model). ``split``: see ``TileSplit``."""
    margin = exact_margin(info)
    assert margin is not None, "run_exact_tiles needs a tile-exact model with a receptive field"
    n, _, h, w = x.shape
    ph, pw = _pad_amounts(h, w, info)
    xp, cp = _pad(x, ph, pw), None if c is None else _pad(c, ph, pw)
    parts = None if split is None else split(xp.to(dev))
    if parts is not None and parts.receptive_field is not None:
        margin = _ceil_to(parts.receptive_field, info.size_multiple)
    m, lo = info.size_multiple, info.min_size
    rows = exact_spans(h + ph, tile, margin, m, lo)
    cols = exact_spans(w + pw, tile, margin, m, lo)
    out = None
    for k, ((i0, i1, c0, c1), (j0, j1, d0, d1)) in enumerate((r, q) for r in rows for q in cols):
        xt = xp[..., i0:i1, j0:j1].to(dev)
        ct = None if cp is None else cp[..., i0:i1, j0:j1].to(dev)
        y = fwd(xt, ct) if parts is None else parts.local(xt, (i0, j0))
        if out is None:
            out = torch.empty(n, y.shape[1], (h + ph) * s, (w + pw) * s)
        core = y[..., (c0 - i0) * s : (c1 - i0) * s, (d0 - j0) * s : (d1 - j0) * s]
        out[..., c0 * s : c1 * s, d0 * s : d1 * s] = core.float().cpu()
        del y, core
        if tick is not None:
            tick(len(rows) * len(cols) - 1 if k == 0 else 0)
    assert out is not None
    if parts is not None:
        out = parts.finish(out.to(dev)).float().cpu()
    return out[..., : h * s, : w * s]
