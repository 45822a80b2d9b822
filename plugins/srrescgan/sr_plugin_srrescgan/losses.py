"""Loss terms of SRResCGAN (TV-difference) and DSGAN (colour, LPIPS perceptual).

Each is an ``nn.Module`` with ``forward(sr, hr)`` as the core's loss registry expects.
"""

from __future__ import annotations

import torch
from torch import nn

from sr_plugin_srrescgan.filters import low_pass_valid


class TVDifferenceLoss(nn.Module):
    """SRResCGAN's ``TV_L1LOSS``: L1 between the forward differences of SR and HR.

    [sum |dH(sr) - dH(hr)| + sum |dW(sr) - dW(hr)|] / (N*C*H*W).
    """

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        dh = (sr[:, :, 1:] - sr[:, :, :-1]) - (hr[:, :, 1:] - hr[:, :, :-1])
        dw = (sr[..., 1:] - sr[..., :-1]) - (hr[..., 1:] - hr[..., :-1])
        return (dh.abs().sum() + dw.abs().sum()) / sr.numel()


class ColorLoss(nn.Module):
    """DSGAN's colour loss: L1 between the low frequencies (box filter, no padding)."""

    def __init__(self, kernel_size: int = 5) -> None:
        super().__init__()
        self.kernel_size = kernel_size

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return (low_pass_valid(sr, self.kernel_size) - low_pass_valid(hr, self.kernel_size)).abs().mean()


class LPIPSLoss(nn.Module):
    """LPIPS v0.1 (AlexNet, ``net-lin``) as a differentiable loss on [0, 1] images (DSGAN's w_per).

    The network is the core metric's (``srcore.metrics.perceptual.load_lpips``): calibration layers
    from the ``lpips`` package, AlexNet backbone from ``backbone_weights`` or the torch hub cache
    (never downloaded; a missing file is an error naming it). Frozen.
    """

    def __init__(self, backbone_weights: str | None = None) -> None:
        super().__init__()
        from srcore.metrics.perceptual import load_lpips

        self.net = load_lpips("alex", backbone_weights)
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPSLoss:  # the metric network stays in eval mode
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return self.net(sr, hr, normalize=True).mean()
