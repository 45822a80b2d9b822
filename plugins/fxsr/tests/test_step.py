"""The ``fxsr:conditional`` step with a minimal context (the engine's own is tested in core)."""

from __future__ import annotations

import copy
from contextlib import nullcontext

import pytest
import torch

from sr_plugin_fxsr.config import ConditionalParams
from sr_plugin_fxsr.controller import DS, StyleController, TSampling
from sr_plugin_fxsr.model import FxSRNet, uniform_map
from sr_plugin_fxsr.step import ConditionalStep, weight_gradient, weighted_g_loss
from srcore.config import RunConfig, StageConfig
from srcore.engine.api import StepSetup
from srcore.errors import ConfigError
from srcore.nn.gan import GANLoss
from srcore.plugins import PluginManager


class Ctx:
    """Just enough of ``StepContext``: plain backward and optimizer steps."""

    def __init__(self, step: ConditionalStep, stage: StageConfig, seed: int = 0) -> None:
        self.device, self.stage = torch.device("cpu"), stage
        self.global_step = self.stage_step = 0
        self.rng = torch.Generator().manual_seed(seed)
        self.optimizers = step.optimizers

    def autocast(self):
        return nullcontext()

    def backward(self, loss: torch.Tensor, optimizer: str) -> None:
        assert torch.isfinite(loss), f"non-finite {optimizer} loss"
        loss.backward()

    def optimizer_step(self, optimizer: str) -> None:
        self.optimizers[optimizer].step()
        self.optimizers[optimizer].zero_grad(set_to_none=True)


@pytest.fixture(scope="module")
def registries():
    return PluginManager().load(only=["fxsr"]).registries


def make_step(registries, step_params: dict, **stage_kw) -> tuple[ConditionalStep, StageConfig]:
    torch.manual_seed(0)
    stage = StageConfig(step="fxsr:conditional", step_params=step_params, **stage_kw)
    setup = StepSetup(
        run=RunConfig(model={"id": "fxsr:fxsr", "params": {"nb": 1, "nf": 16, "gc": 8}}),
        stage=stage,
        params=ConditionalParams(**step_params),
        generator=FxSRNet(nb=1, nf=16, gc=8),
        registries=registries,
        device=torch.device("cpu"),
    )
    return ConditionalStep(setup), stage


def batch(n: int = 4, hr: int = 32, seed: int = 0) -> dict[str, torch.Tensor]:
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(seed)
    hr_img = F.avg_pool2d(torch.rand(n, 3, hr, hr, generator=g), 3, 1, 1)  # some spatial structure
    return {"hr": hr_img, "lr": F.avg_pool2d(hr_img, 4)}


def test_psnr_stage_builds_no_vgg_or_discriminator_and_lowers_the_pixel_loss(registries) -> None:
    step, stage = make_step(registries, {"weights": {"pixel": 1.0}}, optim={"lr": 2e-3})
    assert set(step.networks) == {"generator"} and step.vgg is None
    ctx, b = Ctx(step, stage), batch()
    logs = [step(b, ctx) for _ in range(12)]
    first, last = logs[0]["loss/pixel"].item(), logs[-1]["loss/pixel"].item()
    assert last < 0.7 * first, (first, last)
    assert set(logs[0]) == {"t_mean", "loss/pixel", "loss/total"}


def test_loss_weights_each_sample_by_its_own_t(registries) -> None:
    """Pixel weight w(t) = t with t in {0, 1}: only the t = 1 samples count."""
    params = {"weights": {"pixel": [[0, 0], [1, 1]]}, "t": {"distribution": "choice", "values": [0.0, 1.0]}}
    step, stage = make_step(registries, params)
    b, before = batch(n=6), copy.deepcopy(step.generator)
    t = TSampling(**params["t"]).sample(6, torch.Generator().manual_seed(7))
    assert 0 < t.sum() < 6, "seed must draw both values"
    with torch.no_grad():
        sr = before(b["lr"], uniform_map(b["lr"], t))
        per = (sr - b["hr"]).abs().flatten(1).mean(1)
    out = step(b, Ctx(step, stage, seed=7))
    torch.testing.assert_close(out["loss/total"], (t * per).mean())
    torch.testing.assert_close(out["loss/pixel"], per.mean())


