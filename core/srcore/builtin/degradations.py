"""Built-in degradations of the core plugin (implementations in ``srcore.data.degrade``).

"Bicubic" is not one thing: ``core:bicubic`` is MATLAB imresize (the benchmark standard),
``core:bicubic_cv`` OpenCV INTER_CUBIC (no antialiasing), ``core:bicubic_pil`` PIL BICUBIC.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from srcore.config import ComponentRef
from srcore.registry import Registrar, StrictModel


class ScaleConfig(StrictModel):
    scale: int = Field(4, ge=1, description="Downscaling factor; HR sizes must be multiples of it.")
    quantize: bool = Field(True, description="Round the LR to 8 bits, as a stored PNG would be.")


class BlurConfig(StrictModel):
    scale: int = Field(1, ge=1, description="Keep every scale-th pixel after blurring (1: blur only).")
    kernel_size: int = Field(21, ge=3, description="Odd kernel size.")
    sigma: float = Field(1.6, gt=0, description="Gaussian sigma (x axis), in pixels.")
    sigma_max: float | None = Field(None, gt=0, description="If set, sigma ~ U[sigma, sigma_max] per image.")
    sigma_y: float | None = Field(None, gt=0, description="Sigma of the y axis (anisotropic); default = sigma.")
    sigma_y_max: float | None = Field(None, gt=0, description="If set, sigma_y ~ U[sigma_y, sigma_y_max].")
    angle: float = Field(0.0, description="Rotation of the anisotropic kernel, degrees.")
    angle_max: float | None = Field(None, description="If set, angle ~ U[angle, angle_max].")
    quantize: bool = Field(False, description="Round the result to 8 bits.")

    @model_validator(mode="after")
    def _odd(self) -> BlurConfig:
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        return self


class NoiseConfig(StrictModel):
    sigma: float = Field(10.0, ge=0, description="Gaussian noise sigma in 0..255 units.")
    sigma_max: float | None = Field(None, ge=0, description="If set, sigma ~ U[sigma, sigma_max] per image.")
    gray: bool = Field(False, description="Same noise on all channels (gray noise).")
    clip: bool = Field(True, description="Clamp the result to [0, 1].")
    quantize: bool = Field(False, description="Round the result to 8 bits (implies clipping).")


class JpegConfig(StrictModel):
    quality: int = Field(30, ge=1, le=100, description="JPEG quality (OpenCV/libjpeg scale).")
    quality_max: int | None = Field(None, ge=1, le=100, description="If set, q ~ U{quality..quality_max}.")


class ChainConfig(StrictModel):
    steps: list[ComponentRef] = Field(
        default_factory=lambda: [ComponentRef(id="core:bicubic")],
        description="Degradations applied in order, e.g. blur -> bicubic -> noise -> jpeg.",
    )
    seed: int | None = Field(None, description="Seed of the chain's own random stream (reproducible LR).")
    scale: int | None = Field(
        None, ge=1, description="If set, must equal the product of the steps' scales (checked when built)."
    )


def _build_chain(cfg: ChainConfig) -> Any:
    from srcore.data.degrade import Chain
    from srcore.errors import ConfigError
    from srcore.plugins import load_plugins

    registry = load_plugins().registries.degradations
    steps = []
    for i, ref in enumerate(cfg.steps):
        comp = registry.get(ref.id)
        params = dict(ref.params)
        steps.append(comp.build(comp.parse_config(params, where=f"steps.{i}.params")))
    chain = Chain(steps, seed=cfg.seed)
    if cfg.scale is not None and cfg.scale != chain.scale:
        raise ConfigError(
            [f"scale: {cfg.scale} but the steps downscale by {chain.scale} in total "
             "(set the scale of the resizing step instead)"],
            source="degradation 'core:chain'",
        )
    return chain


def _lazy(name: str, **fixed: Any) -> Any:
    def build(cfg: StrictModel) -> Any:
        from srcore.data import degrade

        return getattr(degrade, name)(**cfg.model_dump(), **fixed)

    return build


def register_degradations(register: Registrar) -> None:
    register("bicubic", _lazy("BicubicMatlab"), config=ScaleConfig,
             description="MATLAB imresize bicubic with antialiasing (the benchmark LR).")
    register("bicubic_cv", _lazy("BicubicCV"), config=ScaleConfig,
             description="OpenCV INTER_CUBIC (a=-0.75, no antialiasing).")
    register("bicubic_pil", _lazy("BicubicPIL"), config=ScaleConfig,
             description="PIL BICUBIC on 8-bit images (antialiased, as seed004 data_aug.py).")
    register("blur", _lazy("Blur"), config=BlurConfig,
             description="Gaussian blur, isotropic or anisotropic, optionally decimated by scale.")
    register("noise", _lazy("Noise"), config=NoiseConfig,
             description="Additive Gaussian noise, sigma in 0..255 units.")
    register("jpeg", _lazy("Jpeg"), config=JpegConfig, description="JPEG compression at quality q.")
    register("chain", _build_chain, config=ChainConfig,
             description="Several degradations in order, with a seed for reproducibility.")
