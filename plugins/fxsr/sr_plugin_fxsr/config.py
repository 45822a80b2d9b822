"""Configuration classes of the plugin (torch-free, so registering the plugin stays cheap)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from sr_plugin_fxsr.controller import PD, StyleController, TSampling
from srcore.registry import StrictModel

COND_NC = 32
"""Width of CondNet's output: FxSR's SFT layers hard-code 32 condition channels."""


class FxSRConfig(StrictModel):
    """Options of the FxSR generator; defaults are the released models' (18.3M parameters)."""

    scale: Literal[4, 8] = Field(4, description="Upscaling factor: 4 (upconv1-2) or 8 (upconv1-3).")
    nf: int = Field(64, ge=1, description="Trunk feature channels.")
    nb: int = Field(23, ge=1, description="Number of RRDB blocks in the trunk.")
    gc: int = Field(32, ge=1, description="Growth channels of each dense block.")


class ConditionalParams(StrictModel):
    """Options of the ``fxsr:conditional`` training step (``stages[i].step_params``)."""

    weights: StyleController = Field(
        default_factory=lambda: PD.model_copy(deep=True),
        description="Loss-term weights as functions of t (default: the FxSR-PD preset).",
    )
    t: TSampling = Field(default_factory=TSampling, description="Distribution of the training condition t.")
    pixel_criterion: Literal["l1", "mse"] = Field("l1", description="Distance of the pixel term.")
    feature_criterion: Literal["l1", "mse"] = Field("l1", description="Distance of the VGG feature terms.")
    vgg_weights: str | None = Field(
        None,
        description="VGG19 ImageNet weights file; default: the torch hub cache "
        "(vgg19-dcbb9e9d.pth). 'random' = random weights (tests only).",
    )