def test_weighted_adversarial_loss_weights_each_sample() -> None:
    logits = torch.randn(5, 1, generator=torch.Generator().manual_seed(0))
    w = torch.tensor([0.0, 0.5, 1.0, 2.0, 0.25])
    for kind in ("vanilla", "lsgan", "hinge"):  # separable: the gradient of mean_i w_i l_i
        gan = GANLoss(kind)
        a = logits.clone().requires_grad_(True)
        ours = weighted_g_loss(gan, a, None, w)
        ours.backward()
        b = logits.clone().requires_grad_(True)
        (w * torch.stack([gan.g_loss(b[i: i + 1]) for i in range(5)])).mean().backward()
        torch.testing.assert_close(a.grad, b.grad)
        torch.testing.assert_close(ours, w.mean() * gan.g_loss(logits))  # logged value
    real = torch.randn(5, 1, generator=torch.Generator().manual_seed(1))
    gan = GANLoss("ragan")  # relativistic: equal weights give exactly w * the usual loss
    a = logits.clone().requires_grad_(True)
    ours = weighted_g_loss(gan, a, real, torch.full((5,), 0.3))
    ours.backward()
    b = logits.clone().requires_grad_(True)
    expected = 0.3 * gan.g_loss(b, real)
    expected.backward()
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(a.grad, b.grad)
    # unequal weights: a sample with weight 0 gets no adversarial gradient
    a = logits.clone().requires_grad_(True)
    weighted_g_loss(gan, a, real, w).backward()
    assert a.grad[0].abs().item() == 0 and a.grad[1:].abs().min() > 0
    assert (weight_gradient(logits, w) - logits).abs().max() < 1e-6  # the value is unchanged


def test_gan_stage_trains_generator_and_discriminator_with_random_vgg(registries) -> None:
    params = {"weights": DS.model_dump(mode="json"), "vgg_weights": "random"}
    step, stage = make_step(
        registries, params,
        discriminator={"id": "core:vgg128", "params": {"nf": 8, "input_size": 32}},
        gan={"type": "ragan"},
    )
    assert set(step.networks) == {"generator", "discriminator"}
    assert set(step.vgg.layers) == {"relu2_2", "relu4_4"}
    d0 = copy.deepcopy(step.discriminator.state_dict())
    v0 = copy.deepcopy(step.vgg.state_dict())
    ctx = Ctx(step, stage)
    logs = [step(batch(seed=i), ctx) for i in range(3)]
    expected = {f"loss/{k}" for k in ("pixel", "vgg22", "vgg44", "adv", "d", "total")} | {"d_real", "d_fake"}
    for log in logs:
        assert expected <= set(log)
        assert all(torch.isfinite(torch.as_tensor(v)) for v in log.values())
    assert any(not torch.equal(d0[k], v) for k, v in step.discriminator.state_dict().items())
    assert all(torch.equal(v0[k], v) for k, v in step.vgg.state_dict().items())  # frozen
    assert all(p.requires_grad for p in step.discriminator.parameters())


def test_stage_misconfiguration_is_reported(registries) -> None:
    with pytest.raises(ConfigError, match="no discriminator"):
        make_step(registries, {"weights": {"pixel": 1.0, "adv": 1e-3}})
    with pytest.raises(ConfigError, match="takes its loss terms"):
        make_step(registries, {"weights": {"pixel": 1.0}}, losses=[{"id": "core:mse"}])
    with pytest.raises(ConfigError, match="gan.weight"):
        make_step(registries, {"weights": {"pixel": 1.0}}, gan={"weight": 1e-2})
    # a dumped config (defaults written out) is accepted
    make_step(registries, {"weights": {"pixel": 1.0}}, losses=[{"id": "core:l1"}], gan={"weight": 5e-3})
    with pytest.raises(ValueError):
        ConditionalParams(weights=StyleController(pixel=1.0).model_dump() | {"vgg33": 1})
