"""GAN loss variants shared by every adversarial method.

``GANLoss(type)`` gives the generator's and the discriminator's loss from raw logits of real
and fake samples, so relativistic variants (which need both) share one interface:

* ``vanilla``: BCE with logits (Goodfellow); ``lsgan``: least squares on logits;
* ``ragan``: relativistic average GAN as in ESRGAN,
  D: BCE(real - mean(fake), 1) + BCE(fake - mean(real), 0), each halved;
  G: BCE(real - mean(fake), 0) + BCE(fake - mean(real), 1), each halved;
* ``hinge`` and ``wgan`` (the generator term is -mean(fake) for both).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

GANType = Literal["vanilla", "lsgan", "ragan", "hinge", "wgan"]


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _mse(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.mse_loss(logits, torch.full_like(logits, target))


class GANLoss(nn.Module):
    def __init__(self, type: GANType = "vanilla") -> None:
        super().__init__()
        if type not in ("vanilla", "lsgan", "ragan", "hinge", "wgan"):
            raise ValueError(f"unknown GAN loss type {type!r}")
        self.type = type

    @property
    def needs_real_for_generator(self) -> bool:
        """Relativistic losses need D(real) in the generator step as well."""
        return self.type == "ragan"

    def g_loss(self, fake: torch.Tensor, real: torch.Tensor | None = None) -> torch.Tensor:
        """Generator loss from D's logits on fake (and, for ``ragan``, real) samples."""
        if self.type == "vanilla":
            return _bce(fake, 1.0)
        if self.type == "lsgan":
            return _mse(fake, 1.0)
        if self.type == "ragan":
            if real is None:
                raise ValueError("the relativistic GAN loss needs D(real) for the generator")
            real = real.detach()
            return (_bce(real - fake.mean(), 0.0) + _bce(fake - real.mean(), 1.0)) / 2
        return -fake.mean()  # hinge and wgan

    def d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """Discriminator loss from its logits on real and (detached) fake samples."""
        if self.type == "vanilla":
            return (_bce(real, 1.0) + _bce(fake, 0.0)) / 2
        if self.type == "lsgan":
            return (_mse(real, 1.0) + _mse(fake, 0.0)) / 2
        if self.type == "ragan":
            return (_bce(real - fake.mean(), 1.0) + _bce(fake - real.mean(), 0.0)) / 2
        if self.type == "hinge":
            return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
        return fake.mean() - real.mean()  # wgan
