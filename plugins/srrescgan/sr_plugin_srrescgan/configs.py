"""Config classes of every srrescgan component (pydantic only, cheap to import).

Defaults are the values of the original code (RaoUmer/SRResCGAN @ cfb4217, DSGAN of
ManuelFritsche/real-world-sr) unless stated.
"""

from __future__ import annotations

from pydantic import Field

from srcore.registry import StrictModel


class SRResCGANConfig(StrictModel):
    """Options of the SRResCGAN generator (defaults = the released x4 model)."""

    scale: int = Field(4, ge=1, description="Upscaling factor (the released weights are x4).")
    depth: int = Field(5, ge=1, description="Residual blocks in ResCNet (5 in the paper).")
    channels: int = Field(64, ge=1, description="Feature channels of ResCNet.")
    clip: bool = Field(
        True,
        description="Hardtanh clip of the output to [0, 255] inside G, as the original (whose "
        "SRResCGAN+ therefore averages clipped members); false returns the unclipped estimate, "
        "so a self-ensemble averages unclipped outputs and clips once.",
    )


class DSGANGeneratorConfig(StrictModel):
    """Options of the DSGAN generator G_d (defaults = the released ``300_G.pth``)."""

    n_res_blocks: int = Field(8, ge=1, description="Residual blocks (8 in the released model).")
    scale: int = Field(1, ge=1, le=1, description="G_d keeps the image size (framework scale 1).")


class DSGANDiscriminatorConfig(StrictModel):
    kernel_size: int = Field(5, ge=1, description="Box size of the high-pass filter in front of D.")


class ColorLossConfig(StrictModel):
    kernel_size: int = Field(5, ge=1, description="Box filter size (no padding), DSGAN default 5.")


class LPIPSLossConfig(StrictModel):
    backbone_weights: str | None = Field(
        None,
        description="ImageNet AlexNet weights (torchvision alexnet-owt-7be5be79.pth, whole model or "
        "its 'features.*' only); default: <torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth.",
    )


class DSGANDegradationConfig(StrictModel):
    checkpoint: str = Field(description="G_d weights: the released 300_G.pth or a srcore run/checkpoint.")
    scale: int = Field(4, ge=1, description="MATLAB-bicubic downscaling factor before G_d.")
    quantize: bool = Field(True, description="Round to 8 bits, as the original saved its LR as PNG.")


class SensorNoiseChainConfig(StrictModel):
    scale: int = Field(4, ge=1, description="MATLAB-bicubic downscaling factor.")
    sigma: float = Field(8.0, ge=0, description="Gaussian noise sigma in 0..255 units (paper: 8).")
    seed: int | None = Field(0, description="Seed of the noise (fixed by default: reproducible test LR).")


class JpegChainConfig(StrictModel):
    scale: int = Field(4, ge=1, description="MATLAB-bicubic downscaling factor.")
    quality: int = Field(30, ge=1, le=100, description="JPEG quality (paper: 30).")


class SRStepParams(StrictModel):
    """Options of the SRResCGAN SR stage (defaults = main_sr_color.py)."""

    mixup_prob: float = Field(0.5, ge=0, le=1, description="Probability of mixup per batch.")
    mixup_alpha: float = Field(1.2, gt=0, description="lambda ~ Beta(alpha, alpha).")
    range_255: bool = Field(
        True,
        description="Compute every loss and feed D on 0..255 images, as the original (L1/TV in "
        "0..255 units, and the VGG, which normalises for [0, 1] inputs, sees 0..255: the "
        "original's quirk); false uses [0, 1] images.",
    )
    highpass_kernel: int = Field(9, ge=1, description="Box size of D's high-pass filter (padding counted).")
    init_generator: str | None = Field(
        None,
        description="Weights to start G from (the original starts from its G_perceptual.pth); "
        "any file srcore can load as srrescgan:srrescgan.",
    )


class DSGANStepParams(StrictModel):
    """Options of the DSGAN step."""

    downscale: int = Field(
        4, ge=1, description="G_d's input is the MATLAB-bicubic HR patch / downscale (512 -> 128 in DSGAN)."
    )
