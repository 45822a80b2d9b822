"""``fxsr:conditional``: FxSR's training step with a conditional objective.

Per optimizer step: draw one t per sample (``ctx.rng``), feed it as a uniform map at the LR
size, and minimise mean_i sum_k w_k(t_i) * L_k(i) over the style controller's active terms
(pixel, VGG relu2_2 / relu4_4 / conv5_4 features, adversarial); logged as ``loss/<term>``
(unweighted means, except ``loss/adv``) and ``loss/total``. A stage whose controller has
only the pixel term is the PSNR pre-training stage (no VGG, no discriminator are built); with
an ``adv`` term the stage's discriminator (e.g. ``core:vgg128``) is trained alongside with the
stage's GAN loss type (``core``'s ``GANLoss``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from sr_plugin_fxsr.config import ConditionalParams
from sr_plugin_fxsr.controller import VGG_LAYERS
from sr_plugin_fxsr.model import DEFAULT_T, uniform_map
from srcore.engine.api import Batch, StepContext, StepSetup, TrainStep
from srcore.errors import ConfigError


def per_sample(err: torch.Tensor) -> torch.Tensor:
    """Mean of an elementwise error over all but the batch dimension: shape (N,)."""
    return err.flatten(1).mean(1)


def weight_gradient(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x`` unchanged in value, with the gradient reaching sample i multiplied by ``w[i]``."""
    w = w.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)
    return x * w + (x * (1 - w)).detach()


def weighted_g_loss(gan: Any, fake: torch.Tensor, real: torch.Tensor | None, w: torch.Tensor) -> torch.Tensor:
    """Generator adversarial loss with per-sample weights ``w`` (N,).

    Gradient: sample i's logits get w_i times the usual gradient, for every GAN type,
    relativistic ones included (whose loss does not split into per-sample terms); for separable
    losses (vanilla, lsgan, hinge, wgan) it is exactly the gradient of mean_i w_i * l_i, and
    with equal weights exactly w * the usual loss. Value (for the logs): mean(w) * g_loss.
    """
    mean_w = w.mean()
    if mean_w <= 0:
        return fake.sum() * 0.0  # no adversarial pressure for this batch (keeps the graph connected)
    return mean_w * gan.g_loss(weight_gradient(fake, w / mean_w), real)


