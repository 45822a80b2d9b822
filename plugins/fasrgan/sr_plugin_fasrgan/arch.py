"""Networks of FASRGAN and Fs-SRGAN (Yan et al., TMM 2021), as in the authors' code.

* The generator of both is ESRGAN's RRDBNet, the core's ``srcore.nn.rrdb.RRDBNet``.
* ``UNetDiscriminator``: FASRGAN's U-Net D returning an image-level logit and a per-pixel,
  per-channel "mask" of logits. Module names equal the official ``UNet`` class, so its state
  dict loads unchanged (``inc.conv.conv.0.weight`` ... ``outc.conv.weight``, ``classifier.0``).
* ``SharedExtractor`` (E) and ``FsSRGANNet`` (G o E): Fs-SRGAN's feature-sharing generator; E's
  output also feeds the discriminator during training.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from srcore.nn.discriminators import kaiming_init_
from srcore.nn.rrdb import RRDB, RRDBNet, scaled_kaiming_


def esrgan_init_(module: nn.Module, scale: float) -> None:
    """Official ``init_weights(kaiming, scale)``: every conv Kaiming-normal (fan_in) x scale, bias 0
    (G uses 0.1, E uses 1). The core RRDB scales only its dense-block convs; this covers all."""
    scaled_kaiming_(module, scale)


def build_rrdbnet(in_nc: int = 3, out_nc: int = 3, nf: int = 64, nb: int = 23, gc: int = 32, scale: int = 4) -> RRDBNet:
    """ESRGAN RRDBNet with the official training init (Kaiming x0.1 on every conv)."""
    net = RRDBNet(in_nc=in_nc, out_nc=out_nc, nf=nf, nb=nb, gc=gc, scale=scale)
    esrgan_init_(net, 0.1)
    return net


# -- Fs-SRGAN ----------------------------------------------------------------------------------

class SharedExtractor(nn.Module):
    """Fs-SRGAN's E (official ``model_ex``): conv3x3 in_nc->nf, then f + RRDBs(f); no trunk conv.

    Output: ``nf`` feature channels at the input resolution. nb=1: 721,216 parameters.
    """

    def __init__(self, in_nc: int = 3, nf: int = 64, nb: int = 1, gc: int = 32) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.RRDB_trunk = nn.ModuleList(RRDB(nf, gc) for _ in range(nb))
        esrgan_init_(self, 1.0)  # define_E: init_weights(netE, 'kaiming', scale=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fea = self.conv_first(x)
        trunk = fea
        for block in self.RRDB_trunk:
            trunk = block(trunk)
        return fea + trunk


class FsSRGANNet(nn.Module):
    """Inference network of Fs-SRGAN: SR = G(E(LR)), G an RRDBNet taking E's ``nf`` channels."""

    def __init__(self, nf: int = 64, nb_e: int = 1, nb: int = 16, gc: int = 32, scale: int = 4) -> None:
        super().__init__()
        self.E = SharedExtractor(3, nf, nb_e, gc)
        self.G = build_rrdbnet(in_nc=nf, out_nc=3, nf=nf, nb=nb, gc=gc, scale=scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.G(self.E(x))


# -- FASRGAN U-Net discriminator ---------------------------------------------------------------

class DoubleConv(nn.Module):
    """(Conv3x3 -> BN -> ReLU) x 2. The official code builds the first BN as
    ``BatchNorm2d(out_ch, out_ch)``, i.e. eps = out_ch; ``first_bn_eps=None`` reproduces that."""

    def __init__(self, in_ch: int, out_ch: int, first_bn_eps: float | None = None) -> None:
        super().__init__()
        eps = float(out_ch) if first_bn_eps is None else first_bn_eps
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch, eps=eps),
            nn.ReLU(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _In(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, eps: float | None) -> None:
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Down(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, eps: float | None) -> None:
        super().__init__()
        self.mpconv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch, eps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mpconv(x)


class _Up(nn.Module):
    """Bilinear x2 (align_corners=True), pad to the skip's size, concat [skip, up], DoubleConv."""

    def __init__(self, in_ch: int, out_ch: int, eps: float | None) -> None:
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch, eps)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        dy, dx = skip.shape[2] - x.shape[2], skip.shape[3] - x.shape[3]
        x = F.pad(x, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
        return self.conv(torch.cat([skip, x], dim=1))


class _Out(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class UNetDiscriminator(nn.Module):
    """FASRGAN's fine-grained D: encoder 64-128-256-256 (three max-pools), an image head on the
    bottleneck (flatten -> Linear 1024 -> LReLU 0.2 -> Linear 1) and a decoder back to full
    resolution giving ``out_nc`` per-pixel logits. ``forward`` returns ``(logit (N,1), mask (N,out_nc,H,W))``.

    Defaults follow the released code (70,473,220 parameters): mask conv 1x1 (the paper's figure
    shows 3x3: ``mask_kernel=3``), first BN of each double conv with eps = channels
    (``first_bn_eps=None``; give 1e-5 for the usual value). The image head fixes the input size
    (``input_size``, 128 in the paper); ``mask(x)`` alone works for any size divisible by 8.
    """

    def __init__(
        self,
        in_nc: int = 3,
        out_nc: int = 3,
        input_size: int = 128,
        mask_kernel: int = 1,
        first_bn_eps: float | None = None,
    ) -> None:
        super().__init__()
        if input_size % 8:
            raise ValueError(f"U-Net discriminator: input_size must be a multiple of 8, got {input_size}")
        self.input_size = input_size
        self.inc = _In(in_nc, 64, first_bn_eps)
        self.down1 = _Down(64, 128, first_bn_eps)
        self.down2 = _Down(128, 256, first_bn_eps)
        self.down3 = _Down(256, 256, first_bn_eps)
        self.up2 = _Up(512, 128, first_bn_eps)
        self.up3 = _Up(256, 64, first_bn_eps)
        self.up4 = _Up(128, 64, first_bn_eps)
        self.outc = _Out(64, out_nc, mask_kernel)
        self.classifier = nn.Sequential(
            nn.Linear(256 * (input_size // 8) ** 2, 1024), nn.LeakyReLU(0.2), nn.Linear(1024, 1)
        )
        kaiming_init_(self, 1.0)  # define_D: init_weights(netD, 'kaiming', scale=1)

    def _encode(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        return x1, x2, x3, self.down3(x3)

    def _decode(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor, x4: torch.Tensor) -> torch.Tensor:
        return self.outc(self.up4(self.up3(self.up2(x4, x3), x2), x1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if tuple(x.shape[-2:]) != (self.input_size, self.input_size):
            raise ValueError(
                f"U-Net discriminator needs {self.input_size}x{self.input_size} inputs (image head), "
                f"got {tuple(x.shape[-2:])}; use .mask(x) for the per-pixel map alone"
            )
        x1, x2, x3, x4 = self._encode(x)
        logit = self.classifier(x4.flatten(1))
        return logit, self._decode(x1, x2, x3, x4)

    def mask(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel logits only (no image head), for images of any size."""
        return self._decode(*self._encode(x))

