"""FASRGAN / Fs-SRGAN training steps: loss equations of the authors' code and gradient routing.

Networks are shrunk (nb, nf, input sizes) through the recipes' own configs; VGG19 runs with
random weights (``weights: random``) since ImageNet weights are unavailable here.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn import functional as F

from srcore.config import resolve_run_config
from srcore.engine.api import StepSetup
from srcore.engine.context import Context
from srcore.plugins import PluginManager

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def registries():
    return PluginManager().load(only=["core", "fasrgan"]).registries


def make_step(registries, recipe: str, overrides: list[str], stage: int = 1) -> tuple[Any, Any]:
    cfg = resolve_run_config(registries, recipe=recipe, overrides=["val.metrics=[]", *overrides])
    torch.manual_seed(0)
    gen = registries.build("model", cfg.model.id, cfg.model.params)
    st = cfg.stages[stage]
    comp = registries.steps.get(st.step)
    setup = StepSetup(cfg, st, comp.parse_config(st.step_params), gen, registries, CPU)
    return comp.builder(setup), cfg


def engine_context(step: Any, cfg: Any, stage: int = 1) -> Context:
    ctx = Context(cfg.stages[stage], CPU, "off", torch.Generator().manual_seed(0), step.networks["generator"])
    st = cfg.stages[stage]
    ctx.register_optimizers(dict(step.optimizers), {"generator": st.schedule, "discriminator": st.schedule_d})
    return ctx


FASRGAN_TINY = [
    "model.params.nb=1", "model.params.nf=8", "model.params.gc=4",
    "stages.1.discriminator.params.input_size=16", "stages.1.losses.1.params.weights=random",
    "stages.1.losses.1.params.layers={relu2_2: 1.0}",
]


def batch(scale: int, hr_size: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    hr = torch.rand(2, 3, hr_size, hr_size, generator=g)
    return {"hr": hr, "lr": F.avg_pool2d(hr, scale)}


def bce(x: torch.Tensor, t: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(x, torch.full_like(x, t))


def test_fasrgan_generator_and_discriminator_losses(registries) -> None:
    step, _ = make_step(registries, "fasrgan:fasrgan-x4", FASRGAN_TINY)
    b = batch(4, 16)
    sr = step.networks["generator"](b["lr"])
    total, logs = step.generator_losses(sr, b["hr"])
    D = step.networks["discriminator"]
    perceptual = step.terms[1][2]
    with torch.no_grad():  # D in train mode: batch statistics, so repeated calls agree
        fl, fm = D(sr)
        rl, rm = D(b["hr"])
        expected = (
            1e-2 * (sr - b["hr"]).abs().mean()
            + 1.0 * perceptual(sr, b["hr"])
            + 5e-3 * (bce(rl - fl.mean(), 0.0) + bce(fl - rl.mean(), 1.0)) / 2
            + 5e-3 * (bce(rm, 0.0) + bce(fm, 1.0)) / 2
            + 5e-2 * ((sr - b["hr"]).abs() * (1 - torch.sigmoid(fm))).mean()
        )
        torch.testing.assert_close(total.detach(), expected, atol=1e-6, rtol=1e-5)
        d_total, _ = step.discriminator_loss(sr, b["hr"])
        d_expected = (bce(rl - fl.mean(), 1.0) + bce(fl - rl.mean(), 0.0)) / 2 + (bce(rm, 1.0) + bce(fm, 0.0)) / 2
        torch.testing.assert_close(d_total, d_expected, atol=1e-6, rtol=1e-5)
    assert {"l_g_gan", "l_g_gan_mask", "l_g_atten", "loss/pix", "loss/fea"} <= logs.keys()


def test_fasrgan_attention_weight_is_detached(registries) -> None:
    """Only the attention L1 term: its gradient w.r.t. SR is w * sign(SR-HR) * (1 - sigmoid(M(SR))) / N,
    with no path through the discriminator's mask."""
    step, _ = make_step(
        registries, "fasrgan:fasrgan-x4",
        [*FASRGAN_TINY, "stages.1.losses=[]", "stages.1.gan.weight=0", "stages.1.step_params.mask_gan_weight=0"],
    )
    b = batch(4, 16, seed=1)
    D = step.networks["discriminator"].eval()
    sr = torch.rand_like(b["hr"]).requires_grad_(True)
    total, _ = step.generator_losses(sr, b["hr"])
    total.backward()
    with torch.no_grad():
        _, fm = D(sr)
        expected = 5e-2 * torch.sign(sr - b["hr"]) * (1 - torch.sigmoid(fm)) / sr.numel()
    torch.testing.assert_close(sr.grad, expected, atol=1e-9, rtol=1e-5)


def test_fasrgan_step_updates_both_networks(registries) -> None:
    step, cfg = make_step(registries, "fasrgan:fasrgan-x4", FASRGAN_TINY)
    ctx = engine_context(step, cfg)
    g0 = [p.detach().clone() for p in step.networks["generator"].parameters()]
    d0 = [p.detach().clone() for p in step.networks["discriminator"].parameters()]
    logs = step(batch(4, 16), ctx)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    assert any(not torch.equal(a, p) for a, p in zip(g0, step.networks["generator"].parameters()))
    assert any(not torch.equal(a, p) for a, p in zip(d0, step.networks["discriminator"].parameters()))
    assert all(p.requires_grad for p in step.networks["discriminator"].parameters())  # unfrozen after G step


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, p) for a, p in zip(before, module.parameters()))


def test_fssrgan_extractor_updated_by_generator_and_discriminator(registries) -> None:
    step, cfg = make_step(
        registries, "fasrgan:fssrgan-x4",
        ["model.params.nb=1", "model.params.nf=8", "model.params.gc=4",
         "stages.1.discriminator.params.in_nc=8", "stages.1.discriminator.params.nf=4",
         "stages.1.discriminator.params.input_size=64", "stages.1.losses.1.params.weights=random",
         "stages.1.losses.1.params.layers={relu1_2: 1.0}"],
    )
    net, D = step.networks["generator"], step.networks["discriminator"]
    assert type(D).__name__ == "DiscriminatorVGG192" and D.features[0].in_channels == 8  # D sees E's features
    ctx = engine_context(step, cfg)
    seen: dict[str, dict[str, bool]] = {}
    original = ctx.optimizer_step

    def recording_step(name: str) -> None:
        before = {"E": _snapshot(net.E), "G": _snapshot(net.G), "D": _snapshot(D)}
        original(name)
        seen[name] = {k: _changed(v, {"E": net.E, "G": net.G, "D": D}[k]) for k, v in before.items()}

    ctx.optimizer_step = recording_step  # type: ignore[method-assign]
    logs = step(batch(4, 64), ctx)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    assert seen["generator"] == {"E": True, "G": True, "D": False}
    assert seen["discriminator"] == {"E": True, "G": False, "D": True}


def test_fssrgan_adversarial_gradient_reaches_extractor_through_sr(registries) -> None:
    """With only the GAN term, E still receives gradient in the G step (via E(SR) and SR = G(E(LR)))."""
    step, _ = make_step(
        registries, "fasrgan:fssrgan-x4",
        ["model.params.nb=1", "model.params.nf=8", "model.params.gc=4", "stages.1.losses=[]",
         "stages.1.discriminator.params.in_nc=8", "stages.1.discriminator.params.nf=4",
         "stages.1.discriminator.params.input_size=64"],
    )
    net = step.networks["generator"]
    b = batch(4, 64)
    total, _ = step.generator_losses(net(b["lr"]), b["hr"])
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.E.parameters())
