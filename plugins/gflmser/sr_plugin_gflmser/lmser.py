"""The joint 7-level Lmser of the authors' ``Lmser/lmser_gate.py`` (and its ungated twin).

One module holds both directions, trained together (``Lmser/lmser_gate_main.py``): the H2L
sees the HR face and a z map (z ~ N(0, 1) of dimension 64 through ``fully_connect`` to 64x64),
goes 64 -D-> 32 -D-> 16 -D-> 8 -D-> 4 -U-> 8 -U-> 16 over groups 0..6 and ends in a tanh LR
face; the L2H takes that LR and goes 16 -D-> 8 -D-> 4 -U-> 8 -U-> 16 -U-> 32 -U-> 64, its
group i adding H2L skip 6 - i (the mirrored level, same resolution). ``lmser_gate.py`` gates
every skip by its Pearson correlation with the decoder map (``correlation_gate``),
``lmser_skip.py`` adds it as is. Attribute names are the authors', so their state dicts load
key for key once the idle branch of each rescale unit (``checkpoint.py``) is dropped. Their
file has no initialisation code: PyTorch's defaults, unlike ``v1_lmser.py``'s N(0, 0.01).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from sr_plugin_gflmser.nets import FEATURES, Down, Group, Up, correlation_gate, cubic_resize, to_signed, to_unit

JointSkip = Literal["gated", "ungated"]
LEVELS = 7
FACE = 64  # HR side: the z map is a fixed 64x64 (Linear 64 -> 64 * 64)
Z_DIM = 64  # the authors draw z of the image width
H2L_RESCALES = ("down", "down", "down", "down", "up", "up")  # up_rescale_0..5
L2H_RESCALES = ("down", "down", "up", "up", "up", "up")  # down_rescale_0..5


def _rescale(kind: str) -> nn.Module:
    return Down() if kind == "down" else Up()


def lr_target(hr: torch.Tensor) -> torch.Tensor:
    """The joint model's LR target: ``AvgPool2d(3, stride=4, padding=1)`` of the HR (zeros padded)."""
    return F.avg_pool2d(hr, 3, stride=4, padding=1)


class JointLmser(nn.Module):
    """Joint H2L + L2H Lmser; ``forward`` is the x4 SR model on [0, 1] images of any size.

    ``joint(hr, z)`` is the authors' training forward in [-1, 1]. As SR model (as
    ``GFLmser``), an LR input is resized to 16x16, the H2L runs on it bicubic-upsampled to
    64x64 with z = 0 (the prior's mean, so inference is deterministic) to give the skips, the
    L2H super-resolves the LR itself, and the 64x64 result is resized to 4x the input size.
    """

    scale = 4

    def __init__(self, skip: JointSkip = "gated") -> None:
        super().__init__()
        self.skip = skip
        self.fully_connect = nn.Linear(Z_DIM, FACE * FACE)
        self.up_process = nn.Conv2d(4, FEATURES, 3, padding=1)
        self.up_final_process = nn.Conv2d(FEATURES, 3, 3, padding=1)
        self.down_process = nn.Conv2d(3, FEATURES, 3, padding=1)
        self.down_final_process = nn.Conv2d(FEATURES, 3, 3, padding=1)
        for i in range(LEVELS):
            self.add_module(f"up_layer_{i}", Group())
            self.add_module(f"down_layer_{i}", Group())
        for i, (up, down) in enumerate(zip(H2L_RESCALES, L2H_RESCALES)):
            self.add_module(f"up_rescale_{i}", _rescale(up))
            self.add_module(f"down_rescale_{i}", _rescale(down))
        for m in self.modules():  # undo the N(0, 0.01) of the shared v1 blocks: defaults here
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.reset_parameters()

    def h2l(self, hr: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(N,3,64,64) HR and (N,64) z in [-1, 1] -> tanh LR (N,3,16,16) and skips up0..up6."""
        z_map = self.fully_connect(z).reshape(-1, 1, FACE, FACE)
        out = self.up_process(torch.cat([hr, z_map], dim=1))
        skips = []
        for i in range(LEVELS):
            out, s = getattr(self, f"up_layer_{i}").encode(out)
            skips.append(s)
            if i < LEVELS - 1:
                out = getattr(self, f"up_rescale_{i}")(out)
        return torch.tanh(self.up_final_process(out)), skips

    def l2h(self, lr: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        """LR (N,3,16,16) in [-1, 1] + the H2L skips -> tanh HR (N,3,64,64); group i takes up(6-i)."""
        out = self.down_process(lr)
        for i in range(LEVELS):
            s = skips[LEVELS - 1 - i]
            if self.skip == "gated":
                s = correlation_gate(s, out)
            out = getattr(self, f"down_layer_{i}").decode(out, s)
            if i < LEVELS - 1:
                out = getattr(self, f"down_rescale_{i}")(out)
        return torch.tanh(self.down_final_process(out))

    def joint(self, hr: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The authors' ``Lmser.forward``: (LR_out, HR_out, HR_avg_pool), all in [-1, 1]."""
        lr, skips = self.h2l(hr, z)
        return lr, self.l2h(lr, skips), lr_target(hr)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        x = cubic_resize(to_signed(lr), (FACE // 4, FACE // 4), antialias=True)
        z = x.new_zeros(x.shape[0], Z_DIM)
        _, skips = self.h2l(cubic_resize(x, (FACE, FACE)).clamp(-1, 1), z)
        return cubic_resize(to_unit(self.l2h(x, skips)), (4 * h, 4 * w))
