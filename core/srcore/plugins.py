"""Plugin manager: loads entry points of group ``srcore`` on request and builds registries.

Loading follows pytest/llm/tox: nothing happens at import; ``load()`` reads entry points unless
autoload is disabled, ``only=[...]`` (``--plugin``) loads just those, ``SRCORE_LOAD_PLUGINS=a,b``
selects by name, ``SRCORE_BLOCK_PLUGINS=a,b`` blocks names, and the core's own plugin is
registered last through the same hooks. A plugin that raises on import or inside a hook is
recorded as failed (distribution, version, error) and the others keep working. Two distributions
declaring the same entry-point name both fail, each naming the other: loading either would make the
other's components vanish without a word.
"""

from __future__ import annotations

import difflib
import importlib
import os
import re
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import pluggy

from srcore import hookspecs
from srcore.errors import CheckpointError, PluginError
from srcore.registry import (
    CheckpointMatch,
    CheckpointRefusal,
    Component,
    Kind,
    PluginStatus,
    RecipeRegistrar,
    Registrar,
    Registries,
)

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
    detection: str | None = None  # "yes", "tryfirst" or "trylast" when it implements srcore_detect_checkpoint
    detection_error: str | None = None  # what its detector raised, in this process

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def label(self) -> str:
        """``name (distribution version)``, how messages name a plugin."""
        dist = " ".join(x for x in (self.distribution, self.version) if x)
        return f"{self.name} ({dist})" if dist else self.name

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "status": "ok" if self.ok else "failed",
            "error": self.error,
            "components": self.components,
            "checkpoint_detection": {"provided": self.detection is not None, "order": self.detection,
                                     "error": self.detection_error},
            "training_steps": self.components.get("step", []),
        }


@dataclass
class Detection:
    """What asking every detector gave: the match, and the detectors that refused or raised."""

    match: CheckpointMatch | None = None
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (plugin, message)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (plugin, "Type: message")

    @property
    def refusal(self) -> str | None:
        """The refusals as one line, or None."""
        if not self.refusals:
            return None
        return "; ".join(f"the checkpoint detector of plugin '{p}' refused it: {m}" for p, m in self.refusals)

    @property
    def error(self) -> str | None:
        """The detectors that raised, as one line, or None."""
        if not self.errors:
            return None
        return "; ".join(f"the checkpoint detector of plugin '{p}' raised {m}" for p, m in self.errors)


