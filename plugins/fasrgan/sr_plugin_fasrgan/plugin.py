"""Entry point of the `fasrgan` plugin: FASRGAN, Fs-SRGAN and the ESRGAN baseline.

Generators: ``rrdbnet`` (ESRGAN RRDBNet, the core block) and ``fssrgan`` (shared extractor E +
RRDBNet G); discriminator ``unet`` (FASRGAN's image + per-pixel D; the VGG-style Ds are the
core's ``core:vgg128`` / ``core:vgg192``); steps ``fasrgan`` and ``fssrgan``; recipes
``fasrgan-x4``, ``fssrgan-x4``, ``esrgan-x4``; detection of the authors' checkpoint names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field

from srcore import hookimpl
from srcore.registry import CheckpointMatch, RecipeRegistrar, Registrar, StrictModel


class RRDBNetConfig(StrictModel):
    scale: int = Field(4, description="Upscaling factor (a power of two).")
    in_nc: int = Field(3, ge=1, description="Input channels.")
    out_nc: int = Field(3, ge=1, description="Output channels.")
    nf: int = Field(64, ge=1, description="Trunk features.")
    nb: int = Field(23, ge=1, description="RRDB blocks (23 in ESRGAN/FASRGAN).")
    gc: int = Field(32, ge=1, description="Growth channels of the dense blocks.")


class FsSRGANConfig(StrictModel):
    scale: int = Field(4, description="Upscaling factor (a power of two).")
    nf: int = Field(64, ge=1, description="Features of E's output and of G's trunk.")
    nb_e: int = Field(1, ge=1, description="RRDBs in the shared extractor E ('E1').")
    nb: int = Field(16, ge=1, description="RRDBs in the generator G ('G16').")
    gc: int = Field(32, ge=1, description="Growth channels of the dense blocks.")


class UNetConfig(StrictModel):
    in_nc: int = Field(3, ge=1, description="Input channels (3: RGB images).")
    out_nc: int = Field(3, ge=1, description="Channels of the per-pixel map (3 in the code).")
    input_size: int = Field(128, ge=8, description="Training patch size; fixes the image head's FC (128 -> 16x16).")
    mask_kernel: Literal[1, 3] = Field(1, description="Last conv kernel: 1 in the released code, 3 in the figure.")
    first_bn_eps: float | None = Field(
        None, description="eps of each double conv's first BN; None = the channel count (code: BatchNorm2d(c, c))."
    )


class FASRGANParams(StrictModel):
    mask_gan_weight: float = Field(5e-3, ge=0, description="Per-pixel standard GAN term ('gan_mask_weight').")
    atten_weight: float = Field(
        5e-2, ge=0, description="Attention-weighted L1: mean(|SR-HR| * (1 - sigmoid(mask(SR))).detach())."
    )


class FsSRGANParams(StrictModel):
    """Fs-SRGAN has no options beyond the stage's losses, gan and optimizers."""


def _rrdbnet(cfg: RRDBNetConfig) -> Any:
    from sr_plugin_fasrgan.arch import build_rrdbnet

    return build_rrdbnet(cfg.in_nc, cfg.out_nc, cfg.nf, cfg.nb, cfg.gc, cfg.scale)


def _fssrgan(cfg: FsSRGANConfig) -> Any:
    from sr_plugin_fasrgan.arch import FsSRGANNet

    return FsSRGANNet(cfg.nf, cfg.nb_e, cfg.nb, cfg.gc, cfg.scale)


def _unet(cfg: UNetConfig) -> Any:
    from sr_plugin_fasrgan.arch import UNetDiscriminator

    return UNetDiscriminator(cfg.in_nc, cfg.out_nc, cfg.input_size, cfg.mask_kernel, cfg.first_bn_eps)


def _fasrgan_step(setup: Any) -> Any:
    from sr_plugin_fasrgan.steps import FASRGANStep

    return FASRGANStep(setup)


def _fssrgan_step(setup: Any) -> Any:
    from sr_plugin_fasrgan.steps import FsSRGANStep

    return FsSRGANStep(setup)


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    register(
        "rrdbnet",
        _rrdbnet,
        config=RRDBNetConfig,
        description="ESRGAN RRDBNet generator of FASRGAN/ESRGAN (16,697,987 params at x4, nb 23).",
        scales=(2, 4, 8),
        tile_exact=True,
        receptive_field=350,  # 23 RRDBs x 15 convs + 4 (nb 23)
    )
    register(
        "fssrgan",
        _fssrgan,
        config=FsSRGANConfig,
        description="Fs-SRGAN generator G(E(x)): shared extractor E (conv + RRDB) and RRDBNet on 64 features.",
        scales=(2, 4, 8),
        tile_exact=True,
        receptive_field=260,  # (1 + 16) RRDBs x 15 convs + 5
    )


@hookimpl
def srcore_register_discriminators(register: Registrar) -> None:
    register(
        "unet",
        _unet,
        config=UNetConfig,
        description="FASRGAN U-Net D: image-level logit + per-pixel real/fake map (70,473,220 params).",
    )


@hookimpl
def srcore_register_recipes(register: RecipeRegistrar) -> None:
    from sr_plugin_fasrgan.recipes import recipes

    register.step(
        "fasrgan",
        _fasrgan_step,
        config=FASRGANParams,
        description="FASRGAN G/D step: RaGAN image term, per-pixel GAN term, attention-weighted L1.",
    )
    register.step(
        "fssrgan",
        _fssrgan_step,
        config=FsSRGANParams,
        description="Fs-SRGAN G/D step: D on the shared extractor's features; E updated by both losses.",
    )
    for name, (defaults, description) in recipes().items():
        register(name, defaults=defaults, description=description)


@hookimpl
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from sr_plugin_fasrgan.official import detect

    return detect(state_dict)
