"""pytest plugin for plugin authors (auto-registered through the ``pytest11`` entry point).

Fixtures:
* ``srcore_manager``: a fresh plugin manager with only the core plugin loaded, installed as the
  process-wide manager for the test (so in-process CLI calls see it) and restored afterwards.
* ``srcore_plugin``: ``srcore_plugin(obj, name)`` registers a plugin object in-process and
  returns the registries; it is unregistered when the test ends.

Conformance: ``check_conformance(registries, plugin)`` builds every component of a plugin from
its default config; models run forward and backward on CPU at each declared scale and must give
the right shape with finite values; every recipe's defaults are validated against the
registries as ``srcore train`` validates them (a misspelt ``model.params`` key is a problem here,
not at the first ``srcore train``). ``recipes_preflight=True`` also runs each recipe's preflight
(``srcore config check``), which needs its data: give it with ``overrides``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from srcore import plugins as _plugins
from srcore.plugins import PluginManager
from srcore.registry import Component, Registries


@pytest.fixture
def srcore_manager() -> Iterator[PluginManager]:
    manager = PluginManager().load(only=["core"])
    previous = _plugins.set_override(manager)
    try:
        yield manager
    finally:
        _plugins.set_override(previous)


@pytest.fixture
def srcore_plugin(srcore_manager: PluginManager) -> Iterator[Callable[[object, str], Registries]]:
    names: list[str] = []

    def register(obj: object, name: str) -> Registries:
        srcore_manager.register(obj, name)
        names.append(name)
        return srcore_manager.registries

    yield register
    for name in names:
        srcore_manager.unregister(name)


def shared_data_dir() -> Path:
    """The benchmark images and released weights for tests: ``$SRCORE_SHARED_DATA``, else
    ``../shared/data`` next to the source tree. It may not exist: callers skip with a reason."""
    import os

    from srcore.data.sets import repo_root

    env = os.environ.get("SRCORE_SHARED_DATA")
    return Path(env) if env else (repo_root() / ".." / "shared" / "data").resolve()


def randomise_batchnorm(module: Any, seed: int = 3) -> None:
    """Give every BatchNorm2d non-trivial statistics and affine parameters.

    Fresh BN layers are the identity in eval mode, so an equivalence test against a reference
    implementation would not notice mixed-up BN keys; this makes such mistakes visible.
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    for mod in module.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.copy_(torch.randn(mod.num_features, generator=g) * 0.1)
            mod.running_var.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.weight.data.copy_(torch.rand(mod.num_features, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.num_features, generator=g) * 0.1)


