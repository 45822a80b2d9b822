"""``gflmser:bidirectional``: the staged H2L/L2H training of the authors' ``v1_main.py``.

Each stage of the recipe runs one phase (spec 5.1):

* ``h2l`` (epochs 1-2): H2L learns MSE(H2L(HR_noise), bicubic LR);
* ``h2l_adversarial`` (epochs 3-49): per iteration, D (LR domain, ``nets.d_lr``) takes an LSGAN
  step on real unpaired LR vs H2L output; then H2L takes an adversarial step
  (``stage.gan.weight`` x LSGAN) and a content step (MSE to the bicubic LR);
* ``l2h`` (epochs 50-200): H2L is frozen; L2H learns ``hr_weight`` x MSE(L2H(H2L(HR_noise),
  skips), HR), optionally with an LSGAN term against the HR-domain D (``nets.d_hr``).

All losses are computed in the nets' [-1, 1] range, as the authors'; D takes [0, 1] images.
Optimizer names: ``generator`` is the net trained in the phase (``stage.optim``), and
``discriminator`` the D of the phase (``stage.optim_d``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import torch
from torch import nn
from torch.nn import functional as F

from sr_plugin_gflmser.configs import BidirectionalParams
from sr_plugin_gflmser.nets import GFLmser, cubic_resize, hr_noise, to_signed, to_unit
from srcore.engine.api import Batch, StepContext, StepSetup, TrainStep
from srcore.errors import SrcoreError
from srcore.nn.gan import GANLoss

M = TypeVar("M", bound=nn.Module)


def unwrap(module: nn.Module, cls: type[M], step: str, model: str) -> M:
    """The ``cls`` net under DDP/compile wrappers; a clear error for any other generator."""
    while not isinstance(module, cls) and hasattr(module, "module"):
        module = module.module
    module = getattr(module, "_orig_mod", module)
    if not isinstance(module, cls):
        raise SrcoreError(f"step {step} needs model {model}, got {type(module).__name__}")
    return module


def face_hr(batch: Batch, size: int) -> tuple[torch.Tensor, bool]:
    """HR faces in [0, 1] at size x size (whole images resized, antialiased) and whether resized."""
    hr01 = batch["hr"]
    resized = tuple(hr01.shape[-2:]) != (size, size)
    if resized:
        hr01 = cubic_resize(hr01, (size, size), antialias=True).clamp(0, 1)
    return hr01, resized


def real_lr(batch: Batch, size: int) -> torch.Tensor | None:
    """Unpaired real LR faces in [0, 1] at size x size, or None when the data has none."""
    real = batch.get("lr_real")
    if real is not None and tuple(real.shape[-2:]) != (size, size):
        real = cubic_resize(real, (size, size), antialias=True).clamp(0, 1)
    return real


class BidirectionalStep(TrainStep):
    def __init__(self, setup: StepSetup) -> None:
        p: BidirectionalParams = setup.params  # type: ignore[assignment]
        self.p = p
        net = unwrap(setup.generator, GFLmser, "gflmser:bidirectional", "gflmser:gflmser")
        # the net this phase trains is called through its DDP wrapper (srcore.engine.api); the other is frozen
        self.h2l, self.l2h = net.h2l, net.l2h
        if p.phase == "l2h":
            self.l2h = setup.wrap(net.l2h)
        else:
            self.h2l = setup.wrap(net.h2l)
        self.gan = GANLoss(setup.stage.gan.type)
        self.adv_weight = setup.stage.gan.weight
        self.networks: dict[str, nn.Module] = {"generator": setup.generator}
        trained = net.l2h if p.phase == "l2h" else net.h2l
        self.optimizers = {"generator": setup.optimizer(list(trained.parameters()), setup.stage.optim)}
        for other in setup.run.nets:  # every declared net stays in the checkpoints of every stage
            self.networks[other] = setup.network(other)
        self.d: nn.Module | None = None
        self._d_real: torch.Tensor | None = None
        role = {"h2l_adversarial": "d_lr", "l2h": "d_hr" if p.hr_adv_weight > 0 else None}.get(p.phase)
        if role is not None:
            if role not in setup.run.nets:
                raise SrcoreError(f"stage '{setup.stage.name}': phase {p.phase} needs a discriminator in nets.{role}")
            self.d = setup.wrap(self.networks[role].requires_grad_(True))  # DDP registers trainable params only
            self.optimizers["discriminator"] = setup.optimizer(list(self.d.parameters()), setup.stage.optim_d)

    # -- data ---------------------------------------------------------------------------------

    def _faces(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """HR faces at face_size and their LR target, in [-1, 1]; real LR in [0, 1] at LR size."""
        ls = self.p.face_size // 4
        hr01, resized = face_hr(batch, self.p.face_size)
        lr01 = batch.get("lr")
        if resized or lr01 is None or tuple(lr01.shape[-2:]) != (ls, ls):
            lr01 = cubic_resize(hr01, (ls, ls)).clamp(0, 1)  # OpenCV INTER_CUBIC, as the authors
        return to_signed(hr01), to_signed(lr01), real_lr(batch, ls)

    # -- phases -------------------------------------------------------------------------------

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        hr, lr, real = self._faces(batch)
        x_in = hr_noise(hr, self.p.noise_factor)
        if self.p.phase == "h2l":
            return self._h2l_content(x_in, lr, ctx)
        if self.p.phase == "h2l_adversarial":
            if real is None:
                raise SrcoreError("phase h2l_adversarial needs unpaired real LR faces: set data.train.lr_real")
            return self._h2l_adversarial(x_in, lr, real, ctx)
        return self._l2h(x_in, hr, ctx)

    def _h2l_content(self, x_in: torch.Tensor, lr: torch.Tensor, ctx: StepContext) -> dict[str, torch.Tensor]:
        with ctx.autocast():
            loss = self.p.content_weight * F.mse_loss(self.h2l(x_in)[0].float(), lr)
        ctx.backward(loss, "generator")
        ctx.optimizer_step("generator")
        return {"loss/h2l_mse": loss.detach()}

    def _d_step(self, real01: torch.Tensor, fake01: torch.Tensor, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One D update; leaves D frozen and its real-sample output in ``self._d_real``."""
        assert self.d is not None
        self.d.requires_grad_(True)
        with ctx.autocast():
            d_real, d_fake = self.d(real01).float(), self.d(fake01.detach()).float()
            loss = self.gan.d_loss(d_real, d_fake)
        ctx.backward(loss, "discriminator")
        ctx.optimizer_step("discriminator")
        self.d.requires_grad_(False)  # the generator's adversarial term must not leave grads in D
        self._d_real = d_real.detach()
        return {"loss/d": loss.detach(), "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}

    def _g_adv(self, fake01: torch.Tensor) -> torch.Tensor:
        """Generator-side GAN term (relativistic losses reuse D's output on the real batch)."""
        assert self.d is not None
        real = self._d_real if self.gan.needs_real_for_generator else None
        return self.gan.g_loss(self.d(fake01).float(), real)

    def _h2l_adversarial(
        self, x_in: torch.Tensor, lr: torch.Tensor, real: torch.Tensor, ctx: StepContext
    ) -> dict[str, torch.Tensor]:
        assert self.d is not None
        with ctx.autocast():
            fake = self.h2l(x_in)[0]
        logs = self._d_step(real, to_unit(fake), ctx)
        with ctx.autocast():
            adv = self.adv_weight * self._g_adv(to_unit(fake))
        if self.p.separate_h2l_updates:  # v1: adversarial step, then content step
            ctx.backward(adv, "generator")
            ctx.optimizer_step("generator")
            with ctx.autocast():
                fake = self.h2l(x_in)[0]
        with ctx.autocast():
            content = self.p.content_weight * F.mse_loss(fake.float(), lr)
        ctx.backward(content if self.p.separate_h2l_updates else adv + content, "generator")
        ctx.optimizer_step("generator")
        return {**logs, "loss/h2l_adv": adv.detach(), "loss/h2l_mse": content.detach()}

    def _l2h(self, x_in: torch.Tensor, hr: torch.Tensor, ctx: StepContext) -> dict[str, torch.Tensor]:
        with torch.no_grad(), ctx.autocast():  # H2L frozen in this phase (v1 never steps it)
            fake_lr, skips = self.h2l(x_in)
        with ctx.autocast():
            sr = self.l2h(fake_lr, skips)
        logs: dict[str, torch.Tensor] = {}
        loss = self.p.hr_weight * F.mse_loss(sr.float(), hr)
        logs["loss/l2h_mse"] = loss.detach()
        if self.d is not None:
            logs.update(self._d_step(to_unit(hr), to_unit(sr), ctx))
            with ctx.autocast():
                adv = self.p.hr_adv_weight * self._g_adv(to_unit(sr))
            logs["loss/l2h_adv"] = adv.detach()
            loss = loss + adv
        ctx.backward(loss, "generator")
        ctx.optimizer_step("generator")
        return logs

