"""Plugin manager: loads entry points of group ``srcore`` on request and builds registries.

Loading follows pytest/llm/tox: nothing happens at import; ``load()`` reads entry points unless
autoload is disabled, ``only=[...]`` (``--plugin``) loads just those, ``SRCORE_LOAD_PLUGINS=a,b``
selects by name, ``SRCORE_BLOCK_PLUGINS=a,b`` blocks names, and the core's own plugin is
registered last through the same hooks. A plugin that raises on import or inside a hook is
recorded as failed (distribution, version, error) and the others keep working.
"""

from __future__ import annotations

import difflib
import importlib
import os
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from srcore import hookspecs
from srcore.errors import PluginError
from srcore.registry import CheckpointMatch, Component, Kind, RecipeRegistrar, Registrar, Registries

GROUP = "srcore"
CORE = "core"
BUILTIN_MODULE = "srcore.builtin"

_REGISTRAR_HOOKS: dict[str, Kind] = {
    "srcore_register_models": "model",
    "srcore_register_discriminators": "discriminator",
    "srcore_register_losses": "loss",
    "srcore_register_degradations": "degradation",
    "srcore_register_metrics": "metric",
    "srcore_register_recipes": "recipe",
}


@dataclass
class PluginInfo:
    name: str
    distribution: str | None = None
    version: str | None = None
    module: str | None = None
    error: str | None = None
    traceback: str | None = None
    components: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": "ok" if self.ok else "failed",
            "error": self.error,
            "components": self.components,
        }