class ConditionalStep(TrainStep):
    """FxSR's step; see the module doc."""

    def __init__(self, setup: StepSetup) -> None:
        p: ConditionalParams = setup.params  # type: ignore[assignment]
        stage = setup.stage
        _refuse_unused(stage)
        self.controller, self.sampling, self.stage = p.weights, p.t, stage
        self.generator = setup.wrap(setup.generator)  # DDP under torch.distributed (srcore.engine.api)
        self.networks: dict[str, nn.Module] = {"generator": self.generator}
        self.optimizers = {"generator": setup.optimizer(setup.generator.parameters(), stage.optim)}
        active = self.controller.active()
        self.pixel = _criterion(p.pixel_criterion)
        self.feature = _criterion(p.feature_criterion)
        layers = [VGG_LAYERS[n] for n in active if n in VGG_LAYERS]
        self.vgg: nn.Module | None = None
        if layers:
            from srcore.nn.vgg import VGGFeatureExtractor

            self.vgg = VGGFeatureExtractor(layers, weights=p.vgg_weights).to(setup.device)
        self.discriminator: nn.Module | None = None
        if "adv" in active:
            if stage.discriminator is None:
                raise ConfigError(
                    [f"stage '{stage.name}': step_params.weights has an 'adv' term but the stage has no "
                     "discriminator (set e.g. discriminator: {id: core:vgg128})"]
                )
            from srcore.nn.gan import GANLoss

            self.discriminator = setup.wrap(setup.build("discriminator", stage.discriminator).to(setup.device))
            self.networks["discriminator"] = self.discriminator
            self.optimizers["discriminator"] = setup.optimizer(self.discriminator.parameters(), stage.optim_d)
            self.gan = GANLoss(stage.gan.type)

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        lr, hr = batch["lr"], batch["hr"]
        t = self.sampling.sample(lr.shape[0], ctx.rng).to(lr.device)
        w = self.controller.weights(t)
        use_d = self.discriminator is not None and ctx.stage_step >= self.stage.gan.d_start
        log: dict[str, float | torch.Tensor] = {"t_mean": t.mean().detach()}

        if self.discriminator is not None:
            self.discriminator.requires_grad_(False)
        with ctx.autocast():
            sr = self.generator(lr, uniform_map(lr, t))
            terms = self._terms(sr.float(), hr)
            loss = sum(((w[k] * v).mean() for k, v in terms.items()), start=sr.new_zeros(()))
            if use_d:
                assert self.discriminator is not None
                real = self.discriminator(hr) if self.gan.needs_real_for_generator else None
                adv = weighted_g_loss(self.gan, self.discriminator(sr), real, w["adv"])
                loss = loss + adv
                log["loss/adv"] = adv.detach()  # weighted, like loss/total; the other terms unweighted
        ctx.backward(loss, "generator")
        ctx.optimizer_step("generator")
        log.update({f"loss/{k}": v.mean().detach() for k, v in terms.items()})
        log["loss/total"] = loss.detach()

        if use_d:
            log.update(self._update_discriminator(hr, sr.detach(), ctx))
        return log

    def _terms(self, sr: torch.Tensor, hr: torch.Tensor) -> dict[str, torch.Tensor]:
        """Unweighted per-sample value (N,) of each active term except the adversarial one."""
        active = self.controller.active()
        out: dict[str, torch.Tensor] = {}
        if "pixel" in active:
            out["pixel"] = per_sample(self.pixel(sr, hr))
        if self.vgg is not None:
            f_sr = self.vgg(sr)
            with torch.no_grad():
                f_hr = self.vgg(hr)
            for name in (n for n in active if n in VGG_LAYERS):
                layer = VGG_LAYERS[name]
                out[name] = per_sample(self.feature(f_sr[layer], f_hr[layer]))
        return out

    def _update_discriminator(self, hr: torch.Tensor, fake: torch.Tensor, ctx: StepContext) -> dict[str, torch.Tensor]:
        assert self.discriminator is not None
        self.discriminator.requires_grad_(True)
        for _ in range(self.stage.gan.d_steps):
            with ctx.autocast():
                d_real, d_fake = self.discriminator(hr), self.discriminator(fake)
                d_loss = self.gan.d_loss(d_real, d_fake)
            ctx.backward(d_loss, "discriminator")
            ctx.optimizer_step("discriminator")
        return {"loss/d": d_loss.detach(), "d_real": d_real.mean().detach(), "d_fake": d_fake.mean().detach()}

    def generator_forward(self, lr: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Validation/samples: the given map, else FxSR's default t = 0.8."""
        return self.generator(lr, cond if cond is not None else uniform_map(lr, DEFAULT_T))


def _criterion(name: str) -> nn.Module:
    """Elementwise distance (reduction none); ``per_sample`` reduces it."""
    return nn.L1Loss(reduction="none") if name == "l1" else nn.MSELoss(reduction="none")


def _refuse_unused(stage: Any) -> None:
    """Stage options this step would otherwise ignore silently: say where they belong.

    Compared with the defaults (not with what was typed), so a dumped config.json still loads.
    """
    from srcore.config import GanConfig, StageConfig

    problems = []
    if stage.losses != StageConfig().losses:
        problems.append(f"stage '{stage.name}'.losses: fxsr:conditional takes its loss terms and weights "
                        "from step_params.weights (pixel, vgg22, vgg44, vgg54, adv); remove 'losses'")
    if stage.gan.weight != GanConfig().weight:
        problems.append(f"stage '{stage.name}'.gan.weight: the adversarial weight of fxsr:conditional is "
                        "step_params.weights.adv (a function of t); remove gan.weight")
    if problems:
        raise ConfigError(problems)
