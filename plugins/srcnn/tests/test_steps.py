"""The ``srcnn:classic`` step: SGD + per-layer lr, adjustable clipping, deep supervision losses."""

from __future__ import annotations

import contextlib

import pytest
import torch

from sr_plugin_srcnn.steps import ClassicParams, build_classic_step
from srcore.config import RunConfig
from srcore.engine.api import StepSetup
from srcore.errors import ConfigError


class Ctx:
    """The engine's side of a step, reduced to plain backward/step (no AMP, no accumulation)."""

    def __init__(self, stage, stage_step: int = 0) -> None:
        self.device, self.stage, self.stage_step, self.global_step = torch.device("cpu"), stage, stage_step, stage_step
        self.rng = torch.Generator().manual_seed(0)
        self.optimizers: dict = {}

    def autocast(self):
        return contextlib.nullcontext()

    def backward(self, loss, optimizer):
        loss.backward()

    def optimizer_step(self, optimizer):
        self.optimizers[optimizer].step()
        self.optimizers[optimizer].zero_grad()


def make(
    registries, model: str, mparams: dict, step_params: dict, *, loss="core:mse", lr=0.1, wd=0.0, loss_params=None
):
    run = RunConfig.model_validate(
        {
            "model": {"id": model, "params": mparams},
            "stages": [
                {
                    "steps": 10,
                    "step": "srcnn:classic",
                    "step_params": step_params,
                    "losses": [{"id": loss, "params": loss_params or {}}],
                    "optim": {"lr": lr, "weight_decay": wd},
                }
            ],
        }
    )
    stage = run.stages[0]
    gen = registries.build("model", model, mparams)
    setup = StepSetup(
        run=run,
        stage=stage,
        params=ClassicParams(**step_params),
        generator=gen,
        registries=registries,
        device=torch.device("cpu"),
    )
    step = build_classic_step(setup)
    return step, stage, gen


def test_sgd_with_last_layer_lr_multiplier(registries) -> None:
    step, _, gen = make(registries, "srcnn:srcnn", {}, {"lr_mult": {"conv3": 0.1}, "momentum": 0.9}, wd=1e-4)
    opt = step.optimizers["generator"]
    assert isinstance(opt, torch.optim.SGD)
    by_lr = {g["lr"]: {id(p) for p in g["params"]} for g in opt.param_groups}
    assert by_lr[0.1 * 0.1] == {id(gen.conv3.weight), id(gen.conv3.bias)}
    assert len(by_lr[0.1]) == 4
    assert all(g["momentum"] == 0.9 and g["weight_decay"] == 1e-4 for g in opt.param_groups)
    with pytest.raises(ConfigError, match="no parameter name starts with 'conv9'"):
        make(registries, "srcnn:srcnn", {}, {"lr_mult": {"conv9": 0.1}})


def test_stage_optimizer_is_adam(registries) -> None:
    step, _, _ = make(
        registries, "srcnn:fsrcnn", {"scale": 2}, {"optimizer": "stage", "lr_mult": {"deconv": 0.1}}, lr=1e-3
    )
    opt = step.optimizers["generator"]
    assert isinstance(opt, torch.optim.Adam)
    assert sorted(g["lr"] for g in opt.param_groups) == pytest.approx([1e-4, 1e-3])


def test_adjustable_clipping_bounds_the_update(registries) -> None:
    """SGD without momentum: the update is lr x grad, the clipped grad norm is theta / lr, so the
    update norm is theta whatever the learning rate."""
    for lr in (0.5, 2.0):
        step, stage, gen = make(
            registries,
            "srcnn:vdsr",
            {"depth": 3, "channels": 4},
            {"momentum": 0.0, "clip_theta": 1e-3},
            lr=lr,
            loss_params={"reduction": "sum"},
        )
        ctx = Ctx(stage)
        ctx.optimizers = step.optimizers
        before = torch.cat([p.detach().flatten().clone() for p in gen.parameters()])
        step({"lr": torch.rand(2, 1, 16, 16), "hr": torch.rand(2, 1, 16, 16) + 2}, ctx)
        after = torch.cat([p.detach().flatten() for p in gen.parameters()])
        assert (after - before).norm().item() == pytest.approx(1e-3, rel=1e-3)


def test_drcn_recursive_supervision_loss(registries) -> None:
    params = {"alpha": 1.0, "alpha_decay_steps": 100, "deep_supervision": True, "momentum": 0.0}
    step, stage, gen = make(registries, "srcnn:drcn", {"channels": 4, "recursions": 3}, params, lr=1e-9)
    batch = {"lr": torch.rand(2, 1, 10, 10), "hr": torch.rand(2, 1, 10, 10)}
    with torch.no_grad():
        preds, final = gen.forward_all(batch["lr"])
        mse = [torch.mean((p - batch["hr"]) ** 2) for p in preds]
        loss_final = torch.mean((final - batch["hr"]) ** 2)
    ctx = Ctx(stage, stage_step=25)
    ctx.optimizers = step.optimizers
    logs = step(batch, ctx)
    a = 0.75  # linear decay 1 -> 0 over 100 steps, at step 25
    assert float(logs["alpha"]) == pytest.approx(a)
    expected = a * sum(mse) / 3 + (1 - a) * loss_final
    assert float(logs["loss/total"]) == pytest.approx(float(expected), rel=1e-5)
    assert step.alpha(200) == 0.0


def test_lapsrn_levels_supervised_against_downscaled_hr(registries) -> None:
    from srcore.data.resize import imresize

    params = {"alpha": 1.0, "deep_supervision": True, "intermediate_reduce": "sum", "momentum": 0.0}
    step, stage, gen = make(
        registries,
        "srcnn:lapsrn",
        {"scale": 4, "depth": 1, "channels": 4},
        params,
        loss="core:charbonnier",
        lr=1e-9,
        loss_params={"reduction": "sum", "eps": 1e-3},
    )
    batch = {"lr": torch.rand(1, 1, 6, 6), "hr": torch.rand(1, 1, 24, 24)}
    with torch.no_grad():
        (x2, x4), _ = gen.forward_all(batch["lr"])
        charb = lambda a, b: torch.sqrt((a - b) ** 2 + 1e-6).sum()  # noqa: E731
        expected = charb(x2, imresize(batch["hr"], size=(12, 12))) + charb(x4, batch["hr"])
    ctx = Ctx(stage)
    ctx.optimizers = step.optimizers
    assert float(step(batch, ctx)["loss/total"]) == pytest.approx(float(expected), rel=1e-5)


def test_deep_supervision_needs_intermediate_outputs(registries) -> None:
    with pytest.raises(ConfigError, match="no intermediate outputs"):
        make(registries, "srcnn:vdsr", {"depth": 3}, {"deep_supervision": True})
