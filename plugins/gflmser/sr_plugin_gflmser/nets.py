"""GFLmser networks: the H2L (64 -> 16) and L2H (16 -> 64) Lmser nets and their skip gate.

Layer names follow the authors' ``v1_lmser.py`` (``Lmser_up`` = H2L, ``Lmser_down`` = L2H) so that
their state dicts load key for key. Only the layers the v1 forward pass runs are built: the
authors' modules also hold two never-called groups per net and, in every rescale unit, the
branch (conv or deconv) that is not used; ``checkpoint.py`` drops those tensors on load.

Both nets work in [-1, 1] (tanh outputs), as the authors' code does; ``GFLmser`` is the
framework-facing SR model that converts from and to [0, 1].
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

SkipMode = Literal["gated", "ungated", "none"]
FEATURES = 64
INIT_STD = 0.01

# (decoder group, H2L skip it consumes), in the order the L2H runs them (spec 3.2)
L2H_SKIP_OF_GROUP: tuple[tuple[int, int], ...] = ((0, 6), (3, 3), (4, 2), (5, 1), (6, 0))


def _init_normal(module: nn.Module) -> None:
    """The authors initialise conv/deconv weights of residual and rescale units with N(0, 0.01)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, mean=0.0, std=INIT_STD)


class ResUnit(nn.Module):
    """Pre-activation residual unit: x + conv(relu(conv(relu(x)))), no normalisation."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(FEATURES, FEATURES, 3, padding=1)
        self.conv2 = nn.Conv2d(FEATURES, FEATURES, 3, padding=1)
        _init_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


class Group(nn.Module):
    """Two residual units, ``f``. Encoder: (x + f(x), f(x)); decoder: x + f(x + skip)."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(ResUnit(), ResUnit())

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = self.layers(x)
        return x + r, r

    def decode(self, x: torch.Tensor, skip: torch.Tensor | None) -> torch.Tensor:
        return x + self.layers(x if skip is None else x + skip)


class Down(nn.Module):
    """Stride-2 3x3 conv (the ``conv`` branch of the authors' ``Rescale(down=True)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(FEATURES, FEATURES, 3, stride=2, padding=1)
        _init_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Up(nn.Module):
    """4x4 stride-2 transposed conv (the ``de_conv`` branch of ``Rescale(down=False)``)."""

    def __init__(self) -> None:
        super().__init__()
        self.de_conv = nn.ConvTranspose2d(FEATURES, FEATURES, 4, stride=2, padding=1)
        _init_normal(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.de_conv(x)


def correlation_gate(skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Scale each skip channel by its Pearson correlation with the decoder map when positive.

    Per sample and channel, rho = cov(s, x) / sqrt(var(s) var(x)) over the H*W values; the
    channel becomes rho * s if rho > 0 and stays s otherwise (the research code's gate, which
    has no parameters; gradient flows through rho). Constant maps (zero variance) pass
    unchanged, as the authors' NaN correlation does.
    """
    s = skip.flatten(2)
    d = x.flatten(2)
    s = s - s.mean(-1, keepdim=True)
    d = d - d.mean(-1, keepdim=True)
    cov = (s * d).sum(-1)
    var = (s * s).sum(-1) * (d * d).sum(-1)
    rho = cov * torch.rsqrt(var.clamp_min(torch.finfo(var.dtype).tiny))
    gate = torch.where(rho > 0, rho, torch.ones_like(rho))
    return skip * gate[..., None, None]


