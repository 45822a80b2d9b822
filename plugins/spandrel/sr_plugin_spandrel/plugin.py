"""Entry point of the `spandrel` plugin: spandrel's super-resolution architectures as srcore models.

One model ``spandrel:<arch>`` per SR architecture of spandrel's main registry (``swinir``, ``hat``,
``compact``, ``span``, ``esrgan``, ...), built from the hyperparameters spandrel reads from a
state dict, and a checkpoint detector that asks spandrel *after* every other plugin
(``trylast``), so srcore's own layouts (BasicSR RRDBNet, the methods' official releases) win.

The module imports nothing heavy: spandrel (about a second of imports) is loaded only when a model
is built or a file must be detected. Without spandrel installed the plugin fails to load, with
the command that fixes it, and the rest of srcore keeps working.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from functools import partial
from typing import Any

from srcore import hookimpl
from srcore.registry import CheckpointMatch, Registrar

if importlib.util.find_spec("spandrel") is None:
    raise ImportError(
        "the spandrel plugin needs the 'spandrel' package: pip install spandrel "
        "(or pip install 'sr-plugin-spandrel[spandrel]')"
    )


@hookimpl
def srcore_register_models(register: Registrar) -> None:
    from sr_plugin_spandrel import bridge

    for arch_id in bridge.sr_architectures():
        register(
            bridge.model_name(arch_id),
            partial(bridge.build, arch_id),
            config=bridge.SpandrelParams,
            description=f"spandrel's {arch_id}, rebuilt from its hyperparameters (any scale spandrel detects).",
            scales=bridge.SCALES,
            supports_half=False,
        )


@hookimpl(trylast=True)
def srcore_detect_checkpoint(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    from sr_plugin_spandrel import bridge

    return bridge.detect(state_dict)
