"""Entry point of the `fxsr` plugin: hook implementations that register its components."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srcore import hookimpl
from srcore.registry import CheckpointMatch, RecipeRegistrar, Registrar


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    from sr_plugin_fxsr.config import FxSRConfig

    register(
        "fxsr",
        _build_fxsr,
        config=FxSRConfig,
        description="FxSR generator: RRDB with 5 SFT layers per dense block, conditioned on a "
        "per-pixel style map t (FxSR-PD / FxSR-DS, 18.3M parameters)",
        scales=(4, 8),
        condition="t",
        tile_exact=True,
        receptive_field=350,  # 23 RRDBs x 15 convs + 4, for the image and for t
    )


@hookimpl
def srcore_register_recipes(register: RecipeRegistrar) -> None:
    from sr_plugin_fxsr.config import ConditionalParams
    from sr_plugin_fxsr.recipes import RECIPES, conditional_recipe

    register.step(
        "conditional",
        _build_step,
        config=ConditionalParams,
        description="FxSR conditional objective: t sampled per sample, loss weights piecewise-linear in t",
    )
    for name, (description, scale, controller) in RECIPES.items():
        register(name, defaults=conditional_recipe(name, scale, controller), description=description)


def _build_fxsr(cfg: Any) -> Any:
    from sr_plugin_fxsr.model import build_fxsr

    return build_fxsr(cfg)


def _build_step(setup: Any) -> Any:
    from sr_plugin_fxsr.step import ConditionalStep

    return ConditionalStep(setup)


@hookimpl
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from sr_plugin_fxsr.checkpoint import detect

    return detect(state_dict)
