"""DRCN (Kim et al., CVPR 2016): one conv applied recursively, every recursion reconstructed,
the predictions averaged with learned weights; skip connection from the input.

``variant: paper`` (default) is wired as the paper (embedding -> D recursions H_1..H_D -> shared
reconstruction of each H_d). ``variant: seed`` is the seed collection's ``models/DRCN/model.py``
(HEAD 2315544): its key names and its wiring, in which the reconstruction's first conv sits
inside the recursion chain (see ``DRCNSeed``).
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from srcore.registry import StrictModel

from .blocks import conv3x3, normal_init_


class DRCNConfig(StrictModel):
    scale: int = Field(2, description="Scale of the (pre-upsampled) input.")
    variant: Literal["paper", "seed"] = Field(
        "paper",
        description="'paper': the paper's wiring (D predictions); 'seed': the collection's wiring, key "
        "names, dropout and 1x1 ensemble conv (D + 1 predictions; 1,775,122 parameters at D = 16).",
    )
    channels: int = Field(256, ge=1, description="Filters of every hidden layer (paper: 256).")
    recursions: int = Field(16, ge=1, description="D, applications of the shared conv (paper: 16).")


class DRCN(nn.Module):
    """embed: Conv 1->C + ReLU, Conv C->C + ReLU (H_0); H_d = ReLU(shared(H_{d-1})), d = 1..D;
    y_d = reconstruct(H_d) + x with reconstruct = Conv C->C + ReLU, Conv C->1;
    output = sum_d w_d y_d / sum_d w_d, w initialised to 1/D."""

    def __init__(self, cfg: DRCNConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.recursions = cfg.recursions
        self.embed = nn.Sequential(conv3x3(1, c), nn.ReLU(inplace=True), conv3x3(c, c), nn.ReLU(inplace=True))
        self.shared = conv3x3(c, c)
        self.reconstruct = nn.Sequential(conv3x3(c, c), nn.ReLU(inplace=True), conv3x3(c, 1))
        self.weights = nn.Parameter(torch.full((cfg.recursions,), 1.0 / cfg.recursions))
        self.relu = nn.ReLU()
        normal_init_(self)

    def forward_all(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """All D intermediate predictions (for recursive supervision) and the weighted output."""
        h = self.embed(x)
        preds = []
        for _ in range(self.recursions):
            h = self.relu(self.shared(h))
            preds.append(self.reconstruct(h) + x)
        w = self.weights
        out = sum(wd * p for wd, p in zip(w, preds)) / w.sum()
        return preds, out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[1]


class DRCNSeed(nn.Module):
    """The collection's DRCN: the recursion is fed the *reconstruction conv's* output.

    h = reconstruct_conv1(ReLU(drop(fea_in_conv2(ReLU(fea_in_conv1(x))))));
    y_0 = reconstruct_conv2(h) + x; then D times: h = reconstruct_conv1(ReLU(drop(drop(
    recursive_conv(h))))), y_d = reconstruct_conv2(h) + x (no ReLU between the two reconstruction
    convs); output = ensemble(cat(y_0..y_D)), a bias-free 1x1 conv (D + 1 -> 1), not normalised.
    Dropout p = 0.2 (twice in the recursion, as the code) acts in training only. Init as the
    collection: Kaiming-normal (ReLU) and zero bias for the embedding and reconstruction convs,
    PyTorch's default for ``recursive_conv`` and ``ensemble``.
    """

    def __init__(self, cfg: DRCNConfig) -> None:
        super().__init__()
        c = cfg.channels
        self.recursions = cfg.recursions
        self.fea_in_conv1 = conv3x3(1, c)
        self.fea_in_conv2 = conv3x3(c, c)
        self.recursive_conv = conv3x3(c, c)
        self.reconstruct_conv1 = conv3x3(c, c)
        self.reconstruct_conv2 = conv3x3(c, 1)
        self.ensemble = nn.Conv2d(cfg.recursions + 1, 1, 1, bias=False)
        self.dropout = nn.Dropout(p=0.2)
        self.relu = nn.ReLU()
        for m in (self.fea_in_conv1, self.fea_in_conv2, self.reconstruct_conv1, self.reconstruct_conv2):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)

    def forward_all(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The D + 1 predictions (for recursive supervision) and the ensemble output."""
        h = self.relu(self.dropout(self.fea_in_conv2(self.relu(self.fea_in_conv1(x)))))
        h = self.reconstruct_conv1(h)
        preds = [self.reconstruct_conv2(h) + x]
        for _ in range(self.recursions):
            h = self.reconstruct_conv1(self.relu(self.dropout(self.dropout(self.recursive_conv(h)))))
            preds.append(self.reconstruct_conv2(h) + x)
        return preds, self.ensemble(torch.cat(preds, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_all(x)[1]


def build_drcn(cfg: DRCNConfig) -> nn.Module:
    """DRCN on the bicubic-upsampled Y channel (paper's wiring, or the seed collection's)."""
    return DRCNSeed(cfg) if cfg.variant == "seed" else DRCN(cfg)
