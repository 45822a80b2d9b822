"""Entry point of the `srcnn` plugin: hook implementations that register its components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srcore import hookimpl
from srcore.registry import CheckpointMatch, RecipeRegistrar, Registrar

Y = {"in_channels": 1, "out_channels": 1}
S234 = (2, 3, 4)


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    from .models import drcn, drrn, espcn, fsrcnn, glean, lapsrn, rcan, rdn, srcnn, vdsr, wdsr

    register(
        "srcnn",
        srcnn.build_srcnn,
        config=srcnn.SRCNNConfig,
        tile_exact=True,
        receptive_field=8,
        scales=S234,
        pre_upsampled=True,
        **Y,
        description="SRCNN 9-5-5 / 9-1-5 on bicubic-upsampled Y (57,281 / 8,129 params).",
    )
    register(
        "fsrcnn",
        fsrcnn.build_fsrcnn,
        config=fsrcnn.FSRCNNConfig,
        tile_exact=True,
        receptive_field=8,
        scales=S234,
        **Y,
        description="FSRCNN(d, s, m) on LR Y, deconvolution output (12,809 params at 56-12-4).",
    )
    register(
        "vdsr",
        vdsr.build_vdsr,
        config=vdsr.VDSRConfig,
        tile_exact=True,
        receptive_field=20,
        scales=S234,
        pre_upsampled=True,
        **Y,
        description="VDSR, 20 bias-free convs, global residual, one model for x2/x3/x4 (664,704 params).",
    )
    register(
        "espcn",
        espcn.build_espcn,
        config=espcn.ESPCNConfig,
        tile_exact=True,
        receptive_field=4,
        scales=S234,
        **Y,
        description="ESPCN, tanh convs and sub-pixel output (21,284 / 22,729 / 24,752 params).",
    )
    register(
        "drcn",
        drcn.build_drcn,
        config=drcn.DRCNConfig,
        tile_exact=True,
        receptive_field=36,  # 16 recursions, seed variant (paper: 20)
        scales=S234,
        pre_upsampled=True,
        **Y,
        description="DRCN, 16 recursions, recursive supervision and skip (1,775,121 params; seed 1,775,122).",
    )
    register(
        "drrn",
        drrn.build_drrn,
        config=drrn.DRRNConfig,
        tile_exact=True,
        receptive_field=52,  # B1U25: 2 x 25 units + 2
        scales=S234,
        pre_upsampled=True,
        **Y,
        description="DRRN B1U25, shared-weight residual units (297,216 conv params; +13,056 BN; variant seed without).",
    )
    register(
        "lapsrn",
        lapsrn.build_lapsrn,
        config=lapsrn.LapSRNConfig,
        tile_exact=True,
        receptive_field=20,  # x8 (x4: 17, x2: 12)
        scales=(2, 4, 8),
        **Y,
        description="LapSRN, progressive x2 levels (x4: 870,112 params).",
    )
    register(
        "rdn",
        rdn.build_rdn,
        config=rdn.RDNConfig,
        tile_exact=True,
        receptive_field=133,  # config B: 16 RDBs x 8 convs + 5
        scales=S234,
        description="RDN config B (D16 C8 G64): 22,123,395 / 22,308,035 / 22,271,107 params.",
    )
    register(
        "rcan",
        rcan.build_rcan,
        config=rcan.RCANConfig,
        tile_exact=False,  # channel attention pools the whole image
        scales=S234,
        internal_range=(0.0, 255.0),
        description="RCAN 10 groups x 20 RCABs (x4: 15,592,355 params).",
    )
    register(
        "wdsr_a",
        wdsr.build_wdsr_a,
        config=wdsr.WDSRConfig,
        tile_exact=True,
        receptive_field=34,
        scales=S234,
        internal_range=(-1.0, 1.0),
        description="WDSR-A, wide 3x3 blocks, weight norm, 16 blocks x 32 feats.",
    )
    register(
        "wdsr_b",
        wdsr.build_wdsr_b,
        config=wdsr.WDSRConfig,
        tile_exact=True,
        receptive_field=18,
        scales=S234,
        internal_range=(-1.0, 1.0),
        description="WDSR-B, wide 1x1 + low-rank blocks, weight norm, 16 blocks x 32 feats.",
    )
    register(
        "glean",
        glean.build_glean,
        config=glean.GLEANConfig,
        tile_exact=False,  # latent encoder of the whole 32x32 input
        scales=(8, 16, 32),
        fixed_size=32,
        min_size=32,
        internal_range=(-1.0, 1.0),
        supports_half=False,
        description="GLEAN: RRDB encoder + frozen StyleGAN2 latent bank + decoder; 32x32 LR input.",
    )


@hookimpl
def srcore_register_recipes(register: RecipeRegistrar) -> None:
    from .recipes import all_recipes
    from .steps import ClassicParams, build_classic_step

    register.step(
        "classic",
        build_classic_step,
        config=ClassicParams,
        description="Supervised step with SGD, per-layer lr, adjustable clipping, deep supervision.",
        uses=lambda p: ("losses", *(("optim.lr", "optim.weight_decay") if p.optimizer == "sgd" else ("optim",))),
    )
    for name, (defaults, description) in all_recipes().items():
        register(name, defaults=defaults, description=description)


@hookimpl
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from .detect import detect

    return detect(state_dict)
