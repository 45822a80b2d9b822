"""Built-in training steps of the core plugin: ``core:supervised`` and ``core:adversarial``.

Both read their losses, optimizers and GAN settings from the stage (``StageConfig``), so they
take no ``step_params``. A method that needs something else registers its own step.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from srcore.engine.api import Batch, StepContext, StepSetup, TrainStep
from srcore.registry import RecipeRegistrar


def build_losses(setup: StepSetup) -> list[tuple[str, float, nn.Module]]:
    """(label, weight, module) for every loss term of the stage, on the run's device."""
    terms = []
    for term in setup.stage.losses:
        module = setup.build("loss", term)
        if isinstance(module, nn.Module):
            module = module.to(setup.device)
        terms.append((term.label or term.id.split(":")[-1], term.weight, module))
    return terms


def weighted_sum(
    terms: list[tuple[str, float, nn.Module]], sr: torch.Tensor, hr: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    logs: dict[str, torch.Tensor] = {}
    total = sr.new_zeros(())
    for label, weight, fn in terms:
        value = fn(sr, hr)
        logs[f"loss/{label}"] = value.detach()
        total = total + weight * value
    return total, logs


class SupervisedStep(TrainStep):
    """Generator only: weighted sum of the stage's loss terms between SR and HR."""

    def __init__(self, setup: StepSetup) -> None:
        self.networks = {"generator": setup.wrap(setup.generator)}
        self.losses = build_losses(setup)
        self.optimizers = {"generator": setup.optimizer(setup.generator.parameters(), setup.stage.optim)}

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        with ctx.autocast():
            sr = self.generator_forward(batch["lr"], batch.get("cond"))
            total, logs = weighted_sum(self.losses, sr.float(), batch["hr"])
        ctx.backward(total, "generator")
        ctx.optimizer_step("generator")
        logs["loss/total"] = total.detach()
        return logs


def high_pass(x: torch.Tensor, kernel: int = 5) -> torch.Tensor:
    """x minus its box-filtered low-pass (DSGAN/SRResCGAN's FilterHigh, average pooling)."""
    return x - F.avg_pool2d(x, kernel, stride=1, padding=kernel // 2, count_include_pad=True)


class AdversarialStep(TrainStep):
    """Generator + discriminator (ESRGAN-style): pixel/perceptual terms plus a GAN term.

    Any ``srcore.nn.gan.GANLoss`` variant, relativistic included; the discriminator is updated
    ``gan.d_steps`` times per generator update; the generator sees D from ``gan.d_start`` on.
    The discriminator is kept between stages (role ``discriminator``).
    """

    def __init__(self, setup: StepSetup) -> None:
        from srcore.nn.gan import GANLoss

        stage = setup.stage
        if stage.discriminator is None:
            raise ValueError(f"stage '{stage.name}': the adversarial step needs `discriminator`")
        if "discriminator" not in setup.extra_networks:
            setup.extra_networks["discriminator"] = setup.build("discriminator", stage.discriminator).to(setup.device)
        disc = setup.extra_networks["discriminator"]
        self.networks = {"generator": setup.wrap(setup.generator), "discriminator": setup.wrap(disc)}
        self.losses = build_losses(setup)
        self.gan = GANLoss(stage.gan.type)
        self.cfg = stage.gan
        self.optimizers = {
            "generator": setup.optimizer(setup.generator.parameters(), stage.optim),
            "discriminator": setup.optimizer(disc.parameters(), stage.optim_d),
        }

    def _d_input(self, x: torch.Tensor) -> torch.Tensor:
        return high_pass(x) if self.cfg.input == "highpass" else x

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        disc = self.networks["discriminator"]
        hr = batch["hr"]
        use_gan = ctx.stage_step >= self.cfg.d_start
        disc.requires_grad_(False)
        with ctx.autocast():
            sr = self.generator_forward(batch["lr"], batch.get("cond"))
            total, logs = weighted_sum(self.losses, sr.float(), hr)
            if use_gan:
                fake = disc(self._d_input(sr)).float()
                real = disc(self._d_input(hr)).float().detach() if self.gan.needs_real_for_generator else None
                g_adv = self.gan.g_loss(fake, real)
                logs["loss/g_gan"] = g_adv.detach()
                total = total + self.cfg.weight * g_adv
        ctx.backward(total, "generator")
        ctx.optimizer_step("generator")
        logs["loss/total"] = total.detach()

        disc.requires_grad_(True)
        fake_in = self._d_input(sr.detach())
        for _ in range(self.cfg.d_steps):
            with ctx.autocast():
                real_logits = disc(self._d_input(hr)).float()
                fake_logits = disc(fake_in).float()
                d_loss = self.gan.d_loss(real_logits, fake_logits)
            ctx.backward(d_loss, "discriminator")
            ctx.optimizer_step("discriminator")
        logs["loss/d"] = d_loss.detach()
        logs["d/real"] = real_logits.detach().mean()
        logs["d/fake"] = fake_logits.detach().mean()
        return logs


def register_steps(register: RecipeRegistrar) -> None:
    register.step("supervised", SupervisedStep, description="Generator trained on weighted loss terms.",
                  uses=("losses", "optim"))
    register.step(
        "adversarial",
        AdversarialStep,
        description="Generator + discriminator with any GAN loss (relativistic included).",
    )