def _env_list(var: str) -> list[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return [s.strip() for s in raw.split(",") if s.strip()]


def _truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


def available_entry_points() -> dict[str, metadata.EntryPoint]:
    """Entry points of group ``srcore`` by name (the first distribution wins on a clash)."""
    found: dict[str, metadata.EntryPoint] = {}
    for ep in metadata.entry_points(group=GROUP):
        found.setdefault(ep.name, ep)
    return found


class PluginManager:
    """Owns the pluggy manager, the plugin records and the registries built from them."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._registries: Registries | None = None
        self._loaded = False

    # -- loading -----------------------------------------------------------------------------
    def load(self, only: Sequence[str] | None = None, blocked: Iterable[str] = ()) -> PluginManager:
        """Load external plugins (see module doc), then the built-in one; idempotent."""
        if self._loaded:
            return self
        self._loaded = True
        block = set(blocked) | set(_env_list("SRCORE_BLOCK_PLUGINS") or [])
        eps = available_entry_points()
        if only:
            unknown = [n for n in only if n not in eps and n != CORE]
            if unknown:
                close = difflib.get_close_matches(unknown[0], list(eps), n=3, cutoff=0.4)
                hint = f" Did you mean: {', '.join(close)}?" if close else ""
                raise PluginError(
                    f"no installed plugin named '{unknown[0]}'.{hint} "
                    f"Installed: {', '.join(sorted(eps)) or 'none'} (see `srcore plugins`)."
                )
            names = [n for n in only if n != CORE]
        elif (selected := _env_list("SRCORE_LOAD_PLUGINS")) is not None:
            names = [n for n in selected if n in eps]
        elif _truthy("SRCORE_DISABLE_PLUGIN_AUTOLOAD"):
            names = []
        else:
            names = sorted(eps)
        for name in names:
            if name in block:
                self.pm.set_blocked(name)
                continue
            self._load_entry_point(eps[name])
        if CORE not in block:
            self.register(importlib.import_module(BUILTIN_MODULE), CORE, distribution="srcore")
        return self

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        dist = ep.dist
        info = PluginInfo(
            ep.name,
            distribution=dist.metadata["Name"] if dist else None,
            version=dist.version if dist else None,
            module=ep.value,
        )
        self.plugins[ep.name] = info
        try:
            obj = ep.load()
            self.pm.register(obj, name=ep.name)
            self.pm.check_pending()
        except Exception as exc:  # a broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            info.traceback = traceback.format_exc()
            if self.pm.has_plugin(ep.name):
                self.pm.unregister(name=ep.name)

    def register(self, obj: object, name: str, distribution: str | None = None, version: str | None = None) -> None:
        """Register an in-process plugin object (tests, notebooks, the built-in plugin)."""
        if distribution and version is None:
            try:
                version = metadata.version(distribution)
            except metadata.PackageNotFoundError:
                version = None
        self.plugins[name] = PluginInfo(name, distribution, version, getattr(obj, "__name__", type(obj).__name__))
        self.pm.register(obj, name=name)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            self.pm.unregister(name=name)
            self.plugins[name].error = f"PluginValidationError: {exc}"
        self._registries = None

    def unregister(self, name: str) -> None:
        if self.pm.has_plugin(name):
            self.pm.unregister(name=name)
        self.plugins.pop(name, None)
        self._registries = None

    # -- registries --------------------------------------------------------------------------
    @property
    def registries(self) -> Registries:
        """Call every plugin's registrar hooks, one plugin at a time, and collect components."""
        if self._registries is not None:
            return self._registries
        regs = Registries()
        failed: set[str] = set()
        for hook_name, kind in _REGISTRAR_HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in reversed(caller.get_hookimpls()):
                plugin = impl.plugin_name
                if plugin in failed:
                    continue
                added: list[Component] = []

                def sink(comp: Component, added: list[Component] = added) -> None:
                    regs[comp.kind].add(comp)
                    added.append(comp)

                registrar = RecipeRegistrar(plugin, sink) if kind == "recipe" else Registrar(kind, plugin, sink)
                try:
                    impl.function(register=registrar)
                except Exception as exc:
                    failed.add(plugin)
                    regs.remove_plugin(plugin)
                    info = self.plugins.setdefault(plugin, PluginInfo(plugin))
                    info.error = f"{type(exc).__name__} in {hook_name}: {exc}"
                    info.traceback = traceback.format_exc()
        for name, info in self.plugins.items():
            info.components = regs.of_plugin(name)
        self._registries = regs
        return regs

    def detect_checkpoint(self, state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
        """First plugin whose ``srcore_detect_checkpoint`` recognises the state dict, asked in
        ``detection_order``: a catch-all detector (spandrel) marks its hook ``trylast``."""
        for impl in self.detection_order():
            if impl.plugin_name not in self.plugins or not self.plugins[impl.plugin_name].ok:
                continue
            try:
                match = impl.function(state_dict=state_dict)
            except Exception:
                continue
            if match is not None:
                return match
        return None

    def detection_order(self) -> list[Any]:
        """Detector hookimpls as pluggy calls them (last registered first: the core before the
        entry-point plugins), with every ``tryfirst`` before and every ``trylast`` after the rest."""
        impls = list(reversed(self.pm.hook.srcore_detect_checkpoint.get_hookimpls()))
        rank = {id(i): (0 if i.tryfirst else 2 if i.trylast else 1) for i in impls}
        return sorted(impls, key=lambda i: rank[id(i)])

    def info(self) -> list[PluginInfo]:
        self.registries  # noqa: B018 - fills the component lists
        return sorted(self.plugins.values(), key=lambda p: (p.name != CORE, p.name))


_managers: dict[tuple[tuple[str, ...] | None, tuple[str, ...]], PluginManager] = {}
_override: PluginManager | None = None


def load_plugins(only: Sequence[str] | None = None, blocked: Iterable[str] = ()) -> PluginManager:
    """The process-wide plugin manager for this selection, loaded on first use.

    Each selection (``only``, ``blocked``) has its own manager, so ``--plugin core`` in one
    command never hides the other plugins from the next. ``srcore.testing`` can install an
    override that every call returns while a test runs.
    """
    if _override is not None:
        return _override
    key = (tuple(sorted(only)) if only else None, tuple(sorted(blocked)))
    if key not in _managers:
        _managers[key] = PluginManager().load(only=only, blocked=blocked)
    return _managers[key]


def set_override(manager: PluginManager | None) -> PluginManager | None:
    """Make ``load_plugins`` return ``manager`` (None restores normal loading); returns the previous one."""
    global _override
    previous, _override = _override, manager
    return previous


def reset_plugins() -> None:
    """Forget loaded managers (tests, or after installing a plugin)."""
    _managers.clear()
