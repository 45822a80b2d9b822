"""Entry point of the `gflmser` plugin: hook implementations that register its components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sr_plugin_gflmser.configs import (
    BidirectionalParams,
    DiscriminatorConfig,
    GFLmserConfig,
    H2LDegradationConfig,
    JointParams,
    LmserConfig,
)
from srcore import hookimpl
from srcore.registry import CheckpointMatch, RecipeRegistrar, Registrar


def build_gflmser(cfg: GFLmserConfig) -> Any:
    """L2H super-resolver fed by H2L skips computed on the bicubic-upsampled LR (x4 faces)."""
    from sr_plugin_gflmser.nets import GFLmser

    return GFLmser(skip=cfg.skip, face_size=cfg.face_size)


def build_lmser(cfg: LmserConfig) -> Any:
    """Joint 7-level Lmser (Lmser/lmser_gate.py): H2L with z map + gated L2H in one net, x4 faces."""
    from sr_plugin_gflmser.lmser import JointLmser

    return JointLmser(skip=cfg.skip)


def build_d_lr(cfg: DiscriminatorConfig) -> Any:
    """LR-domain residual discriminator on 16x16 faces (v1_discriminator.py, 445,953 params)."""
    from sr_plugin_gflmser.discriminators import ResidualDiscriminator

    return ResidualDiscriminator(16, sigmoid=cfg.sigmoid)


def build_d_hr(cfg: DiscriminatorConfig) -> Any:
    """HR-domain residual discriminator on 64x64 faces (low_to_high/Discriminator.py, 445,953 params)."""
    from sr_plugin_gflmser.discriminators import ResidualDiscriminator

    return ResidualDiscriminator(64, sigmoid=cfg.sigmoid)


def build_h2l_degradation(cfg: H2LDegradationConfig) -> Any:
    """A trained GFLmser H2L net as a learned, realistic HR -> LR (x4) degradation."""
    import torch

    from sr_plugin_gflmser.checkpoint import h2l_state_dict, read_state_dict
    from sr_plugin_gflmser.degradation import H2LDegradation
    from sr_plugin_gflmser.nets import H2L
    from srcore.errors import CheckpointError

    net = H2L()
    try:
        net.load_state_dict(h2l_state_dict(read_state_dict(cfg.checkpoint)), strict=True)
    except RuntimeError as exc:
        first = " ".join(str(exc).splitlines()[:3])
        raise CheckpointError(f"{cfg.checkpoint}: H2L weights do not fit: {first}") from None
    return H2LDegradation(net.to(torch.device(cfg.device)), noise_factor=cfg.noise_factor)


def build_step(setup: Any) -> Any:
    """GFLmser's staged bidirectional training: H2L content, H2L adversarial, then L2H."""
    from sr_plugin_gflmser.step import BidirectionalStep

    return BidirectionalStep(setup)


def build_joint_step(setup: Any) -> Any:
    """The joint Lmser's training: H2L and L2H together against an LR-domain D (lmser_gate_main.py)."""
    from sr_plugin_gflmser.joint_step import JointStep

    return JointStep(setup)


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    register(
        "gflmser",
        build_gflmser,
        config=GFLmserConfig,
        scales=(4,),
        size_multiple=2,
        min_size=2,
        internal_range=(-1.0, 1.0),
        tile_exact=False,  # Linear bottleneck over a fixed 64x64 face
    )
    register("lmser", build_lmser, config=LmserConfig, scales=(4,), internal_range=(-1.0, 1.0), tile_exact=False)


@hookimpl
def srcore_register_discriminators(register: Registrar) -> None:
    register("d_lr", build_d_lr, config=DiscriminatorConfig)
    register("d_hr", build_d_hr, config=DiscriminatorConfig)


@hookimpl
def srcore_register_degradations(register: Registrar) -> None:
    register("h2l", build_h2l_degradation, config=H2LDegradationConfig)


@hookimpl
def srcore_register_recipes(register: RecipeRegistrar) -> None:
    from sr_plugin_gflmser.recipes import FACES_X4, FACES_X4_DESCRIPTION, LMSER_FACES_X4, LMSER_FACES_X4_DESCRIPTION

    register.step("bidirectional", build_step, config=BidirectionalParams)
    register.step("joint", build_joint_step, config=JointParams)
    register("gflmser-faces-x4", defaults=FACES_X4, description=FACES_X4_DESCRIPTION)
    register("lmser-faces-x4", defaults=LMSER_FACES_X4, description=LMSER_FACES_X4_DESCRIPTION)


@hookimpl
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from sr_plugin_gflmser.checkpoint import detect

    return detect(state_dict)
