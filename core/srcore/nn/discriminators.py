"""VGG-style discriminators shared by the ESRGAN family (ESRGAN, FASRGAN baseline, SRResCGAN, FxSR).

* ``DiscriminatorVGG128``: mmsr/BasicSR-v1 ``Discriminator_VGG_128`` with its key names
  (``conv0_0``, ``conv0_1``/``bn0_1`` ... ``linear1``, ``linear2``); convs after the first have no
  bias; 128x128 inputs; 14,499,401 parameters for ``in_nc=3, nf=64``.
* ``DiscriminatorVGG192``: the old BasicSR ``Discriminator_VGG_192`` (FASRGAN/Fs-SRGAN code),
  every conv with bias, 6 stride-2 stages (192 -> 3), key names of its flattened
  ``features``/``classifier`` sequentials; any input channel count (Fs-SRGAN feeds 64-channel
  features: 20,735,689 parameters).

``input_size`` other than the original (128 / 192) only resizes the first linear layer, for
small experiments; released weights need the original size.
"""

from __future__ import annotations

import torch
from torch import nn


def kaiming_init_(module: nn.Module, scale: float = 1.0) -> None:
    """BasicSR's ``weights_init_kaiming``: convs and linears Kaiming-normal (fan_in) x scale,
    zero bias; BatchNorm weight 1, bias 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            m.weight.data.mul_(scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _check_size(name: str, x: torch.Tensor, size: int) -> None:
    """The classifier's linear layer fixes the input size: say so instead of a shape mismatch."""
    if tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"{name} needs {size}x{size} inputs, got {tuple(x.shape[-2:])}")


class DiscriminatorVGG128(nn.Module):
    """ESRGAN's VGG-style D: conv0_0 (3x3, bias) + LReLU, conv0_1 (4x4 s2) + BN + LReLU, then four
    stages [3x3 s1 + BN + LReLU, 4x4 s2 + BN + LReLU] of widths 2nf, 4nf, 8nf, 8nf; 128 -> 4;
    Linear(8nf*16 -> 100) + LReLU + Linear(100 -> 1). Returns one logit per image, (N, 1)."""

    def __init__(self, in_nc: int = 3, nf: int = 64, input_size: int = 128) -> None:
        super().__init__()
        if input_size % 32:
            raise ValueError(f"Discriminator_VGG_128: input_size must be a multiple of 32, got {input_size}")
        self.input_size = input_size
        self.conv0_0 = nn.Conv2d(in_nc, nf, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(nf, nf, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(nf, affine=True)
        widths = (nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf)
        for s in range(1, 5):
            c_in, c_out = widths[s - 1], widths[s]
            setattr(self, f"conv{s}_0", nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False))
            setattr(self, f"bn{s}_0", nn.BatchNorm2d(c_out, affine=True))
            setattr(self, f"conv{s}_1", nn.Conv2d(c_out, c_out, 4, 2, 1, bias=False))
            setattr(self, f"bn{s}_1", nn.BatchNorm2d(c_out, affine=True))
        self.linear1 = nn.Linear(8 * nf * (input_size // 32) ** 2, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(0.2)
        kaiming_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_size("Discriminator_VGG_128", x, self.input_size)
        fea = self.lrelu(self.conv0_0(x))
        fea = self.lrelu(self.bn0_1(self.conv0_1(fea)))
        for s in range(1, 5):
            fea = self.lrelu(getattr(self, f"bn{s}_0")(getattr(self, f"conv{s}_0")(fea)))
            fea = self.lrelu(getattr(self, f"bn{s}_1")(getattr(self, f"conv{s}_1")(fea)))
        fea = self.lrelu(self.linear1(fea.flatten(1)))
        return self.linear2(fea)


def _conv_bn_lrelu(c_in: int, c_out: int, k: int, stride: int, bn: bool) -> list[nn.Module]:
    """Old BasicSR ``conv_block`` (mode CNA, zero padding (k-1)//2, bias) flattened into a list."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, bias=True)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2))
    return layers


class DiscriminatorVGG192(nn.Module):
    """Old-BasicSR VGG-style D for 192x192 inputs of ``in_nc`` channels.

    conv0 3x3 in_nc->nf + LReLU (no BN), conv1 4x4 s2 + BN + LReLU, then five stages
    [3x3 s1, 4x4 s2] (+BN +LReLU) of widths 2nf, 4nf, 8nf, 8nf, 8nf; 192 -> 3; classifier
    Linear(8nf*9 -> 100) + LReLU + Linear(100 -> 1). Keys: ``features.{i}`` (flat sequential,
    as BasicSR's ``sequential`` unwraps each block), ``classifier.{0,2}``.
    """

    def __init__(self, in_nc: int = 3, nf: int = 64, input_size: int = 192) -> None:
        super().__init__()
        if input_size % 64:
            raise ValueError(f"Discriminator_VGG_192: input_size must be a multiple of 64, got {input_size}")
        self.input_size = input_size
        layers = _conv_bn_lrelu(in_nc, nf, 3, 1, bn=False) + _conv_bn_lrelu(nf, nf, 4, 2, bn=True)
        widths = (nf, 2 * nf, 4 * nf, 8 * nf, 8 * nf, 8 * nf)
        for s in range(1, 6):
            layers += _conv_bn_lrelu(widths[s - 1], widths[s], 3, 1, bn=True)
            layers += _conv_bn_lrelu(widths[s], widths[s], 4, 2, bn=True)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(8 * nf * (input_size // 64) ** 2, 100), nn.LeakyReLU(0.2), nn.Linear(100, 1)
        )
        kaiming_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_size("Discriminator_VGG_192", x, self.input_size)
        return self.classifier(self.features(x).flatten(1))
