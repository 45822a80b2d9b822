"""DSGAN: the learned source-domain degradation of SRResCGAN's training data.

(Fritsche, Gu, Timofte, "Frequency Separation for Real-World Super-Resolution", ICCVW 2019;
``training_codes/models/DSGAN.py`` of RaoUmer/SRResCGAN, which holds the released ``300_G.pth``.)

* ``DSGANGenerator``: conv3x3 3->64 + PReLU(1), 8 residual blocks (conv, PReLU(1), conv, +x),
  conv3x3 64->3, sigmoid. Works on [0, 1] images at LR size: its input is the MATLAB-bicubic
  downscaled clean image, its output the same image with the source domain's corruption.
* ``DSGANDiscriminator``: patch discriminator on the high frequencies of the image
  (0.5 + 0.5 * (x - AvgPool5(x)), padding not counted), 3 convs 5x5 + a 1x1 conv to one score
  per pixel. It returns logits (the original applies a sigmoid inside; the losses here do).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sr_plugin_srrescgan.filters import high_pass
from srcore.errors import SrcoreError


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.prelu = nn.PReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.prelu(self.conv1(x)))


class DSGANGenerator(nn.Module):
    """G_d: [0, 1] clean LR -> [0, 1] LR with the source domain's noise/artefacts (same size)."""

    def __init__(self, n_res_blocks: int = 8) -> None:
        super().__init__()
        self.block_input = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.PReLU())
        self.res_blocks = nn.ModuleList(ResidualBlock(64) for _ in range(n_res_blocks))
        self.block_output = nn.Conv2d(64, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block_input(x)
        for blk in self.res_blocks:
            h = blk(h)
        return torch.sigmoid(self.block_output(h))


class DSGANDiscriminator(nn.Module):
    """Patch D_x on high frequencies; keys ``net.net.{0,2,3,5,6,8}`` as the original."""

    def __init__(self, kernel_size: int = 5) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.net = nn.Module()
        self.net.net = nn.Sequential(
            nn.Conv2d(3, 64, 5, padding=2),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 5, padding=2),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
            nn.Conv2d(128, 256, 5, padding=2),
            nn.BatchNorm2d(256),
            nn.LeakyReLU(0.2),
            nn.Conv2d(256, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.net(high_pass(x, self.kernel_size, count_include_pad=False))


def load_dsgan_generator(path: str | Path) -> DSGANGenerator:
    """G_d from the released ``300_G.pth``, a plain state dict or a srcore run checkpoint."""
    from srcore.engine.checkpoint import load_checkpoint

    if not Path(path).expanduser().exists():
        raise SrcoreError(
            f"DSGAN generator weights {path} not found: give the released 300_G.pth or a run of recipe "
            "srrescgan-dsgan (e.g. --set data.train.degradation.params.checkpoint=PATH)"
        )
    loaded = load_checkpoint(Path(path).expanduser())
    if loaded.component.id != "srrescgan:dsgan_g":
        raise SrcoreError(f"{path} holds a {loaded.component.id} model, not a DSGAN generator (srrescgan:dsgan_g)")
    return loaded.module
