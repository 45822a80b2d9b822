"""Built-in discriminators of the core plugin: the VGG-style Ds of the ESRGAN family."""

from __future__ import annotations

from pydantic import Field

from srcore.registry import Registrar, StrictModel


class VGG128Config(StrictModel):
    in_nc: int = Field(3, ge=1, description="Input channels (3 for RGB images).")
    nf: int = Field(64, ge=1, description="Width of the first stage (64 in ESRGAN).")
    input_size: int = Field(128, ge=32, description="Input height/width (128 in ESRGAN; a multiple of 32).")


class VGG192Config(StrictModel):
    in_nc: int = Field(3, ge=1, description="Input channels (Fs-SRGAN: 64 extractor features).")
    nf: int = Field(64, ge=1, description="Width of the first stage (64 in BasicSR).")
    input_size: int = Field(192, ge=64, description="Input height/width (192 in Fs-SRGAN; a multiple of 64).")


def _vgg128(cfg: VGG128Config):
    from srcore.nn.discriminators import DiscriminatorVGG128

    return DiscriminatorVGG128(cfg.in_nc, cfg.nf, cfg.input_size)


def _vgg192(cfg: VGG192Config):
    from srcore.nn.discriminators import DiscriminatorVGG192

    return DiscriminatorVGG192(cfg.in_nc, cfg.nf, cfg.input_size)


def register_discriminators(register: Registrar) -> None:
    register(
        "vgg128",
        _vgg128,
        config=VGG128Config,
        description="ESRGAN Discriminator_VGG_128 (mmsr key names), one logit per 128x128 image.",
    )
    register(
        "vgg192",
        _vgg192,
        config=VGG192Config,
        description="Old-BasicSR Discriminator_VGG_192 on N-channel 192x192 inputs (Fs-SRGAN).",
    )
