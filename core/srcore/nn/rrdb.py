"""ESRGAN's Residual-in-Residual Dense Block network, optionally SFT-conditioned (FxSR).

Key names follow the mmsr/BasicSR-v1 release layout (``conv_first``, ``RRDB_trunk.{i}.RDB{j}.
conv{k}``, ``trunk_conv``, ``upconv{k}``, ``HRconv``, ``conv_last``), so FxSR's released weights
load as they are; methods whose releases use other names map them in their plugin. The newer
BasicSR / Real-ESRGAN layout (``body.{i}.rdb{j}``, ``conv_body``, ``conv_up{k}``, ``conv_hr``) is
the same network under other names: ``from_basicsr_keys`` renames it, and ``RRDBNet`` accepts it
in ``load_state_dict`` directly, so naming the model on such a file just works.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from srcore.nn.sft import SFTLayer


def scaled_kaiming_(module: nn.Module, scale: float = 0.1) -> None:
    """ESRGAN's init: Kaiming-normal (fan_in) times ``scale``, zero bias, for every conv."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            m.weight.data.mul_(scale)
            if m.bias is not None:
                m.bias.data.zero_()


class ResidualDenseBlock(nn.Module):
    """Five 3x3 convs with dense concatenation; out = 0.2 * conv5 + x.

    With ``cond_nc`` set, five SFT layers modulate the input of conv1 and the outputs of
    conv1..conv4 (FxSR); the dense concatenations use the *unmodulated* block input ``x``.
    """

    def __init__(self, nf: int = 64, gc: int = 32, cond_nc: int | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, gc, 3, 1, 1)
        self.conv2 = nn.Conv2d(nf + gc, gc, 3, 1, 1)
        self.conv3 = nn.Conv2d(nf + 2 * gc, gc, 3, 1, 1)
        self.conv4 = nn.Conv2d(nf + 3 * gc, gc, 3, 1, 1)
        self.conv5 = nn.Conv2d(nf + 4 * gc, nf, 3, 1, 1)
        self.conditioned = cond_nc is not None
        if cond_nc is not None:
            self.sft0 = SFTLayer(nf, cond_nc)
            self.sft1 = SFTLayer(gc, cond_nc)
            self.sft2 = SFTLayer(gc, cond_nc)
            self.sft3 = SFTLayer(gc, cond_nc)
            self.sft4 = SFTLayer(gc, cond_nc)
        for conv in (self.conv1, self.conv2, self.conv3, self.conv4, self.conv5):
            scaled_kaiming_(conv, 0.1)  # only the dense convs: SFT convs keep PyTorch's init (FxSR)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        lrelu = F.leaky_relu
        if self.conditioned:
            assert cond is not None, "this block is SFT-conditioned: pass cond"
            x1 = self.sft1(lrelu(self.conv1(self.sft0(x, cond)), 0.2), cond)
            x2 = self.sft2(lrelu(self.conv2(torch.cat((x, x1), 1)), 0.2), cond)
            x3 = self.sft3(lrelu(self.conv3(torch.cat((x, x1, x2), 1)), 0.2), cond)
            x4 = self.sft4(lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)), 0.2), cond)
        else:
            x1 = lrelu(self.conv1(x), 0.2)
            x2 = lrelu(self.conv2(torch.cat((x, x1), 1)), 0.2)
            x3 = lrelu(self.conv3(torch.cat((x, x1, x2), 1)), 0.2)
            x4 = lrelu(self.conv4(torch.cat((x, x1, x2, x3), 1)), 0.2)
        x5 = self.conv5(torch.cat((x, x1, x2, x3, x4), 1))
        return x5 * 0.2 + x


