"""Built-in losses of the core plugin: pixel losses and the VGG19 perceptual loss (``srcore.nn.vgg``)."""

from __future__ import annotations

from typing import Literal

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


class PerceptualConfig(StrictModel):
    layers: dict[str, float] = Field(
        default_factory=lambda: {"conv5_4": 1.0},
        description="VGG19 layer -> weight; conv5_4 is before its ReLU (ESRGAN 'VGG54'), relu2_2 after.",
    )
    criterion: Literal["l1", "l2", "mse"] = Field("l1", description="Feature distance (l2 = mse, mean).")
    weights: str | None = Field(
        None,
        description="VGG19 weights file (torchvision layout); default: "
        "$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth; 'random' = untrained net (tests only).",
    )
    use_input_norm: bool = Field(True, description="Normalise with ImageNet mean/std before VGG.")
    input_range: float = Field(
        1.0, gt=0, description="Value range of the inputs (255 for 0..255 tensors); divided out before VGG."
    )


def _perceptual(cfg: PerceptualConfig) -> nn.Module:
    from srcore.nn.vgg import PerceptualLoss

    return PerceptualLoss(cfg.layers, cfg.criterion, cfg.weights, cfg.use_input_norm, cfg.input_range)


def register_losses(register: Registrar) -> None:
    register("l1", lambda c: nn.L1Loss(reduction=c.reduction), config=Reduction, description="Mean absolute error.")
    register("mse", lambda c: nn.MSELoss(reduction=c.reduction), config=Reduction, description="Mean squared error.")
    register(
        "charbonnier",
        lambda c: Charbonnier(c.eps, c.reduction),
        config=CharbonnierConfig,
        description="Charbonnier penalty (LapSRN).",
    )
    register(
        "perceptual",
        _perceptual,
        config=PerceptualConfig,
        description="VGG19 feature distance on chosen layers (ESRGAN VGG54 by default).",
    )
