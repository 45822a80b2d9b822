"""Entry point of the `srrescgan` plugin: hook implementations that register its components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srcore import hookimpl
from srcore.registry import CheckpointMatch, Registrar


def _build_srrescgan(cfg: Any) -> Any:
    from sr_plugin_srrescgan.generator import build_srrescgan

    return build_srrescgan(cfg)


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    from sr_plugin_srrescgan.generator import SRResCGANConfig

    register(
        "srrescgan",
        _build_srrescgan,
        config=SRResCGANConfig,
        description="SRResCGAN generator: bilinear up, wavelet noise estimate, ResCNet residual "
        "projected on an L2 ball, subtraction, clip (380,356 params; 0..255 inside).",
        scales=(2, 3, 4),
        min_size=4,
        supports_half=False,  # the L2 norm of a 0..255 residual overflows float16
    )


@hookimpl
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from sr_plugin_srrescgan.checkpoints import detect_srrescgan

    return detect_srrescgan(state_dict)
