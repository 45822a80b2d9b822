"""Loss terms: TV-difference, DSGAN colour, LPIPS (with AlexNet weights the test creates)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from sr_plugin_srrescgan.losses import ColorLoss, LPIPSLoss, TVDifferenceLoss


def test_tv_difference_by_hand() -> None:
    sr = torch.tensor([[[[0.0, 1.0], [3.0, 7.0]]]])
    hr = torch.zeros_like(sr)
    # dH: [3, 6] ; dW: [1, 4]  -> (9 + 5) / 4
    assert TVDifferenceLoss()(sr, hr).item() == pytest.approx(14 / 4)
    assert TVDifferenceLoss()(sr + 5.0, sr).item() == 0.0  # blind to a constant shift


def test_color_loss_ignores_high_frequencies() -> None:
    x = torch.full((1, 3, 20, 20), 0.5)
    checker = (torch.arange(20)[:, None] + torch.arange(20)[None, :]).remainder(2).float() - 0.5
    assert ColorLoss(kernel_size=2)(x + 0.2 * checker, x).item() == pytest.approx(0.0, abs=1e-7)
    assert ColorLoss()(x + 0.1, x).item() == pytest.approx(0.1, abs=1e-6)


def _fake_alexnet(path) -> None:
    """A torchvision-layout AlexNet 'features' state dict with random weights (not ImageNet)."""
    torch.manual_seed(0)
    convs = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}
    state = {}
    for i, (cout, cin, k) in convs.items():
        conv = nn.Conv2d(cin, cout, k)
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = conv.weight.detach(), conv.bias.detach()
    torch.save(state, path)


def test_lpips_loss_with_created_backbone(tmp_path) -> None:
    weights = tmp_path / "alexnet.pth"
    _fake_alexnet(weights)
    loss = LPIPSLoss(str(weights)).train()
    assert not loss.net.training
    assert torch.equal(loss.net.net.slice1[0].weight, torch.load(weights)["features.0.weight"])
    x = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    y = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y.requires_grad_(True)
    value = loss(y, x)
    value.backward()
    assert value.item() > 0 and y.grad is not None and y.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())


def test_lpips_loss_names_missing_weights(tmp_path, monkeypatch) -> None:
    from srcore.errors import SrcoreError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(SrcoreError, match="alexnet-owt-7be5be79.pth"):
        LPIPSLoss()
