"""GLEAN: full-size parameter count, a reduced-config forward/backward, the latent bank's weights."""

from __future__ import annotations

import logging

import pytest
import torch

from sr_plugin_srcnn.models.blocks import count_parameters
from sr_plugin_srcnn.models.glean import GLEAN, GLEANConfig
from sr_plugin_srcnn.models.stylegan2 import StyleGAN2Generator
from srcore.errors import SrcoreError

SMALL = dict(scale=8, in_size=8, num_rrdbs=1, max_channels=16, style_channels=16, channel_multiplier=1, num_mlps=2)


def test_full_size_counts() -> None:
    """x8 (32 -> 256): StyleGAN2-256 config-f bank 30,034,338 (frozen) + 132,445,523 trainable."""
    model = GLEAN(GLEANConfig(scale=8))
    assert count_parameters(model.generator) == 30_034_338
    assert count_parameters(model, trainable_only=True) == 132_445_523
    assert not any(p.requires_grad for p in model.generator.parameters())


def test_reduced_forward_backward_trains_only_encoder_decoder(caplog) -> None:
    with caplog.at_level(logging.WARNING):
        model = GLEAN(GLEANConfig(**SMALL))
    assert "random initialisation" in caplog.text and "random" in model.bank_source
    out = model(torch.rand(2, 3, 8, 8))
    assert out.shape == (2, 3, 64, 64) and torch.isfinite(out).all()
    out.mean().backward()
    assert all(p.grad is None for p in model.generator.parameters())
    assert model.encoder[0][0].conv_first.weight.grad is not None
    assert model.decoder[-1][-1].weight.grad is not None
    with pytest.raises(SrcoreError, match="takes 8x8"):
        model(torch.rand(1, 3, 16, 16))


def test_bank_loads_user_weights_and_says_so(tmp_path, caplog) -> None:
    bank = StyleGAN2Generator(64, 16, 2, 1, max_channels=16)
    path = tmp_path / "stylegan2.pt"
    torch.save({"g_ema": bank.state_dict()}, path)
    with caplog.at_level(logging.INFO):
        model = GLEAN(GLEANConfig(**SMALL, stylegan2_weights=str(path)))
    assert str(path) in caplog.text and "pretrained" in model.bank_source
    for key, value in bank.state_dict().items():
        torch.testing.assert_close(model.generator.state_dict()[key], value)
    wrong = tmp_path / "wrong.pt"
    torch.save({"g_ema": StyleGAN2Generator(32, 16, 2, 1, max_channels=16).state_dict()}, wrong)
    with pytest.raises(SrcoreError, match="does not fit a StyleGAN2 generator of size 64"):
        GLEAN(GLEANConfig(**SMALL, stylegan2_weights=str(wrong)))
    with pytest.raises(SrcoreError, match="file not found"):
        GLEAN(GLEANConfig(**SMALL, stylegan2_weights=str(tmp_path / "missing.pt")))


def test_stylegan2_synthesis_resolution() -> None:
    g = StyleGAN2Generator(32, 16, 2, 1, max_channels=16)
    assert g.n_latent == 8
    img = g(torch.randn(1, g.n_latent, 16))
    assert img.shape == (1, 3, 32, 32)
