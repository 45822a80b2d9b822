"""Built-in pixel losses of the core plugin (perceptual and GAN terms live in ``srcore.nn``)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from srcore.registry import Registrar, StrictModel


class Reduction(StrictModel):
    reduction: str = Field("mean", pattern="^(mean|sum)$", description="'mean' or 'sum' over elements.")


class CharbonnierConfig(Reduction):
    eps: float = Field(1e-3, gt=0, description="sqrt(d^2 + eps^2); LapSRN uses 1e-3.")


class Charbonnier(nn.Module):
    """Charbonnier (differentiable L1): mean(sqrt((sr - hr)^2 + eps^2))."""

    def __init__(self, eps: float = 1e-3, reduction: str = "mean") -> None:
        super().__init__()
        self.eps, self.reduction = eps, reduction

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        err = torch.sqrt((sr - hr) ** 2 + self.eps**2)
        return err.mean() if self.reduction == "mean" else err.sum()


def register_losses(register: Registrar) -> None:
    register("l1", lambda c: nn.L1Loss(reduction=c.reduction), config=Reduction, description="Mean absolute error.")
    register("mse", lambda c: nn.MSELoss(reduction=c.reduction), config=Reduction, description="Mean squared error.")
    register(
        "charbonnier",
        lambda c: Charbonnier(c.eps, c.reduction),
        config=CharbonnierConfig,
        description="Charbonnier penalty (LapSRN).",
    )
