"""Built-in metrics of the core plugin (implementations in ``srcore.metrics``).

All follow the protocol of ``srcore.metrics.base``. ``crop_border`` defaults to 0 here because
the right value depends on the scale (benchmarks: crop = scale); ``srcore eval`` and the
engine's validation set it to the scale unless told otherwise.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from srcore.registry import Registrar, StrictModel


class MeasureConfig(StrictModel):
    crop_border: int = Field(
        0, ge=0, description="Pixels removed on every side before measuring (benchmarks: = scale)."
    )
    y_channel: bool = Field(False, description="Measure on Y (BT.601 as MATLAB rgb2ycbcr) instead of all channels.")
    y_convention: Literal["matlab", "float"] = Field(
        "matlab",
        description="'matlab': 8-bit RGB, Y rounded to integers (rgb2ycbcr on uint8); "
        "'float': Y in float, unrounded (BasicSR).",
    )


class IFCConfig(MeasureConfig):
    y_channel: bool = Field(True, description="IFC is defined on one channel; RGB input is reduced to Y.")


class LPIPSConfig(StrictModel):
    net: Literal["alex", "vgg"] = Field("alex", description="Backbone of LPIPS v0.1.")
    backbone_weights: str | None = Field(
        None, description="torchvision ImageNet weights of the backbone; default: the torch hub cache."
    )
    crop_border: int = Field(0, ge=0, description="Pixels removed on every side before measuring.")


class FIDConfig(StrictModel):
    weights: str | None = Field(
        None, description="pt_inception-2015-12-05-6726825d.pth; default: the torch hub cache."
    )
    ref_stats: str | None = Field(
        None, description="Cache of the reference set's statistics (.npz): read if present, else written."
    )
    batch_size: int = Field(16, ge=1, description="Images per Inception forward pass.")
    dims: Literal[64, 192, 768, 2048] = Field(2048, description="Inception feature block (2048 = standard FID).")


class NIQEConfig(StrictModel):
    crop_border: int = Field(0, ge=0, description="Pixels removed on every side before measuring.")
    params: str | None = Field(
        None, description="Pristine model (.npz of basicsr or MATLAB modelparameters.mat); default: installed basicsr."
    )


def _build(module: str, cls: str) -> Any:
    def build(cfg: StrictModel) -> Any:
        import importlib

        return getattr(importlib.import_module(module), cls)(**cfg.model_dump())

    return build


def register_metrics(register: Registrar) -> None:
    register("psnr", _build("srcore.metrics.fullref", "PSNR"), config=MeasureConfig,
             description="PSNR in dB (peak 255), mean over images.", higher_is_better=True)
    register("ssim", _build("srcore.metrics.fullref", "SSIM"), config=MeasureConfig,
             description="SSIM (Wang et al.; Gaussian 11x11, sigma 1.5), mean over images.", higher_is_better=True)
    register("ifc", _build("srcore.metrics.ifc", "IFC"), config=IFCConfig,
             description="Information Fidelity Criterion on Y (Sheikh et al., reference ifcvec.m).",
             higher_is_better=True)
    register("lpips", _build("srcore.metrics.perceptual", "LPIPS"), config=LPIPSConfig,
             description="LPIPS v0.1 (alex/vgg) via the lpips package; lower is better.", higher_is_better=False)
    register("fid", _build("srcore.metrics.perceptual", "FID"), config=FIDConfig,
             description="FID (pytorch-fid Inception), SR set vs HR set; set-level, lower is better.",
             higher_is_better=False)
    register("niqe", _build("srcore.metrics.niqe", "NIQE"), config=NIQEConfig,
             description="NIQE (no-reference, MATLAB release's pristine model); lower is better.",
             higher_is_better=False)
