"""SRResCGAN generator G_SR (Umer, Foresti, Micheloni, CVPRW 2020).

Layer by layer as ``srrescgan_code_demo/models/SRResCGAN.py`` of RaoUmer/SRResCGAN @ cfb4217:
bilinear x s upsampling -> wavelet (Daubechies-7) noise estimate sigma -> ResCNet residual
(weight-normalised 5x5 encoder, 5 pre-activation PReLU blocks, the first without identity,
weight-normalised 5x5 transposed-conv decoder) -> projection of the residual onto the L2 ball of
radius exp(alpha) * sigma * sqrt(N - 1) -> subtraction from the upsampled image -> Hardtanh
clip to [0, 255].

The network works in 0..255 like the original (the noise estimate and the projection radius are
in those units); ``SRResCGAN.forward`` takes and returns [0, 1] at the framework boundary.
State-dict keys are the released ones (``alpha``, ``model.conv1.weight_g`` ...).

The original's ``zeromean()`` (subtracting the mean of every ``nn.Conv2d`` weight before each
forward) is not reproduced: every such conv is weight-normalised, so its weight is recomputed
from ``weight_g``/``weight_v`` right after and the subtraction never reaches the output.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# Daubechies-7 high-pass decomposition filter (14 taps), as in the original Wmad_estimator.
DB7_DECOMP_HIGH = (
    -0.07785205408506236, 0.39653931948230575, -0.7291320908465551, 0.4697822874053586,
    0.14390600392910627, -0.22403618499416572, -0.07130921926705004, 0.0806126091510659,
    0.03802993693503463, -0.01657454163101562, -0.012550998556013784, 0.00042957797300470274,
    0.0018016407039998328, 0.0003537138000010399,
)  # fmt: skip


class WNConv(nn.Module):
    """Weight-normalised (transposed) convolution with the ``weight_g``/``weight_v`` parameters.

    weight = g * v / ||v||, the norm taken over every dim but 0, as ``torch.nn.utils.weight_norm``
    (dim=0) which the original used; for a transposed conv dim 0 is the *input* channel. The
    weight is ``torch._weight_norm``, the very kernel that module calls: another order of the
    same arithmetic (``v * (g / v.norm())``) differs by ~1e-7 and moves a few output pixels by a
    gray level.
    """

    def __init__(self, cin: int, cout: int, kernel: int, *, transposed: bool = False, padding: int = 0) -> None:
        super().__init__()
        self.transposed, self.padding = transposed, padding
        shape = (cin, cout, kernel, kernel) if transposed else (cout, cin, kernel, kernel)
        ref = (nn.ConvTranspose2d if transposed else nn.Conv2d)(cin, cout, kernel)  # PyTorch default init
        self.weight_v = nn.Parameter(ref.weight.detach().clone().reshape(shape))
        self.weight_g = nn.Parameter(torch.norm_except_dim(self.weight_v.detach(), 2, 0))
        self.bias = nn.Parameter(ref.bias.detach().clone())

    @property
    def weight(self) -> torch.Tensor:
        return torch._weight_norm(self.weight_v, self.weight_g, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            return F.conv_transpose2d(x, self.weight, self.bias, padding=self.padding)
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class BasicBlock(nn.Module):
    """Pre-activation block: PReLU, reflect-pad, WN conv3x3, PReLU, reflect-pad, WN conv3x3 (+x)."""

    def __init__(self, channels: int, shortcut: bool = True) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.conv1 = WNConv(channels, channels, 3)
        self.relu1 = nn.PReLU(num_parameters=channels, init=0.1)
        self.relu2 = nn.PReLU(num_parameters=channels, init=0.1)
        self.conv2 = WNConv(channels, channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.pad(self.relu1(x), (1, 1, 1, 1), mode="reflect"))
        out = self.conv2(F.pad(self.relu2(out), (1, 1, 1, 1), mode="reflect"))
        return x + out if self.shortcut else out


def l2_ball_projection(r: torch.Tensor, sigma: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Project each image of ``r`` onto the L2 ball of radius exp(alpha) * sigma * sqrt(N - 1).

    N = C*H*W; ``sigma`` has one value per image (0..255 units). Radius and scaling as the
    original L2Proj: r * eps / max(||r||, eps).
    """
    if torch.onnx.is_in_onnx_export():  # N from the graph's shape, not the export example's
        root = (torch._shape_as_tensor(r)[1:].prod().to(r.dtype) - 1).sqrt()
    else:
        root = math.sqrt(r.shape[1] * r.shape[2] * r.shape[3] - 1)
    eps = (torch.exp(alpha) * sigma * root).reshape(-1, 1, 1, 1)
    norm = r.flatten(1).norm(dim=1).reshape(-1, 1, 1, 1)
    return r * (eps / torch.maximum(norm, eps))