def model_input(comp: Component, scale: int, lr_size: int = 12) -> tuple[Any, ...]:
    """A random input (and condition map) that satisfies the model's size requirements."""
    import torch

    info = comp.info
    assert info is not None
    size = info.fixed_size or max(info.min_size, lr_size)
    size = -(-size // info.size_multiple) * info.size_multiple
    gen = torch.Generator().manual_seed(0)
    side = size * scale if info.pre_upsampled else size
    x = torch.rand(1, info.in_channels, side, side, generator=gen)
    if info.condition:
        return x, torch.rand(1, 1, side, side, generator=gen)
    return (x,)


def check_model(comp: Component, scale: int) -> str | None:
    """Build at ``scale``, run forward and backward; return a problem description or None."""
    import torch

    fields = comp.config_cls.model_fields
    model = comp.build({"scale": scale} if "scale" in fields else {})
    inputs = model_input(comp, scale)
    out = model(*inputs)
    if isinstance(out, (tuple, list)):
        out = out[-1]
    h = inputs[0].shape[-1] * (1 if comp.info and comp.info.pre_upsampled else scale)
    expected = (1, comp.info.out_channels if comp.info else 3, h, h)
    if tuple(out.shape) != expected:
        return f"{comp.id} x{scale}: output shape {tuple(out.shape)}, expected {expected}"
    if not torch.isfinite(out).all():
        return f"{comp.id} x{scale}: non-finite output"
    if out.requires_grad:
        out.float().mean().backward()
    if not any(p.grad is not None for p in model.parameters() if p.requires_grad):
        return f"{comp.id} x{scale}: no parameter received a gradient"
    return None


def check_conformance(
    registries: Registries,
    plugin: str,
    kinds: tuple[str, ...] = ("model", "recipe"),
    recipes_preflight: bool = False,
    overrides: Sequence[str] = (),
) -> list[str]:
    """Problems found in ``plugin``'s components (an empty list means it conforms).

    ``kinds`` selects what is checked: models (every declared scale), recipes (defaults
    validated), and any other kind (built from its default config). A component whose default
    config needs pretrained weights that are not on this machine (``MissingWeightsError``, e.g.
    a VGG perceptual loss) is not a conformance problem. ``recipes_preflight`` runs the preflight
    of every recipe with ``overrides`` (``--set`` strings such as ``data.train.hr=DIR``) applied.
    """
    from srcore.errors import MissingWeightsError

    problems: list[str] = []
    for kind in kinds:
        for comp in registries[kind]:  # type: ignore[index]
            if comp.plugin != plugin:
                continue
            try:
                if kind == "model":
                    assert comp.info is not None
                    problems.extend(p for s in comp.info.scales if (p := check_model(comp, s)))
                elif kind == "recipe":
                    problems.extend(check_recipe(registries, comp))
                elif comp.builder is not None:
                    comp.build({})
            except MissingWeightsError:
                continue
            except Exception as exc:  # report every component, not just the first failure
                problems.append(f"{comp.id}: {type(exc).__name__}: {exc}")
    if recipes_preflight:
        problems.extend(p for comp in registries.recipes if comp.plugin == plugin
                        for p in check_recipe_preflight(registries, comp, overrides))
    return list(dict.fromkeys(problems))  # a recipe's config problem is found by both checks


def check_recipe(registries: Registries, comp: Component) -> list[str]:
    """The recipe's defaults validated as ``srcore train -r ID`` validates them, one line per problem."""
    from srcore.config import deep_merge, validate_run_config
    from srcore.errors import ConfigError

    try:
        validate_run_config(deep_merge(comp.extra["defaults"], {"recipe": comp.id}), registries)
    except ConfigError as exc:
        return [f"{comp.id}: {p}" for p in exc.problems]
    return []


@dataclass
class _Manager:
    """What the engine's ``build_run``/``check_run`` need of a plugin manager."""

    registries: Registries


def check_recipe_preflight(registries: Registries, comp: Component, overrides: Sequence[str] = ()) -> list[str]:
    """The recipe's preflight on the CPU (``srcore config check -r ID -s ...``), one line per problem."""
    from srcore.config import resolve_run_config
    from srcore.engine import dist as D
    from srcore.engine.loop import build_run, check_run
    from srcore.engine.preflight import PreflightError
    from srcore.errors import ConfigError, SrcoreError

    manager, dinfo = _Manager(registries), D.DistInfo()
    try:
        cfg = resolve_run_config(registries, recipe=comp.id, overrides=list(overrides))
        dev = D.device_for("cpu", dinfo)
        check_run(cfg, manager, build_run(cfg, manager, dev), dev, dinfo)
    except PreflightError as exc:
        return [f"{comp.id}: preflight: {p}" for p in exc.problems]
    except ConfigError as exc:
        return [f"{comp.id}: {p}" for p in exc.problems]
    except SrcoreError as exc:
        return [f"{comp.id}: {exc}"]
    return []


# -- small pieces for engine tests (plugin authors' too) ---------------------------------------------

class RandomPairs:
    """``n`` seeded random (LR, HR) pairs: HR ``size``x``size``, LR its ``scale``x average pooling.

    A dataset for a training-step or engine test that needs no files (``train(..., dataset=...)``).
    """

    def __init__(self, n: int = 4, size: int = 16, scale: int = 2) -> None:
        self.n, self.size, self.scale = n, size, scale

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        hr = torch.rand(3, self.size, self.size, generator=torch.Generator().manual_seed(i))
        return {"lr": torch.nn.functional.avg_pool2d(hr[None], self.scale)[0], "hr": hr}


def tiny_discriminator() -> Any:
    """A two-conv discriminator (any input size, one score per image) for adversarial-step tests."""
    from torch import nn

    return nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, 2, 1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(0))


class TinyDiscriminatorPlugin:
    """Registers ``tiny_discriminator`` as discriminator ``tinyd`` (``srcore_plugin(TinyDiscriminatorPlugin(), p)``)."""

    from srcore import hookimpl as _hookimpl

    @_hookimpl
    def srcore_register_discriminators(self, register: Any) -> None:
        register("tinyd", lambda c: tiny_discriminator(), description="two-conv test discriminator")
