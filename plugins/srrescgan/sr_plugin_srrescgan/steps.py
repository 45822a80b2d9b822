"""Training steps: ``srrescgan:sr`` (SR stage of main_sr_color.py) and ``srrescgan:dsgan``.

Both take their loss terms from ``stage.losses`` (weighted, ``forward(sr, hr)``), their GAN
weight from ``stage.gan.weight`` and their discriminator from ``stage.discriminator``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sr_plugin_srrescgan.configs import DSGANStepParams, SRStepParams
from sr_plugin_srrescgan.filters import high_pass
from srcore.builtin.steps import build_losses, weighted_sum
from srcore.engine.api import Batch, StepContext, StepSetup, TrainStep
from srcore.errors import SrcoreError


def discriminator(setup: StepSetup) -> nn.Module:
    """The stage's discriminator, kept between stages under the role ``discriminator``."""
    if setup.stage.discriminator is None:
        raise ValueError(f"stage '{setup.stage.name}': step {setup.stage.step} needs `discriminator`")
    if "discriminator" not in setup.extra_networks:
        net = setup.build("discriminator", setup.stage.discriminator)
        setup.extra_networks["discriminator"] = net.to(setup.device)
    return setup.extra_networks["discriminator"]


# -- SR stage ---------------------------------------------------------------------------------