class H2L(nn.Module):
    """High-to-low net (``Lmser_up``): [-1,1] HR (N,3,H,W) -> LR (N,3,H/4,W/4) and 5 skips.

    Path: head 64 -> G0 -D-> G1 -D-> G2 -D-> G3 -U-> G6 -> tail/tanh at H/4; the skip of a group
    is its residual branch f(x). H and W must be multiples of 8.
    """

    def __init__(self) -> None:
        super().__init__()
        self.up_process = nn.Conv2d(3, FEATURES, 3, padding=1)
        self.up_final_process = nn.Conv2d(FEATURES, 3, 3, padding=1)
        for i in (0, 1, 2, 3, 6):
            self.add_module(f"up_layer_{i}", Group())
        for i in (0, 1, 2):
            self.add_module(f"up_rescale_{i}", Down())
        self.up_rescale_5 = Up()

    def forward(self, hr: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.up_process(hr)
        skips = []
        for i in (0, 1, 2, 3):
            out, s = getattr(self, f"up_layer_{i}").encode(out)
            skips.append(s)
            out = getattr(self, f"up_rescale_{i if i < 3 else 5}")(out)
        out, s6 = self.up_layer_6.encode(out)
        skips.append(s6)
        return torch.tanh(self.up_final_process(out)), skips  # skips = [s0, s1, s2, s3, s6]


class L2H(nn.Module):
    """Low-to-high net (``Lmser_down``): [-1,1] LR (N,3,h,w) + H2L skips -> HR (N,3,4h,4w).

    Path: head -> D0(+s6) -D-> D3(+s3) -U-> D4(+s2) -U-> D5(+s1) -U-> D6(+s0) -> tail/tanh.
    ``skip``: "gated" (correlation gate, the paper's GFLmser), "ungated" (plain addition, the
    README's v1 scripts) or "none" (no skip connections; ``skips`` may then be None).
    h and w must be even.
    """

    def __init__(self, skip: SkipMode = "gated") -> None:
        super().__init__()
        self.skip = skip
        self.down_process = nn.Conv2d(3, FEATURES, 3, padding=1)
        self.down_final_process = nn.Conv2d(FEATURES, 3, 3, padding=1)
        for g, _ in L2H_SKIP_OF_GROUP:
            self.add_module(f"down_layer_{g}", Group())
        self.down_rescale_0 = Down()
        for i in (3, 4, 5):
            self.add_module(f"down_rescale_{i}", Up())

    def forward(self, lr: torch.Tensor, skips: list[torch.Tensor] | None = None) -> torch.Tensor:
        if self.skip != "none" and skips is None:
            raise ValueError(f"L2H with skip='{self.skip}' needs the H2L skip features")
        by_index = dict(zip((0, 1, 2, 3, 6), skips)) if skips is not None else {}
        out = self.down_process(lr)
        for g, k in L2H_SKIP_OF_GROUP:
            s = None if self.skip == "none" else by_index[k]
            if s is not None and self.skip == "gated":
                s = correlation_gate(s, out)
            out = getattr(self, f"down_layer_{g}").decode(out, s)
            if g != 6:
                out = getattr(self, f"down_rescale_{g}")(out)
        return torch.tanh(self.down_final_process(out))


def to_signed(x: torch.Tensor) -> torch.Tensor:
    return x * 2 - 1


def to_unit(x: torch.Tensor) -> torch.Tensor:
    return (x + 1) / 2


def cubic_resize(x: torch.Tensor, size: tuple[int, int], antialias: bool = False) -> torch.Tensor:
    """Bicubic resize (a = -0.75, half-pixel centres) = OpenCV INTER_CUBIC when not antialiased."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=antialias)


def hr_noise(hr: torch.Tensor, factor: int) -> torch.Tensor:
    """The H2L input "HR_noise": HR bicubic-downscaled by ``factor`` and back (OpenCV-style)."""
    if factor == 1:
        return hr
    h, w = hr.shape[-2:]
    small = cubic_resize(hr, (h // factor, w // factor))
    return cubic_resize(small, (h, w)).clamp(-1, 1)


class GFLmser(nn.Module):
    """The SR model: L2H fed by the skips of an H2L pass on the bicubic-upsampled LR input.

    This is what the authors' test path does for real LR faces (the H2L sees the LR face
    upsampled 16 -> 64). Input/output in [0, 1]. With ``face_size`` set, any input is resized
    to face_size x face_size first and the 4x result is resized back to 4x the input size.
    """

    scale = 4

    def __init__(self, skip: SkipMode = "gated", face_size: int | None = None) -> None:
        super().__init__()
        self.h2l = H2L()
        self.l2h = L2H(skip)
        self.face_size = face_size

    def skips_for(self, lr: torch.Tensor) -> list[torch.Tensor] | None:
        """H2L skip features of the LR image (in [-1, 1]) upsampled 4x, or None without skips."""
        if self.l2h.skip == "none":
            return None
        h, w = lr.shape[-2:]
        return self.h2l(cubic_resize(lr, (4 * h, 4 * w)).clamp(-1, 1))[1]

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        x = to_signed(lr)
        if self.face_size is not None:
            x = cubic_resize(x, (self.face_size, self.face_size), antialias=True)
        sr = to_unit(self.l2h(x, self.skips_for(x)))
        if self.face_size is not None:
            sr = cubic_resize(sr, (4 * h, 4 * w))
        return sr


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
