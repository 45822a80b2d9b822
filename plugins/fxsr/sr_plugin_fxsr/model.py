"""FxSR generator: the core's SFT-conditioned RRDBNet plus FxSR's 1x1 condition branch.

The network is the core ``RRDBNet(cond_nc=32)`` with one extra submodule, ``CondNet``
(Conv1x1 1->1, LeakyReLU 0.1, Conv1x1 1->32), so its state-dict keys are exactly the released
ones (``conv_first``, ``RRDB_trunk.{i}.RDB{j}.sft{k}.SFT_*``, ``CondNet.0``, ``CondNet.2``...).
The style map ``t_map`` (N,1,h,w) lives at the LR size and only passes through 1x1 convs before
the SFT layers, so t acts per pixel.
"""

from __future__ import annotations

import torch
from torch import nn

from sr_plugin_fxsr.config import COND_NC, FxSRConfig
from srcore.nn.rrdb import RRDBNet

DEFAULT_T = 0.8  # t of FxSR's test.py when none is given (the paper's headline perceptual setting)


class FxSRNet(RRDBNet):
    """RRDB-SFT generator conditioned on a per-pixel style map t in [0, 1] at the LR size."""

    def __init__(self, scale: int = 4, nf: int = 64, nb: int = 23, gc: int = 32) -> None:
        super().__init__(in_nc=3, out_nc=3, nf=nf, nb=nb, gc=gc, scale=scale, cond_nc=COND_NC)
        self.CondNet = nn.Sequential(nn.Conv2d(1, 1, 1), nn.LeakyReLU(0.1), nn.Conv2d(1, COND_NC, 1))

    def forward(self, x: torch.Tensor, t_map: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        """SR of ``x`` (N,3,h,w) in [0,1] under style map ``t_map`` (N or 1,1,h,w); not clamped."""
        if t_map is None:
            raise ValueError("FxSR needs a style map t_map of shape (N, 1, h, w) at the LR size")
        if t_map.dim() != 4 or t_map.shape[1] != 1 or t_map.shape[-2:] != x.shape[-2:]:
            raise ValueError(
                f"FxSR t_map must be (N, 1, {x.shape[-2]}, {x.shape[-1]}) to match the LR input "
                f"{tuple(x.shape)}; got {tuple(t_map.shape)}"
            )
        if t_map.shape[0] != x.shape[0]:
            t_map = t_map.expand(x.shape[0], -1, -1, -1)
        return super().forward(x, self.CondNet(t_map.to(x.dtype)))


def uniform_map(x: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    """A style map at the size of LR batch ``x``: one value for all, or one per sample (N,)."""
    n, _, h, w = x.shape
    t = torch.as_tensor(t, dtype=x.dtype, device=x.device).reshape(-1, 1, 1, 1)
    return t.expand(n, 1, h, w).contiguous()


def build_fxsr(cfg: FxSRConfig) -> FxSRNet:
    return FxSRNet(scale=cfg.scale, nf=cfg.nf, nb=cfg.nb, gc=cfg.gc)
