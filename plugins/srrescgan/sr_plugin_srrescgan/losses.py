"""Loss terms of SRResCGAN (TV-difference) and DSGAN (colour, LPIPS perceptual).

Each is an ``nn.Module`` with ``forward(sr, hr)`` as the core's loss registry expects.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from sr_plugin_srrescgan.filters import low_pass_valid
from srcore.errors import SrcoreError


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


ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet
_ALEX_SLICES = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}  # torchvision features index -> LPIPS slice


def _alexnet_weights(path: str | None) -> Path:
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise SrcoreError(f"srrescgan:lpips: backbone_weights file {p} not found")
        return p
    p = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not p.is_file():
        raise SrcoreError(
            f"srrescgan:lpips needs the ImageNet AlexNet weights {ALEXNET_FILE}, not found at {p}. "
            "Download it from https://download.pytorch.org/models/ into that folder, or give its "
            "path in the loss params as backbone_weights."
        )
    return p


class LPIPSLoss(nn.Module):
    """LPIPS v0.1 (AlexNet, ``net-lin``) as a differentiable loss on [0, 1] images (DSGAN's w_per).

    The linear calibration layers ship with the ``lpips`` package; the AlexNet backbone is loaded
    from ``backbone_weights`` or the torch hub cache (never downloaded here). Frozen.
    """

    def __init__(self, backbone_weights: str | None = None) -> None:
        super().__init__()
        import warnings

        import lpips

        path = _alexnet_weights(backbone_weights)
        with warnings.catch_warnings():  # lpips still passes torchvision's deprecated `pretrained`
            warnings.simplefilter("ignore", UserWarning)
            self.net = lpips.LPIPS(net="alex", pretrained=True, pnet_rand=True, verbose=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        mapped = {}
        for key, value in state.items():
            parts = key.split(".")
            if parts[0] == "features" and int(parts[1]) in _ALEX_SLICES:
                mapped[f"net.slice{_ALEX_SLICES[int(parts[1])]}.{parts[1]}.{parts[2]}"] = value
        if len(mapped) != 2 * len(_ALEX_SLICES):
            raise SrcoreError(f"srrescgan:lpips: {backbone_weights} has no AlexNet 'features.*' conv weights")
        self.net.net.load_state_dict({k[4:]: v for k, v in mapped.items()}, strict=True)
        self.net.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPSLoss:  # the metric network stays in eval mode
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return self.net(sr, hr, normalize=True).mean()
