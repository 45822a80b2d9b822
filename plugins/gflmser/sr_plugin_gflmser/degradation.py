"""``gflmser:h2l``: a trained H2L net as a learned HR -> LR degradation for any method's data."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from sr_plugin_gflmser.nets import H2L, hr_noise, to_signed, to_unit


class H2LDegradation:
    """Callable ``(hr, generator=None) -> lr`` on NCHW [0, 1] tensors (CHW also accepted).

    The H2L sees "HR_noise" (the HR bicubic-downscaled by ``noise_factor`` and back), as in
    training. Inputs whose sides are not multiples of 8 are reflect-padded and the LR is
    cropped to floor(side / 4). The net is deterministic, so ``generator`` is unused.
    """

    scale = 4

    def __init__(self, net: H2L, noise_factor: int = 4) -> None:
        self.net = net.eval().requires_grad_(False)
        self.noise_factor = noise_factor

    @torch.no_grad()
    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        single = hr.dim() == 3
        x = hr.unsqueeze(0) if single else hr
        param = next(self.net.parameters())
        x = to_signed(x.to(param.device, param.dtype))
        h, w = x.shape[-2:]
        ph, pw = -h % 8, -w % 8
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
        lr = to_unit(self.net(hr_noise(x, self.noise_factor))[0])[..., : h // 4, : w // 4]
        lr = lr.clamp(0, 1).to(hr.device, hr.dtype)
        return lr[0] if single else lr