def mixup(
    hr: torch.Tensor, lr: torch.Tensor, alpha: float, rng: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mix the batch with a permutation of itself, lambda ~ Beta(alpha, alpha) (mixup_data)."""
    seed = int(torch.randint(0, 2**31 - 1, (), generator=rng))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    idx = torch.randperm(hr.shape[0], generator=rng).to(hr.device)
    return lam * hr + (1 - lam) * hr[idx], lam * lr + (1 - lam) * lr[idx], lam


class SRStep(TrainStep):
    """G: weighted pixel/perceptual/TV terms + RaGAN on high-pass images; then D (RaGAN)."""

    def __init__(self, setup: StepSetup) -> None:
        from srcore.nn.gan import GANLoss

        self.params: SRStepParams = setup.params  # type: ignore[assignment]
        if self.params.init_generator:
            from srcore.engine.checkpoint import load_checkpoint

            loaded = load_checkpoint(self.params.init_generator)
            if loaded.component.id != "srrescgan:srrescgan":
                raise SrcoreError(f"init_generator {self.params.init_generator} holds {loaded.component.id}")
            setup.generator.load_state_dict(loaded.module.state_dict())
        disc = discriminator(setup)
        self.networks = {"generator": setup.wrap(setup.generator), "discriminator": setup.wrap(disc)}
        self.terms = build_losses(setup)
        self.gan, self.gan_weight = GANLoss(setup.stage.gan.type), setup.stage.gan.weight
        self.optimizers = {
            "generator": setup.optimizer(setup.generator.parameters(), setup.stage.optim),
            "discriminator": setup.optimizer(disc.parameters(), setup.stage.optim_d),
        }

    def _hp(self, x: torch.Tensor) -> torch.Tensor:
        return high_pass(x, self.params.highpass_kernel, count_include_pad=True)

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        p, disc = self.params, self.networks["discriminator"]
        hr, lr = batch["hr"], batch["lr"]
        logs: dict[str, torch.Tensor | float] = {}
        if p.mixup_prob > 0 and float(torch.rand((), generator=ctx.rng)) < p.mixup_prob:
            hr, lr, logs["mixup_lambda"] = mixup(hr, lr, p.mixup_alpha, ctx.rng)
        k = 255.0 if p.range_255 else 1.0
        real = hr * k

        disc.requires_grad_(False)
        with ctx.autocast():
            fake = (self.generator_forward(lr).float() * k).clamp(0.0, k)
            total, terms = weighted_sum(self.terms, fake, real)
            d_fake = disc(self._hp(fake)).float()
            d_real = disc(self._hp(real)).float().detach()
            g_gan = self.gan.g_loss(d_fake, d_real)
            total = total + self.gan_weight * g_gan
        logs.update(terms, **{"loss/g_gan": g_gan.detach()})
        ctx.backward(total, "generator")
        ctx.optimizer_step("generator")
        logs["loss/total"] = total.detach()

        disc.requires_grad_(True)
        with ctx.autocast():
            d_real = disc(self._hp(real)).float()
            d_fake = disc(self._hp(fake.detach())).float()
            d_loss = self.gan.d_loss(d_real, d_fake)
        ctx.backward(d_loss, "discriminator")
        ctx.optimizer_step("discriminator")
        logs.update({"loss/d": d_loss.detach(), "d/real": d_real.detach().mean(), "d/fake": d_fake.detach().mean()})
        return logs


# -- DSGAN ------------------------------------------------------------------------------------


def random_crop_like(x: torch.Tensor, size: tuple[int, int], rng: torch.Generator) -> torch.Tensor:
    """One random ``size`` window of the batch ``x`` (offsets drawn from ``rng``)."""
    h, w = x.shape[-2:]
    if h < size[0] or w < size[1]:
        raise ValueError(f"real-domain patches {h}x{w} are smaller than the generated {size[0]}x{size[1]}")
    top = int(torch.randint(0, h - size[0] + 1, (), generator=rng))
    left = int(torch.randint(0, w - size[1] + 1, (), generator=rng))
    return x[..., top : top + size[0], left : left + size[1]]


class DSGANStep(TrainStep):
    """DSGAN: z = MATLAB bicubic of the clean HR patch / downscale; G_d(z) vs real-domain patches.

    G: stage losses between G_d(z) and z (colour + LPIPS) + gan.weight * -log D(G_d(z));
    D: -log D(real) - log(1 - D(G_d(z))), real = a window of ``lr_real`` of z's size (both
    per-pixel means, not halved, as dsgan/loss.py; from logits, i.e. without its +1e-8).
    The run's model is G_d (scale 1), so the dataset's ``hr`` patches are the 512 crops and
    ``lr_real`` patches are as large; z is 128 and the real window 128, as in dsgan/train.py.
    """

    def __init__(self, setup: StepSetup) -> None:
        from srcore.data.degrade import BicubicMatlab

        self.params: DSGANStepParams = setup.params  # type: ignore[assignment]
        self.down = BicubicMatlab(self.params.downscale, quantize=False)
        disc = discriminator(setup)
        self.networks = {"generator": setup.wrap(setup.generator), "discriminator": setup.wrap(disc)}
        self.terms = build_losses(setup)
        self.gan_weight = setup.stage.gan.weight
        self.optimizers = {
            "generator": setup.optimizer(setup.generator.parameters(), setup.stage.optim),
            "discriminator": setup.optimizer(disc.parameters(), setup.stage.optim_d),
        }

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        if "lr_real" not in batch:
            raise ValueError("step srrescgan:dsgan needs real-domain patches: set data.train.lr_real")
        disc = self.networks["discriminator"]
        z = self.down(batch["hr"])
        real = random_crop_like(batch["lr_real"], tuple(z.shape[-2:]), ctx.rng)
        logs: dict[str, torch.Tensor | float] = {}

        disc.requires_grad_(False)
        with ctx.autocast():
            fake = self.generator_forward(z).float()
            total, terms = weighted_sum(self.terms, fake, z)
            fake_logits = disc(fake).float()
            tex = F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
            total = total + self.gan_weight * tex
        logs.update(terms, **{"loss/texture": tex.detach()})
        ctx.backward(total, "generator")
        ctx.optimizer_step("generator")
        logs["loss/total"] = total.detach()

        disc.requires_grad_(True)
        with ctx.autocast():
            real_logits = disc(real).float()
            fake_logits = disc(fake.detach()).float()
            d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            d_loss = d_loss + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        ctx.backward(d_loss, "discriminator")
        ctx.optimizer_step("discriminator")
        logs.update({"loss/d": d_loss.detach(), "d/real": torch.sigmoid(real_logits).mean().detach()})
        logs["d/fake"] = torch.sigmoid(fake_logits).mean().detach()
        return logs
