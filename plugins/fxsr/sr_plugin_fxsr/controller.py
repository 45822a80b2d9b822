"""FxSR's style controller: loss-term weights as functions of the condition t, and t sampling.

The paper trains one network on a *conditional objective*: for each sample a condition t is
drawn, the network sees t as a map, and the loss is a weighted sum of named terms whose weights
depend on t. Its exact weight functions are not published (spec section 3), so each weight here
is a validated piecewise-linear function of t (or a constant), and the presets below are our
documented reading of the paper's description (see the README).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from srcore.registry import StrictModel

if TYPE_CHECKING:
    import torch

Knots = list[tuple[float, float]]
Weight = float | Knots

TERMS: tuple[str, ...] = ("pixel", "vgg22", "vgg44", "vgg54", "adv")
"""Named loss terms of the conditional objective."""

VGG_LAYERS: dict[str, str] = {"vgg22": "relu2_2", "vgg44": "relu4_4", "vgg54": "conv5_4"}
"""VGG19 layer of each perceptual term: FxSR's ReLU 2-2 and ReLU 4-4, ESRGAN's conv5_4 (pre-ReLU)."""


def _check_weight(value: Weight) -> Weight:
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"a weight must be >= 0, got {value}")
        return float(value)
    if len(value) < 2:
        raise ValueError("a piecewise-linear weight needs at least two (t, weight) knots, or give a constant")
    ts = [t for t, _ in value]
    if ts[0] != 0.0 or ts[-1] != 1.0:
        raise ValueError(f"knots must start at t=0 and end at t=1 (got t from {ts[0]} to {ts[-1]})")
    if any(b <= a for a, b in itertools.pairwise(ts)):
        raise ValueError(f"knot positions t must be strictly increasing, got {ts}")
    if any(w < 0 for _, w in value):
        raise ValueError(f"weights must be >= 0, got {[w for _, w in value]}")
    return [(float(t), float(w)) for t, w in value]


def evaluate(weight: Weight, t: torch.Tensor) -> torch.Tensor:
    """The weight at each t (any shape), linear between knots."""
    import torch

    if isinstance(weight, float):
        return torch.full_like(t, weight)
    ts = torch.tensor([k[0] for k in weight], dtype=t.dtype, device=t.device)
    ws = torch.tensor([k[1] for k in weight], dtype=t.dtype, device=t.device)
    tc = t.clamp(0.0, 1.0)
    seg = (torch.searchsorted(ts, tc.contiguous(), right=True) - 1).clamp(0, len(ts) - 2)
    t0, t1, w0, w1 = ts[seg], ts[seg + 1], ws[seg], ws[seg + 1]
    return w0 + (w1 - w0) * (tc - t0) / (t1 - t0)


class StyleController(StrictModel):
    """Weight of each loss term as a function of t: a constant or knots [[t, w], ...] over [0, 1]."""

    pixel: Weight = Field(0.0, description="Pixel loss (criterion: step option pixel_criterion).")
    vgg22: Weight = Field(0.0, description="VGG19 relu2_2 feature loss (edges).")
    vgg44: Weight = Field(0.0, description="VGG19 relu4_4 feature loss (textures).")
    vgg54: Weight = Field(0.0, description="VGG19 conv5_4 (before ReLU) feature loss, ESRGAN's.")
    adv: Weight = Field(0.0, description="Adversarial (generator) loss; needs a stage discriminator.")

    @field_validator(*TERMS, mode="after")
    @classmethod
    def _valid(cls, value: Weight) -> Weight:
        return _check_weight(value)

    @model_validator(mode="after")
    def _some_term(self) -> StyleController:
        if not self.active():
            raise ValueError("every loss weight is zero for all t; give at least one non-zero term")
        return self

    def active(self) -> tuple[str, ...]:
        """Terms whose weight is non-zero for some t."""
        def nonzero(w: Weight) -> bool:
            return w > 0 if isinstance(w, float) else any(k[1] > 0 for k in w)

        return tuple(n for n in TERMS if nonzero(getattr(self, n)))

    def weights(self, t: torch.Tensor) -> dict[str, torch.Tensor]:
        """Weights of the active terms at each t, same shape as ``t``."""
        return {n: evaluate(getattr(self, n), t) for n in self.active()}


PSNR = StyleController(pixel=1.0)
"""Pre-training stage: the pixel loss alone (t still sampled, so CondNet and SFTs see all t)."""

PD = StyleController(pixel=[(0.0, 1.0), (1.0, 1e-2)], vgg54=[(0.0, 0.0), (1.0, 1.0)], adv=[(0.0, 0.0), (1.0, 5e-3)])
"""FxSR-PD: t=0 is the distortion-oriented RRDB objective (pixel loss only), t=1 ESRGAN's
perception-oriented objective (1e-2 pixel + 1 VGG54 + 5e-3 adversarial), linear in between."""

DS = StyleController(pixel=1e-2, vgg22=[(0.0, 1.0), (1.0, 0.0)], vgg44=[(0.0, 0.0), (1.0, 1.0)], adv=5e-3)
"""FxSR-DS: perception-oriented for every t; t moves the perceptual term from VGG22 (t=0, sharp
edges) to VGG44 (t=1, rich textures) at constant pixel and adversarial weights."""

PRESETS: dict[str, StyleController] = {"psnr": PSNR, "pd": PD, "ds": DS}


class TSampling(StrictModel):
    """How the training condition t is drawn (from the run's seeded generator ``ctx.rng``)."""

    distribution: Literal["uniform", "choice"] = Field("uniform", description="U(low, high), or one of `values`.")
    low: float = Field(0.0, ge=0.0, le=1.0)
    high: float = Field(1.0, ge=0.0, le=1.0)
    values: list[float] = Field(default_factory=list, description="Values for 'choice' (equal probability).")
    per: Literal["sample", "batch"] = Field("sample", description="One t per sample, or one for the batch.")

    @model_validator(mode="after")
    def _consistent(self) -> TSampling:
        if self.low > self.high:
            raise ValueError(f"low ({self.low}) must be <= high ({self.high})")
        if self.distribution == "choice":
            if not self.values:
                raise ValueError("distribution 'choice' needs a non-empty `values` list")
            if any(not 0.0 <= v <= 1.0 for v in self.values):
                raise ValueError(f"`values` must lie in [0, 1], got {self.values}")
        return self

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` conditions (float32, CPU)."""
        import torch

        k = n if self.per == "sample" else 1
        if self.distribution == "uniform":
            t = self.low + (self.high - self.low) * torch.rand(k, generator=generator)
        else:
            idx = torch.randint(len(self.values), (k,), generator=generator)
            t = torch.tensor(self.values, dtype=torch.float32)[idx]
        return t.expand(n).clone() if k == 1 else t
