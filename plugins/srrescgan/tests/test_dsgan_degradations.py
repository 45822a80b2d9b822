"""DSGAN networks, the released 300_G.pth, and the plugin's degradations."""

from __future__ import annotations

import pytest
import torch

from sr_plugin_srrescgan import plugin
from sr_plugin_srrescgan.dsgan import DSGANDiscriminator, DSGANGenerator


@pytest.fixture
def registries(srcore_plugin):
    return srcore_plugin(plugin, "srrescgan")


def test_dsgan_parameter_counts_and_key_names() -> None:
    g, d = DSGANGenerator(), DSGANDiscriminator()
    assert sum(p.numel() for p in g.parameters()) == 594_380
    assert sum(p.numel() for p in d.parameters()) == 1_030_273
    assert {"block_input.1.weight", "res_blocks.7.prelu.weight", "block_output.bias"} <= set(g.state_dict())
    assert "net.net.8.weight" in d.state_dict() and "net.net.3.running_mean" in d.state_dict()


def test_patch_discriminator_sees_only_high_frequencies() -> None:
    torch.manual_seed(0)
    d = DSGANDiscriminator().eval()
    x = torch.rand(1, 3, 24, 24)
    with torch.no_grad():  # a constant offset has no high frequencies: same scores away from the border
        a, b = d(x), d(x + 0.3)
    assert a.shape == (1, 1, 24, 24)
    assert torch.allclose(a[..., 6:-6, 6:-6], b[..., 6:-6, 6:-6], atol=1e-4)


def test_released_dsgan_generator_loads_and_runs(registries, weights) -> None:
    from srcore.engine.checkpoint import load_checkpoint

    loaded = load_checkpoint(weights("dsgan_300_G_RaoUmer.pth"))
    assert loaded.component.id == "srrescgan:dsgan_g" and loaded.params["n_res_blocks"] == 8
    z = torch.full((1, 3, 48, 48), 0.5)
    with torch.no_grad():
        out = loaded.module(z)
    assert out.shape == z.shape and 0 < out.min() and out.max() < 1
    assert abs(out.mean().item() - 0.5) < 0.01  # colours kept (the colour loss) ...
    assert out[..., 8:-8, 8:-8].std().item() > 2e-3  # ... but source-domain texture added


def test_dsgan_degradation_from_config(registries, weights) -> None:
    deg = registries.build("degradation", "srrescgan:dsgan", {"checkpoint": str(weights("dsgan_300_G_RaoUmer.pth"))})
    assert deg.scale == 4
    hr = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(1))
    lr = deg(hr)
    assert lr.shape == (2, 3, 16, 12)
    assert torch.equal(lr, torch.round(lr * 255) / 255)
    assert torch.equal(deg(hr[0]), lr[0])  # CHW works too, deterministic


def test_dsgan_degradation_rejects_other_checkpoints(registries, weights) -> None:
    from srcore.errors import SrcoreError

    with pytest.raises(SrcoreError, match="300_G.pth"):
        registries.build("degradation", "srrescgan:dsgan", {"checkpoint": "missing/300_G.pth"})
    with pytest.raises(SrcoreError, match="not a DSGAN generator"):
        registries.build("degradation", "srrescgan:dsgan", {"checkpoint": str(weights("srrescgan_x4_RaoUmer.pth"))})


def test_sensor_noise_chain_statistics_and_seed(registries) -> None:
    hr = torch.full((1, 3, 128, 128), 0.5)
    deg = registries.build("degradation", "srrescgan:sensor_noise", {})
    lr = deg(hr)
    assert lr.shape == (1, 3, 32, 32)
    assert torch.equal(lr, torch.round(lr * 255) / 255)
    assert lr.std().item() * 255 == pytest.approx(8.0, rel=0.1)
    again = registries.build("degradation", "srrescgan:sensor_noise", {})(hr)
    assert torch.equal(lr, again)  # fixed seed: the same test set on every run


def test_jpeg_chain_compresses_bicubic_lr(registries) -> None:
    from srcore.data.degrade import BicubicMatlab

    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    hr = (0.5 + 0.4 * torch.sin(xx / 3) * torch.cos(yy / 5)).expand(1, 3, 128, 128)
    lr = registries.build("degradation", "srrescgan:jpeg", {})(hr)
    bic = BicubicMatlab(4)(hr)
    err = (lr - bic).abs().mean().item() * 255
    assert lr.shape == (1, 3, 32, 32) and 0.5 < err < 10