class WaveletNoiseEstimator(nn.Module):
    """Noise standard deviation by the MAD of the finest diagonal Daubechies-7 sub-band.

    As the original Wmad_estimator: if the batch maximum exceeds 1 the input is divided by 255;
    each channel is filtered vertically then horizontally with the high-pass filter, stride 2,
    reflect padding of 7; sigma_c = median(|HH_c|) / 0.6745 (lower median, ``torch.median``);
    the result is the mean over channels in [0, 1] units, one value per image, detached.

    ONNX-exportable with the same values: the filter is a fixed-shape buffer, one per channel (an
    ``expand`` to the traced channel count is a kernel of unknown shape to the exporter), the
    /255 test is a ``where`` (a Python ``if`` would be frozen by tracing), and under export the
    median (no ONNX op) is the sorted middle element, which is the same element.
    """

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        filt = torch.tensor(DB7_DECOMP_HIGH).reshape(1, 1, -1, 1).repeat(channels, 1, 1, 1)
        self.register_buffer("filt", filt, persistent=False)

    @staticmethod
    def lower_median(v: torch.Tensor) -> torch.Tensor:
        """``v.median(dim=-1).values``; by sort + index when exporting (both pick the (n-1)//2-th smallest)."""
        if torch.onnx.is_in_onnx_export():
            return v.sort(dim=-1).values.select(-1, (v.shape[-1] - 1) // 2)
        return v.median(dim=-1).values

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        x = x / torch.where(x.max() > 1, 255.0, 1.0)  # x / 1 is x exactly
        c, half = self.filt.shape[0], self.filt.shape[2] // 2  # x has ``channels`` channels
        w = self.filt.to(x.dtype)
        d = F.conv2d(F.pad(x, (0, 0, half, half), mode="reflect"), w, stride=(2, 1), groups=c)
        d = F.pad(d, (half, half, 0, 0), mode="reflect")
        d = F.conv2d(d.transpose(2, 3), w, stride=(2, 1), groups=c)
        mad = self.lower_median(d.flatten(2).abs()) / 0.6745  # (N, C)
        return mad.mean(dim=1)


class ResCNet(nn.Module):
    """Encoder (WN conv5x5) -> ResNet body -> decoder (WN tconv5x5) -> L2-ball projection."""

    def __init__(self, depth: int = 5, channels: int = 64, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = WNConv(in_channels, channels, 5)
        blocks = [BasicBlock(channels, shortcut=i > 0) for i in range(depth)]
        self.layer1 = nn.Sequential(*blocks)
        self.conv_out = WNConv(channels, in_channels, 5, transposed=True, padding=2)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.pad(x, (2, 2, 2, 2), mode="reflect"))
        out = self.conv_out(self.layer1(out))
        return l2_ball_projection(out, sigma, alpha)


class SRResCGAN(nn.Module):
    """SRResCGAN generator; ``forward`` maps [0, 1] LR to [0, 1] SR (0..255 inside)."""

    def __init__(self, scale: int = 4, depth: int = 5, channels: int = 64, clip: bool = True) -> None:
        super().__init__()
        self.scale, self.clip = scale, clip
        self.model = ResCNet(depth, channels)
        self.noise_estimator = WaveletNoiseEstimator()
        self.alpha = nn.Parameter(torch.tensor([math.log(2.0)]))

    def forward_255(self, y: torch.Tensor, clip: bool | None = None) -> torch.Tensor:
        """The original forward on 0..255 images; ``clip=False`` skips the final Hardtanh."""
        up = F.interpolate(y, scale_factor=self.scale, mode="bilinear", align_corners=False)
        sigma = self.noise_estimator(up) * 255.0
        out = up - self.model(up, sigma, self.alpha)
        return F.hardtanh(out, 0.0, 255.0) if (self.clip if clip is None else clip) else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_255(x * 255.0) / 255.0

    def forward_unclipped(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] in, unclipped estimate out (for ensembles that clip once after averaging)."""
        return self.forward_255(x * 255.0, clip=False) / 255.0
