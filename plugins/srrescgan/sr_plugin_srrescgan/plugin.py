"""Entry point of the `srrescgan` plugin: hook implementations that register its components.

Torch-heavy modules are imported inside the builders, so loading the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sr_plugin_srrescgan.configs import (
    ColorLossConfig,
    DSGANDegradationConfig,
    DSGANDiscriminatorConfig,
    DSGANGeneratorConfig,
    DSGANStepParams,
    JpegChainConfig,
    LPIPSLossConfig,
    SensorNoiseChainConfig,
    SRResCGANConfig,
    SRStepParams,
)
from srcore import hookimpl
from srcore.registry import CheckpointMatch, RecipeRegistrar, Registrar


def _build_srrescgan(cfg: SRResCGANConfig) -> Any:
    from sr_plugin_srrescgan.tiling import TileableSRResCGAN

    return TileableSRResCGAN(cfg.scale, cfg.depth, cfg.channels, cfg.clip)


def _build_dsgan_g(cfg: DSGANGeneratorConfig) -> Any:
    from sr_plugin_srrescgan.dsgan import DSGANGenerator

    return DSGANGenerator(cfg.n_res_blocks)


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    register(
        "srrescgan",
        _build_srrescgan,
        config=SRResCGANConfig,
        description="SRResCGAN generator: bilinear up, wavelet noise estimate, ResCNet residual "
        "projected on an L2 ball, subtraction, clip (380,356 params; 0..255 inside).",
        scales=(2, 3, 4),
        min_size=4,
        internal_range=(0.0, 255.0),
        supports_half=False,  # the L2 norm of a 0..255 residual overflows float16
        # the image-wide noise estimate and L2-ball projection run once on the whole image
        # (tiling.TileableSRResCGAN.tile_split), the conv residual per tile: untiled bit for bit
        tile_exact=True,
        receptive_field=7,  # depth 5 at x2 (x3: 5, x4: 4; each instance's split gives its own)
    )
    register(
        "dsgan_g",
        _build_dsgan_g,
        config=DSGANGeneratorConfig,
        description="DSGAN degradation generator G_d (same-size clean LR -> source-domain LR); "
        "trained by recipe srrescgan-dsgan, used through the degradation srrescgan:dsgan.",
        scales=(1,),
        tile_exact=True,
        receptive_field=18,
    )


@hookimpl
def srcore_register_discriminators(register: Registrar) -> None:
    def build(cfg: DSGANDiscriminatorConfig) -> Any:
        from sr_plugin_srrescgan.dsgan import DSGANDiscriminator

        return DSGANDiscriminator(cfg.kernel_size)

    register(
        "dsgan_patch",
        build,
        config=DSGANDiscriminatorConfig,
        description="DSGAN patch discriminator on high frequencies (per-pixel logits, 1.03M).",
    )


@hookimpl
def srcore_register_losses(register: Registrar) -> None:
    def tv_diff(cfg: Any) -> Any:
        from sr_plugin_srrescgan.losses import TVDifferenceLoss

        return TVDifferenceLoss()

    def color(cfg: ColorLossConfig) -> Any:
        from sr_plugin_srrescgan.losses import ColorLoss

        return ColorLoss(cfg.kernel_size)

    def lpips(cfg: LPIPSLossConfig) -> Any:
        from sr_plugin_srrescgan.losses import LPIPSLoss

        return LPIPSLoss(cfg.backbone_weights)

    register("tv_diff", tv_diff, description="SRResCGAN TV-difference: L1 of the forward-difference maps.")
    register(
        "dsgan_color",
        color,
        config=ColorLossConfig,
        description="DSGAN colour loss: L1 of box-filtered (low-frequency) images.",
    )
    register(
        "lpips",
        lpips,
        config=LPIPSLossConfig,
        description="LPIPS v0.1 AlexNet net-lin as a loss (DSGAN perceptual term).",
    )


@hookimpl
def srcore_register_degradations(register: Registrar) -> None:
    def dsgan(cfg: DSGANDegradationConfig) -> Any:
        from sr_plugin_srrescgan.degradations import build_dsgan_degradation

        return build_dsgan_degradation(cfg)

    def sensor_noise(cfg: SensorNoiseChainConfig) -> Any:
        from sr_plugin_srrescgan.degradations import build_core_chain, sensor_noise_chain

        return build_core_chain(sensor_noise_chain(cfg))

    def jpeg(cfg: JpegChainConfig) -> Any:
        from sr_plugin_srrescgan.degradations import build_core_chain, jpeg_chain

        return build_core_chain(jpeg_chain(cfg))

    register(
        "dsgan",
        dsgan,
        config=DSGANDegradationConfig,
        description="Learned DSGAN degradation: MATLAB bicubic /scale, then G_d (checkpoint path).",
    )
    register(
        "sensor_noise",
        sensor_noise,
        config=SensorNoiseChainConfig,
        description="Paper table 'sensor noise': core:chain of core:bicubic + core:noise sigma 8.",
    )
    register(
        "jpeg",
        jpeg,
        config=JpegChainConfig,
        description="Paper table 'JPEG': core:chain of core:bicubic + core:jpeg quality 30.",
    )


@hookimpl
def srcore_register_recipes(register: RecipeRegistrar) -> None:
    from sr_plugin_srrescgan.recipes import DSGAN_RECIPE, SR_RECIPE

    def sr_step(setup: Any) -> Any:
        from sr_plugin_srrescgan.steps import SRStep

        return SRStep(setup)

    def dsgan_step(setup: Any) -> Any:
        from sr_plugin_srrescgan.steps import DSGANStep

        return DSGANStep(setup)

    register.step(
        "sr",
        sr_step,
        config=SRStepParams,
        description="SRResCGAN SR stage: mixup, 10 L1 + VGG54 + TV-diff + RaGAN on high-pass images.",
    )
    register.step(
        "dsgan",
        dsgan_step,
        config=DSGANStepParams,
        description="DSGAN: colour + LPIPS + texture GAN on high frequencies, unpaired real LR.",
    )
    register(
        "srrescgan-x4",
        defaults=SR_RECIPE,
        description="SRResCGAN x4 (NTIRE20 RWSR): SR stage on DSGAN-degraded pairs, 51k iterations.",
    )
    register(
        "srrescgan-dsgan",
        defaults=DSGAN_RECIPE,
        description="DSGAN degradation model on unpaired clean HR and real-domain LR.",
    )


@hookimpl
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from sr_plugin_srrescgan.checkpoints import detect_dsgan, detect_srrescgan

    return detect_srrescgan(state_dict) or detect_dsgan(state_dict)
