"""Hook specifications of srcore: the whole contract between the core and its plugins.

Plugins implement these with ``from srcore import hookimpl``. Registrar hooks receive a
``register`` callable that the core binds to the plugin's namespace, so a component registered
as ``"rrdb"`` by the plugin ``fxsr`` is known as ``fxsr:rrdb``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from srcore.registry import CheckpointMatch, RecipeRegistrar, Registrar

PROJECT = "srcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def srcore_register_models(register: Registrar) -> None:
    """Register generators (SR networks).

    ``register(name, builder, config=ConfigModel, description=..., scales=(2, 3, 4), ...)``;
    the keyword arguments after ``description`` describe the model (see ``ModelInfo``): its
    scales, channels, whether its input is pre-upsampled, whether it takes a condition map and
    its size requirements. ``builder(config)`` returns an ``nn.Module`` that maps
    ``(N, C, h, w)`` in [0, 1] to ``(N, C, s*h, s*w)`` (or ``forward(x, cond)`` for
    conditional models).
    """


@hookspec
def srcore_register_discriminators(register: Registrar) -> None:
    """Register discriminators: ``builder(config)`` returns an ``nn.Module`` producing logits."""


@hookspec
def srcore_register_losses(register: Registrar) -> None:
    """Register losses: ``builder(config)`` returns an ``nn.Module`` with ``forward(sr, hr)``."""


@hookspec
def srcore_register_degradations(register: Registrar) -> None:
    """Register HR -> LR degradations, fixed or learned.

    ``builder(config)`` returns a callable ``(hr, generator=None) -> lr`` on NCHW tensors in
    [0, 1]; it has a ``scale`` attribute.
    """


@hookspec
def srcore_register_metrics(register: Registrar) -> None:
    """Register image-quality metrics (full-reference and no-reference); see ``srcore.metrics``."""


@hookspec
def srcore_register_recipes(register: RecipeRegistrar) -> None:
    """Register recipes (a method's default run configuration) and custom training steps.

    ``register(name, defaults={...}, description=...)`` adds a recipe;
    ``register.step(name, factory, config=ParamsModel, description=...)`` adds a training step
    that stages can name in ``stages[i].step``.
    """


@hookspec(firstresult=True)
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    """Say which registered model a plain state dict (e.g. an authors' release) belongs to.

    ``state_dict`` is already unwrapped (``params_ema``/``state_dict``/... wrappers, tensors only)
    and its ``module.``/``_orig_mod.`` prefixes are stripped. Return
    ``CheckpointMatch(model="plugin:name", params={...}, state_dict=converted, note=...)`` with the
    model's config derived from tensor shapes and the state dict converted to the model's own
    key names, or ``None`` when the file is not one of this plugin's (every file passes every
    detector: say no quickly, never fail). Raise ``srcore.registry.CheckpointRefusal(reason)``
    when the file is this plugin's but cannot be loaded: the reason is the user's error. Any other
    exception is recorded as this plugin's detection failure and the next detector is asked.
    """
