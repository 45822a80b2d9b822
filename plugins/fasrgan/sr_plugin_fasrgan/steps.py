"""Training steps of FASRGAN (fine-grained attention) and Fs-SRGAN (feature sharing).

Both follow the authors' ``optimize_parameters``: a generator step with D frozen, then a
discriminator step on the detached SR, once per iteration. The generator's content terms are
the stage's ``losses`` (recipes: 1e-2 L1 + 1 VGG19 conv5_4 L1); the image-level adversarial term
is ``stage.gan`` (type ``ragan``, weight 5e-3: the code hard-codes the relativistic form).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from sr_plugin_fasrgan.plugin import FASRGANParams
from srcore.builtin.steps import build_losses, weighted_sum
from srcore.config import StageConfig
from srcore.engine.api import Batch, StepContext, StepSetup, TrainStep
from srcore.errors import ConfigError
from srcore.nn.gan import GANLoss


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _check_stage(stage: StageConfig, step: str, where: str = "stages") -> None:
    """Options of the generic adversarial step these steps do not implement are errors, not no-ops."""
    problems = []
    if stage.discriminator is None:
        problems.append(f"{where}.discriminator: the {step} step needs a discriminator")
    if stage.gan.d_steps != 1 or stage.gan.d_start != 0:
        problems.append(f"{where}.gan: {step} updates G then D once per iteration (d_steps 1, d_start 0)")
    if stage.gan.input != "rgb":
        problems.append(f"{where}.gan.input: {step} feeds D the RGB image (or E's features), not '{stage.gan.input}'")
    if step == "fssrgan" and stage.accumulate != 1:
        problems.append(f"{where}.accumulate: E is stepped by both optimizers; accumulation is not supported")
    if problems:
        raise ConfigError(problems, source=f"step fasrgan:{step}")


class _GANStepBase(TrainStep):
    def __init__(self, setup: StepSetup, step: str) -> None:
        stage = setup.stage
        _check_stage(stage, step)
        assert stage.discriminator is not None
        if "discriminator" not in setup.extra_networks:  # kept between stages and in checkpoints
            setup.extra_networks["discriminator"] = setup.build("discriminator", stage.discriminator).to(setup.device)
        self.D: nn.Module = setup.extra_networks["discriminator"]
        self.terms = build_losses(setup)
        self.gan = GANLoss(stage.gan.type)
        self.gan_weight = stage.gan.weight

    def content_loss(self, sr: torch.Tensor, hr: torch.Tensor, logs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Weighted sum of the stage's loss terms (pixel, perceptual), logged unweighted as loss/<label>."""
        total, term_logs = weighted_sum(self.terms, sr, hr)
        logs.update(term_logs)
        return total

    def generator_losses(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def discriminator_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        lr, hr = batch["lr"], batch["hr"]
        gen = self.networks["generator"]
        self.D.requires_grad_(False)
        with ctx.autocast():
            sr = gen(lr)
            g_total, logs = self.generator_losses(sr, hr)
        ctx.backward(g_total, "generator")
        ctx.optimizer_step("generator")
        self.D.requires_grad_(True)
        with ctx.autocast():
            d_total, d_logs = self.discriminator_loss(sr, hr)
        ctx.backward(d_total, "discriminator")
        ctx.optimizer_step("discriminator")
        return {**logs, **d_logs, "l_g_total": g_total.detach(), "l_d_total": d_total.detach()}


class FASRGANStep(_GANStepBase):
    """G: content + w_gan * RaGAN(image) + w_mask * GAN(pixel) + w_att * attention L1; D: both GAN terms."""

    def __init__(self, setup: StepSetup) -> None:
        super().__init__(setup, "fasrgan")
        p = setup.params
        assert isinstance(p, FASRGANParams)
        self.mask_weight, self.atten_weight = p.mask_gan_weight, p.atten_weight
        self.D = setup.wrap(self.D)
        self.networks = {"generator": setup.wrap(setup.generator), "discriminator": self.D}
        self.optimizers = {
            "generator": setup.optimizer(setup.generator.parameters(), setup.stage.optim),
            "discriminator": setup.optimizer(self.D.parameters(), setup.stage.optim_d),
        }

    def generator_losses(
        self, sr: torch.Tensor, hr: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Total generator loss of FASRGANModel.optimize_parameters and its parts (D frozen)."""
        logs: dict[str, torch.Tensor] = {}
        total = self.content_loss(sr, hr, logs)
        fake_logit, fake_mask = self.D(sr)
        real_logit, real_mask = (t.detach() for t in self.D(hr))
        l_gan = self.gan_weight * self.gan.g_loss(fake_logit, real_logit)
        # the real-mask term has no gradient (detached); kept so the logged value is the authors'
        l_mask = self.mask_weight * (_bce(real_mask, 0.0) + _bce(fake_mask, 1.0)) / 2
        weight = 1 - torch.sigmoid(fake_mask).detach()
        l_att = self.atten_weight * ((sr - hr).abs() * weight).mean()
        logs.update(l_g_gan=l_gan.detach(), l_g_gan_mask=l_mask.detach(), l_g_atten=l_att.detach())
        return total + l_gan + l_mask + l_att, logs

    def discriminator_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real_logit, real_mask = self.D(hr)
        fake_logit, fake_mask = self.D(sr.detach())
        l_img = self.gan.d_loss(real_logit, fake_logit)
        l_mask = (_bce(real_mask, 1.0) + _bce(fake_mask, 0.0)) / 2
        logs = {"l_d_img": l_img.detach(), "l_d_mask": l_mask.detach(),
                "D_real": real_logit.detach().mean(), "D_fake": fake_logit.detach().mean()}
        return l_img + l_mask, logs


class FsSRGANStep(_GANStepBase):
    """Feature sharing: SR = G(E(LR)), D judges E(HR) and E(SR); E is in both optimizers.

    As in the authors' code (optimizer_D is built from the same parameter list after D's
    parameters are appended), the D step also updates E, with the D optimizer's learning rate
    and moments; G gets no gradient there because SR is detached.
    """

    def __init__(self, setup: StepSetup) -> None:
        super().__init__(setup, "fssrgan")
        net = setup.generator
        if not (hasattr(net, "E") and hasattr(net, "G")):
            raise ConfigError(
                [f"model: the fssrgan step needs the feature-sharing model fasrgan:fssrgan, got {type(net).__name__}"]
            )
        self.E: nn.Module = net.E
        self.networks = {"generator": setup.wrap(net), "discriminator": self.D}
        # the D step trains E too: under DDP its E(x) -> D forward goes through one wrapper of both
        self.judge = setup.wrap(nn.Sequential(self.E, self.D))
        self.optimizers = {
            "generator": setup.optimizer(list(net.parameters()), setup.stage.optim),
            "discriminator": setup.optimizer(
                list(self.E.parameters()) + list(self.D.parameters()), setup.stage.optim_d
            ),
        }

    def generator_losses(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logs: dict[str, torch.Tensor] = {}
        total = self.content_loss(sr, hr, logs)
        fake = self.D(self.E(sr))
        real = self.D(self.E(hr)).detach()
        l_gan = self.gan_weight * self.gan.g_loss(fake, real)
        logs["l_g_gan"] = l_gan.detach()
        return total + l_gan, logs

    def discriminator_loss(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = self.judge(hr)
        fake = self.judge(sr.detach())
        loss = self.gan.d_loss(real, fake)
        return loss, {"l_d_total": loss.detach(), "D_real": real.detach().mean(), "D_fake": fake.detach().mean()}
