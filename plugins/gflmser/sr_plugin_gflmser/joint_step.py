"""``gflmser:joint``: the joint training of the authors' ``Lmser/lmser_gate_main.py``.

Per iteration, with z ~ N(0, 1) of shape (N, 64) drawn from the run's RNG, HR faces at 64x64
and unpaired real LR faces at 16x16 (``data.train.lr_real``), all in [-1, 1]:

    real_out = D(real LR);  lr, sr, pooled = lmser.joint(HR, z);  fake_out = D(lr)
    D:      MSE(real_out, 1) + MSE(fake_out, 0)
    Lmser:  gan.weight MSE(fake_out, 1) + lr_weight MSE(lr, pooled) + hr_weight MSE(sr, HR)

where ``pooled`` = AvgPool(3, stride 4, pad 1)(HR), not a bicubic LR. The authors call
``backward`` on all four terms through one graph (``fake_out`` is not detached) and then step
both optimizers; ``authors_gradients=True`` reproduces that exactly (one backward of the sum).
Optimizer names: ``generator`` (the whole Lmser, ``stage.optim``), ``discriminator``
(``nets.d_lr``, ``stage.optim_d``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.nn import functional as F

from sr_plugin_gflmser.configs import JointParams
from sr_plugin_gflmser.lmser import FACE, Z_DIM, JointLmser
from sr_plugin_gflmser.nets import to_signed, to_unit
from sr_plugin_gflmser.step import face_hr, real_lr, unwrap
from srcore.engine.api import Batch, StepContext, StepSetup, TrainStep
from srcore.errors import SrcoreError

Tensor = torch.Tensor
Logs = dict[str, torch.Tensor]


def _to(x: torch.Tensor, label: float) -> torch.Tensor:
    """The authors' least-squares term: MSE of D's sigmoid output to a constant label."""
    return F.mse_loss(x, torch.full_like(x, label))


class JointStep(TrainStep):
    def __init__(self, setup: StepSetup) -> None:
        self.p: JointParams = setup.params  # type: ignore[assignment]
        self.net = unwrap(setup.generator, JointLmser, "gflmser:joint", "gflmser:lmser")
        self.adv_weight = setup.stage.gan.weight
        if "d_lr" not in setup.run.nets:
            raise SrcoreError(f"stage '{setup.stage.name}': step gflmser:joint needs a discriminator in nets.d_lr")
        self.networks: dict[str, nn.Module] = {"generator": setup.generator}
        for other in setup.run.nets:
            self.networks[other] = setup.network(other)
        # called through DDP wrappers under torch.distributed (srcore.engine.api); DDP registers trainable params only
        self.joint = setup.wrap(self.net, method="joint")
        self.d = setup.wrap(self.networks["d_lr"].requires_grad_(True))
        self.optimizers = {
            "generator": setup.optimizer(list(setup.generator.parameters()), setup.stage.optim),
            "discriminator": setup.optimizer(list(self.d.parameters()), setup.stage.optim_d),
        }

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        hr01, _ = face_hr(batch, FACE)
        real = real_lr(batch, FACE // 4)
        if real is None:
            raise SrcoreError("step gflmser:joint needs unpaired real LR faces: set data.train.lr_real")
        hr = to_signed(hr01)
        z = torch.randn(hr.shape[0], Z_DIM, generator=ctx.rng).to(hr.device, hr.dtype)
        self.d.requires_grad_(True)
        if self.p.authors_gradients:
            return self._authors(hr, real, z, ctx)
        return self._alternating(hr, real, z, ctx)

    def _content(self, lr: Tensor, sr: Tensor, pooled: Tensor, hr: Tensor) -> Logs:
        return {
            "loss/lr_mse": self.p.lr_weight * F.mse_loss(lr.float(), pooled.float()),
            "loss/hr_mse": self.p.hr_weight * F.mse_loss(sr.float(), hr),
        }

    def _authors(self, hr: Tensor, real: Tensor, z: Tensor, ctx: StepContext) -> Logs:
        """One backward of every term through the shared graph, then D and Lmser steps."""
        with ctx.autocast():
            d_real = self.d(real).float()
            lr, sr, pooled = self.joint(hr, z)
            d_fake = self.d(to_unit(lr)).float()
        terms = {"loss/d": _to(d_real, 1.0) + _to(d_fake, 0.0), "loss/adv": self.adv_weight * _to(d_fake, 1.0)}
        terms.update(self._content(lr, sr, pooled, hr))
        ctx.backward(sum(terms.values()), "generator")  # type: ignore[arg-type]
        ctx.optimizer_step("discriminator")
        ctx.optimizer_step("generator")
        logs = {k: v.detach() for k, v in terms.items()}
        return {**logs, "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}

    def _alternating(self, hr: Tensor, real: Tensor, z: Tensor, ctx: StepContext) -> Logs:
        """D on the detached fake, then the Lmser against the updated D (frozen)."""
        with ctx.autocast():
            lr, sr, pooled = self.joint(hr, z)
            d_real, d_fake = self.d(real).float(), self.d(to_unit(lr).detach()).float()
        d_loss = _to(d_real, 1.0) + _to(d_fake, 0.0)
        ctx.backward(d_loss, "discriminator")
        ctx.optimizer_step("discriminator")
        self.d.requires_grad_(False)
        with ctx.autocast():
            adv = self.adv_weight * _to(self.d(to_unit(lr)).float(), 1.0)
        terms = {"loss/adv": adv, **self._content(lr, sr, pooled, hr)}
        ctx.backward(sum(terms.values()), "generator")  # type: ignore[arg-type]
        ctx.optimizer_step("generator")
        logs = {k: v.detach() for k, v in terms.items()}
        return {**logs, "loss/d": d_loss.detach(), "d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
