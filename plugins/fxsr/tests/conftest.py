"""Shared fixtures of the fxsr plugin tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from srcore.testing import shared_data_dir


def shared_data() -> Path:
    """``../shared/data`` next to the repository root, or ``$SRCORE_SHARED_DATA``."""
    return shared_data_dir()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """The test models are tiny: intra-op threads only add contention on a shared machine
    (measured: 20 ms vs 0.5-2 s per training step of the nb=1 model). Restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def set5_lr() -> Callable[[int, int], torch.Tensor]:
    """``lr(h, w)``: a real photograph (Set5 baby, centre crop, area-downscaled x4), (1,3,h,w) in [0,1]."""
    path = shared_data() / "Set5" / "HR" / "baby.png"
    if not path.is_file():
        pytest.skip(f"real test image absent: {path} (set SRCORE_SHARED_DATA to the shared data folder)")
    import cv2

    img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)

    def lr(h: int, w: int) -> torch.Tensor:
        top, left = (img.shape[0] - 4 * h) // 2, (img.shape[1] - 4 * w) // 2
        crop = img[top: top + 4 * h, left: left + 4 * w]
        small = cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)
        return torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255.0

    return lr


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Unit-gain random weights (std 1/sqrt(fan_in)) and biases std 0.1 for every conv, so that
    the SFT modulation and the condition branch change the output markedly (the training init
    scales the dense convs by 0.1 and would hide mistakes)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / fan_in**0.5)
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    return model
