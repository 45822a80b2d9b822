"""The core's own plugin (``core``): generic components, registered through the same hooks.

Each hook imports its module lazily so that importing srcore stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from srcore.hookspecs import hookimpl
from srcore.registry import CheckpointMatch, RecipeRegistrar, Registrar


@hookimpl
def srcore_register_losses(register: Registrar) -> None:
    from srcore.builtin import losses

    losses.register_losses(register)


@hookimpl
def srcore_register_discriminators(register: Registrar) -> None:
    from srcore.builtin import discriminators

    discriminators.register_discriminators(register)


@hookimpl
def srcore_register_degradations(register: Registrar) -> None:
    from srcore.builtin import degradations

    degradations.register_degradations(register)


@hookimpl
def srcore_register_metrics(register: Registrar) -> None:
    from srcore.builtin import metrics

    metrics.register_metrics(register)


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    from srcore.builtin import models

    models.register_models(register)


@hookimpl
def srcore_register_recipes(register: RecipeRegistrar) -> None:
    from srcore.builtin import steps

    steps.register_steps(register)


@hookimpl
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from srcore.builtin import models

    return models.detect_basicsr_rrdbnet(state_dict)
