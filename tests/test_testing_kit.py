"""srcore.testing: the conformance check must catch broken models, and fixtures must clean up."""

from __future__ import annotations

import torch
from torch import nn

from srcore import hookimpl
from srcore.plugins import load_plugins
from srcore.testing import check_conformance


class Upscaler(nn.Module):
    def __init__(self, scale: int, wrong: bool = False, frozen: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3 * scale * scale, 3, padding=1)
        self.shuffle = nn.PixelShuffle(scale)
        self.wrong, self.scale = wrong, scale
        if frozen:
            self.conv.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.shuffle(self.conv(x))
        return out[..., :-1] if self.wrong and self.scale == 3 else out


class Models:
    @hookimpl
    def srcore_register_models(self, register):
        from pydantic import Field

        from srcore.registry import StrictModel

        class Cfg(StrictModel):
            scale: int = Field(2)

        register("good", lambda c: Upscaler(c.scale), config=Cfg, scales=(2, 3))
        register("bad_x3", lambda c: Upscaler(c.scale, wrong=True), config=Cfg, scales=(2, 3))
        register("frozen", lambda c: Upscaler(c.scale, frozen=True), config=Cfg, scales=(2,))
        register("nan", lambda c: nn.Sequential(Upscaler(2), nn.Threshold(10.0, float("nan"))), scales=(2,))


def test_conformance_reports_each_broken_model(srcore_plugin) -> None:
    regs = srcore_plugin(Models(), "kit")
    problems = check_conformance(regs, "kit")
    assert problems == [
        "kit:bad_x3 x3: output shape (1, 3, 36, 35), expected (1, 3, 36, 36)",
        "kit:frozen x2: no parameter received a gradient",
        "kit:nan x2: non-finite output",
    ]


def test_fixture_unregisters_after_test() -> None:
    assert "kit" not in load_plugins().plugins


def test_missing_pretrained_weights_are_not_a_conformance_problem(srcore_manager, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "emptyhub"))
    regs = srcore_manager.registries
    from srcore.errors import MissingWeightsError

    try:  # the default perceptual loss needs ImageNet VGG19 weights that are absent here
        regs.build("loss", "core:perceptual")
    except MissingWeightsError as exc:
        assert "vgg19-dcbb9e9d.pth" in str(exc)
    else:
        raise AssertionError("expected MissingWeightsError with an empty torch hub")
    assert check_conformance(regs, "core", kinds=("loss", "discriminator", "model")) == []