class RRDB(nn.Module):
    """Three dense blocks in a residual: out = 0.2 * RDB3(RDB2(RDB1(x))) + x."""

    def __init__(self, nf: int = 64, gc: int = 32, cond_nc: int | None = None) -> None:
        super().__init__()
        self.RDB1 = ResidualDenseBlock(nf, gc, cond_nc)
        self.RDB2 = ResidualDenseBlock(nf, gc, cond_nc)
        self.RDB3 = ResidualDenseBlock(nf, gc, cond_nc)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        out = self.RDB3(self.RDB2(self.RDB1(x, cond), cond), cond)
        return out * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator: conv_first -> RRDB trunk + trunk_conv (global residual) -> nearest x2
    upsampling stages -> HRconv -> conv_last. ``scale`` must be a power of two.

    ``cond_nc`` makes every dense block SFT-conditioned; ``forward(x, cond)`` then takes the
    condition features (``cond_nc`` channels at the LR size). ``unshuffle`` pixel-unshuffles the
    input first (BasicSR's x2 and x1 models: 2 and 4, ``conv_first`` then takes ``in_nc *
    unshuffle**2`` channels), so the trunk upsamples by ``scale * unshuffle``.
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        nf: int = 64,
        nb: int = 23,
        gc: int = 32,
        scale: int = 4,
        cond_nc: int | None = None,
        unshuffle: int = 1,
    ) -> None:
        super().__init__()
        n_up = int(math.log2(scale * unshuffle))
        if 2**n_up != scale * unshuffle or n_up < 1:
            raise ValueError(f"RRDBNet upsamples by powers of two; got scale {scale} with unshuffle {unshuffle}")
        self.scale = scale
        self.unshuffle = unshuffle
        self.conv_first = nn.Conv2d(in_nc * unshuffle**2, nf, 3, 1, 1)
        self.RRDB_trunk = nn.ModuleList(RRDB(nf, gc, cond_nc) for _ in range(nb))
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.n_up = n_up
        for k in range(1, n_up + 1):
            setattr(self, f"upconv{k}", nn.Conv2d(nf, nf, 3, 1, 1))
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)
        self.register_load_state_dict_pre_hook(_accept_basicsr_keys)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h, w = x.shape[-2:]
        if self.unshuffle > 1:
            x = F.pixel_unshuffle(_pad_to_multiple(x, self.unshuffle), self.unshuffle)
        fea = self.conv_first(x)
        trunk = fea
        for block in self.RRDB_trunk:
            trunk = block(trunk, cond)
        fea = fea + self.trunk_conv(trunk)
        for k in range(1, self.n_up + 1):
            up = getattr(self, f"upconv{k}")
            fea = F.leaky_relu(up(F.interpolate(fea, scale_factor=2, mode="nearest")), 0.2)
        out = self.conv_last(F.leaky_relu(self.HRconv(fea), 0.2))
        return out[..., : h * self.scale, : w * self.scale]


def _pad_to_multiple(x: torch.Tensor, m: int) -> torch.Tensor:
    """Reflect-pad H and W up to multiples of ``m`` (Real-ESRGAN's inference does the same for
    its unshuffled models); the output is cropped back, so any input size works."""
    ph, pw = -x.shape[-2] % m, -x.shape[-1] % m
    return F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x


# -- the BasicSR / Real-ESRGAN key layout ---------------------------------------------------------

_BASICSR_NAMES = {"conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
                  "conv_up3": "upconv3", "conv_hr": "HRconv"}
_BASICSR_BLOCK = re.compile(r"^body\.(\d+)\.rdb([123])\.(conv[1-5]\.(?:weight|bias))$")


def _basicsr_name(key: str) -> str:
    """One BasicSR RRDBNet key in srcore's names (keys of other layouts come back unchanged)."""
    if m := _BASICSR_BLOCK.match(key):
        return f"RRDB_trunk.{m.group(1)}.RDB{m.group(2)}.{m.group(3)}"
    head, _, rest = key.partition(".")
    return f"{_BASICSR_NAMES[head]}.{rest}" if head in _BASICSR_NAMES and rest else key


def is_basicsr_rrdbnet(state: Mapping[str, Any]) -> bool:
    """BasicSR / Real-ESRGAN ``RRDBNet`` keys: ``body.N.rdbK.convJ``, ``conv_body``, ``conv_up1``."""
    needed = ("conv_first.weight", "body.0.rdb1.conv1.weight", "conv_body.weight", "conv_up1.weight",
              "conv_hr.weight", "conv_last.weight")
    return all(k in state for k in needed)


def from_basicsr_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """Rename a BasicSR RRDBNet state dict to this module's names (values are not copied)."""
    return {_basicsr_name(k): v for k, v in state.items()}


def basicsr_params(state: Mapping[str, Any]) -> dict[str, int]:
    """BasicSR's RRDBNet arguments read from tensor shapes: (in/out channels, nf, nb, gc, scale).

    BasicSR always upsamples x4 in the trunk (x8 forks: three ``conv_up``); its x2 and x1 models
    pixel-unshuffle the input by 2 and 4, which shows as ``conv_first`` taking 4x or 16x the
    output channels.
    """
    w0, out_nc = state["conv_first.weight"], int(state["conv_last.weight"].shape[0])
    n_up = sum(1 for k in range(1, 4) if f"conv_up{k}.weight" in state)
    ratio = int(w0.shape[1]) // out_nc if int(w0.shape[1]) % out_nc == 0 else 1
    unshuffle = {16: 4, 4: 2}.get(ratio, 1)
    nb = len({k.split(".")[1] for k in state if _BASICSR_BLOCK.match(k)})
    return {
        "in_nc": int(w0.shape[1]) // unshuffle**2,
        "out_nc": out_nc,
        "nf": int(w0.shape[0]),
        "nb": nb,
        "gc": int(state["body.0.rdb1.conv1.weight"].shape[0]),
        "scale": 2**n_up // unshuffle,
    }


def _accept_basicsr_keys(module: nn.Module, state: dict[str, Any], prefix: str, *_: Any) -> None:
    """``load_state_dict`` pre-hook: rename BasicSR keys under ``prefix`` in place."""
    for key in [k for k in state if k.startswith(prefix)]:
        new = prefix + _basicsr_name(key[len(prefix):])
        if new != key and new not in state:
            state[new] = state.pop(key)
