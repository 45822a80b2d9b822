"""Config classes of the gflmser components (no torch import: cheap to load at registration)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from srcore.registry import StrictModel


def _fixed_x4(v: int) -> int:
    if v != 4:
        raise ValueError("GFLmser is a fixed x4 architecture (16 -> 64); scale must be 4")
    return v


class GFLmserConfig(StrictModel):
    scale: int = Field(4, description="Fixed at 4 (16x16 -> 64x64 faces).")
    skip: Literal["gated", "ungated", "none"] = Field(
        "gated",
        description="H2L->L2H skips: 'gated' (Pearson-correlation gate, the paper's GFLmser), "
        "'ungated' (plain addition, the README's v1 scripts) or 'none' (no-skip ablation).",
    )
    face_size: int | None = Field(
        None,
        ge=2,
        description="If set, every LR input is resized to face_size x face_size (16 = training "
        "geometry), super-resolved, and the result resized to 4x the input size. None: the net "
        "runs fully convolutionally at the input size (sides padded to even).",
    )

    @field_validator("scale")
    @classmethod
    def _four(cls, v: int) -> int:
        return _fixed_x4(v)

    @field_validator("face_size")
    @classmethod
    def _even(cls, v: int | None) -> int | None:
        if v is not None and v % 2:
            raise ValueError(f"face_size must be even (the L2H halves it once), got {v}")
        return v


class LmserConfig(StrictModel):
    scale: int = Field(4, description="Fixed at 4 (16x16 -> 64x64 faces).")
    skip: Literal["gated", "ungated"] = Field(
        "gated",
        description="H2L->L2H skips of the joint model: 'gated' (Lmser/lmser_gate.py, Pearson-"
        "correlation gate) or 'ungated' (Lmser/lmser_skip.py, plain addition). Same weights.",
    )

    @field_validator("scale")
    @classmethod
    def _four(cls, v: int) -> int:
        return _fixed_x4(v)


class DiscriminatorConfig(StrictModel):
    sigmoid: bool = Field(True, description="End with a sigmoid, as the authors' D (their LSGAN is MSE on it).")


class H2LDegradationConfig(StrictModel):
    checkpoint: str = Field(
        description="Weights holding the H2L: a gflmser run/checkpoint folder or .safetensors "
        "(keys 'h2l.*'), or the authors' H2L state dict (keys 'up_*') as .pth/.safetensors.",
    )
    scale: int = Field(4, description="Fixed at 4.")
    noise_factor: Literal[1, 2, 4] = Field(
        4, description="H2L input = HR bicubic-down by this factor and back ('HR_noise'; 1 = HR as is)."
    )
    device: str = Field("cpu", description="Device the H2L runs on.")

    @field_validator("scale")
    @classmethod
    def _four(cls, v: int) -> int:
        if v != 4:
            raise ValueError("the H2L degrades by exactly 4; scale must be 4")
        return v


class BidirectionalParams(StrictModel):
    """Options of the ``gflmser:bidirectional`` step (``stages[i].step_params``)."""

    phase: Literal["h2l", "h2l_adversarial", "l2h"] = Field(
        description="Which part of the v1 schedule this stage runs: 'h2l' (epochs 1-2: H2L MSE to "
        "the bicubic LR), 'h2l_adversarial' (epochs 3-49: + LSGAN against real LR, D trained), "
        "'l2h' (epochs 50-200: H2L frozen, L2H learns HR from H2L outputs and skips)."
    )
    face_size: int = Field(64, ge=8, description="HR face side; batches of another size are resized to it.")
    noise_factor: Literal[1, 2, 4] = Field(
        4, description="H2L input 'HR_noise' = HR bicubic-down by this factor and back (1 = HR as is)."
    )
    content_weight: float = Field(1.0, ge=0, description="H2L: weight of MSE(H2L(HR), bicubic LR).")
    hr_weight: float = Field(2.0, ge=0, description="L2H: weight of MSE(L2H(...), HR) (v1: 2).")
    hr_adv_weight: float = Field(
        0.0, ge=0, description="L2H: weight of an LSGAN term against the HR-domain D (nets.d_hr); v1: 0."
    )
    separate_h2l_updates: bool = Field(
        True,
        description="h2l_adversarial: two H2L optimizer steps per iteration (adversarial, then "
        "content on a fresh forward) as v1; False: one step on their weighted sum.",
    )


class JointParams(StrictModel):
    """Options of the ``gflmser:joint`` step (``stages[i].step_params``), Lmser/lmser_gate_main.py."""

    lr_weight: float = Field(5.0, ge=0, description="Weight of MSE(H2L LR, AvgPool(3, 4, 1)(HR)) (authors: 5).")
    hr_weight: float = Field(0.1, ge=0, description="Weight of MSE(L2H(H2L LR), HR) (authors: 0.1).")
    authors_gradients: bool = Field(
        True,
        description="True: one backward of D loss + G losses through the shared graph, then both "
        "optimizer steps, as the authors' script (D also receives the generator's adversarial "
        "gradient and the Lmser D's fake term, so both push D(fake) towards 0.5). False: the usual "
        "alternation (D on the detached fake, then the Lmser against the updated, frozen D).",
    )