def _env_list(var: str) -> list[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return [s.strip() for s in raw.split(",") if s.strip()]


def _truthy(var: str) -> bool:
    return os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no")


def grouped_entry_points() -> dict[str, list[metadata.EntryPoint]]:
    """Entry points of group ``srcore`` by name, one per distribution; two or more is a clash."""
    found: dict[str, dict[str, metadata.EntryPoint]] = {}
    for ep in metadata.entry_points(group=GROUP):
        dist = _dist_name(ep) or ep.value
        found.setdefault(ep.name, {}).setdefault(re.sub(r"[-_.]+", "-", dist).lower(), ep)  # PEP 503 name
    return {name: list(by_dist.values()) for name, by_dist in found.items()}


def available_entry_points() -> dict[str, metadata.EntryPoint]:
    """Entry points of group ``srcore`` by name (on a clash the first; ``load`` fails them all)."""
    return {name: eps[0] for name, eps in grouped_entry_points().items()}


def _dist_name(ep: metadata.EntryPoint) -> str | None:
    return ep.dist.metadata["Name"] if ep.dist else None


def _info_of(ep: metadata.EntryPoint) -> PluginInfo:
    return PluginInfo(ep.name, distribution=_dist_name(ep), version=ep.dist.version if ep.dist else None,
                      module=ep.value)


def _clash_infos(name: str, eps: Sequence[metadata.EntryPoint]) -> list[PluginInfo]:
    """One failed record per distribution of a clashing entry-point name, each naming all of them."""
    infos = [_info_of(ep) for ep in eps]
    dists = " and ".join(f"{i.distribution or '?'} {i.version or ''}".strip() for i in infos)
    for info in infos:
        info.error = (f"entry point '{name}' (group {GROUP}) is declared by {len(infos)} distributions, "
                      f"{dists}: neither is loaded; uninstall all but one")
    return infos


class PluginManager:
    """Owns the pluggy manager, the plugin records and the registries built from them."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self.clashing: list[PluginInfo] = []  # further distributions of a clashing name (plugins[name] has the first)
        self._registries: Registries | None = None
        self._loaded = False

    # -- loading -----------------------------------------------------------------------------
    def load(self, only: Sequence[str] | None = None, blocked: Iterable[str] = ()) -> PluginManager:
        """Load external plugins (see module doc), then the built-in one; idempotent."""
        if self._loaded:
            return self
        self._loaded = True
        block = set(blocked) | set(_env_list("SRCORE_BLOCK_PLUGINS") or [])
        grouped = grouped_entry_points()
        eps = {name: group[0] for name, group in grouped.items()}
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
            if len(grouped[name]) > 1:
                first, *rest = _clash_infos(name, grouped[name])
                self.plugins[name] = first
                self.clashing.extend(rest)
                continue
            self._load_entry_point(eps[name])
        if CORE not in block:
            self.register(importlib.import_module(BUILTIN_MODULE), CORE, distribution="srcore")
        return self

    def _load_entry_point(self, ep: metadata.EntryPoint) -> None:
        info = _info_of(ep)
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
        regs = Registries(PluginStatus(installed=set(grouped_entry_points())))
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
        assert regs.status is not None
        regs.status.failed = {n: i.error for n, i in self.plugins.items() if i.error is not None}
        regs.status.loaded = {n for n, i in self.plugins.items() if i.ok}
        self._registries = regs
        return regs

    def detect_checkpoint(self, state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
        """The match of ``detect`` (None when no detector recognises the state dict)."""
        return self.detect(state_dict).match

    def detect(self, state_dict: Mapping[str, Any]) -> Detection:
        """Ask each plugin's ``srcore_detect_checkpoint`` in ``detection_order`` until one matches.

        A ``CheckpointRefusal`` (or any ``CheckpointError``) is the detector's word for "mine, but
        not loadable" and is kept for the user; any other exception is a broken detector: it is
        recorded on the plugin (``srcore plugins`` shows it) and the next detector is asked.
        """
        found = Detection()
        for impl in self.detection_order():
            info = self.plugins.get(impl.plugin_name)
            if info is None or not info.ok:
                continue
            try:
                match = impl.function(state_dict=state_dict)
            except CheckpointRefusal as exc:
                found.refusals.append((info.name, _one_line(exc)))
                continue
            except Exception as exc:  # a broken detector must not hide the others
                if isinstance(exc, CheckpointError):
                    found.refusals.append((info.name, _one_line(exc)))
                    continue
                info.detection_error = f"{type(exc).__name__}: {_one_line(exc)}"
                info.traceback = traceback.format_exc()
                found.errors.append((info.name, info.detection_error))
                continue
            if match is not None:
                found.match = match
                return found
        return found

    def probe_detectors(self) -> None:
        """Show every detector a state dict that is nobody's, as each user's load does: one that
        raises (a ``KeyError`` on a foreign file, typically) is recorded on its plugin."""
        import torch

        self.detect({"srcore.probe.weight": torch.zeros(1)})

    def detection_order(self) -> list[Any]:
        """Detector hookimpls as pluggy calls them (last registered first: the core before the
        entry-point plugins), with every ``tryfirst`` before and every ``trylast`` after the rest."""
        impls = list(reversed(self.pm.hook.srcore_detect_checkpoint.get_hookimpls()))
        rank = {id(i): (0 if i.tryfirst else 2 if i.trylast else 1) for i in impls}
        return sorted(impls, key=lambda i: rank[id(i)])

    def info(self) -> list[PluginInfo]:
        """Every plugin record (clashing distributions each have one), the core first."""
        self.registries  # noqa: B018 - fills the component lists
        for impl in self.detection_order():
            if impl.plugin_name in self.plugins:
                self.plugins[impl.plugin_name].detection = "tryfirst" if impl.tryfirst else (
                    "trylast" if impl.trylast else "yes")
        every = [*self.plugins.values(), *self.clashing]
        return sorted(every, key=lambda p: (p.name != CORE, p.name, p.distribution or ""))

    def failed(self) -> list[PluginInfo]:
        """The plugins that failed to load or register (a broken detector alone is not a failure)."""
        return [p for p in self.info() if not p.ok]


def _one_line(exc: BaseException) -> str:
    return next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), type(exc).__name__)


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


def recorded_requirement(model_id: str, recorded: Mapping[str, Any], registries: Registries) -> str | None:
    """``sr-plugin-imdn 0.1.0`` when ``model_id``'s plugin is not installed and a checkpoint's
    ``meta.json`` (``recorded``: its ``plugins`` mapping) names the distribution it came from."""
    plugin = model_id.split(":", 1)[0] if ":" in model_id else None
    return recorded_distribution(plugin, recorded, registries) if plugin else None


def recorded_distribution(plugin: str, recorded: Mapping[str, Any], registries: Registries) -> str | None:
    """``sr-plugin-imdn 0.1.0`` when ``plugin`` is neither installed nor loaded and ``recorded``
    (a checkpoint meta.json's ``plugins`` mapping) names its distribution."""
    entry = recorded.get(plugin)
    status = registries.status
    if not isinstance(entry, Mapping) or not entry.get("distribution"):
        return None
    if status is not None and (plugin in status.installed or plugin in status.loaded):
        return None
    return " ".join(str(x) for x in (entry["distribution"], entry.get("version")) if x)
