"""Typed registries of components.

A component is a name, a pydantic config class (``extra="forbid"``), a builder and a
description. Ids are namespaced by plugin (``fxsr:rrdb_sft``); a bare name resolves when it is
unique across plugins.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from srcore.errors import (
    AmbiguousComponentError,
    CheckpointError,
    ComponentError,
    ConfigError,
    DuplicateComponentError,
    UnknownComponentError,
)

Kind = Literal["model", "discriminator", "loss", "degradation", "metric", "recipe", "step"]
KINDS: tuple[Kind, ...] = ("model", "discriminator", "loss", "degradation", "metric", "recipe", "step")


class StrictModel(BaseModel):
    """Base for every config class: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NoConfig(StrictModel):
    """A component without options."""


class ModelInfo(StrictModel):
    """What the core must know about a generator to feed, pad, tile and evaluate it."""

    scales: tuple[int, ...] = Field(description="Upscaling factors the architecture supports.")
    in_channels: int = Field(3, description="3 for RGB models, 1 for Y-channel models.")
    out_channels: int = 3
    internal_range: tuple[float, float] = Field(
        (0.0, 1.0),
        description="Value range the network computes in (SRResCGAN 0..255, GFLmser -1..1). Informational: "
        "the module itself always takes and returns [0, 1] and converts inside.",
    )
    pre_upsampled: bool = Field(
        False, description="Input is the LR image bicubic-upsampled to the HR size (SRCNN, VDSR)."
    )
    condition: str | None = Field(
        None, description="Name of a 1-channel condition map at LR size the model takes, e.g. 't'."
    )
    size_multiple: int = Field(1, description="LR height and width must be multiples of this.")
    min_size: int = Field(1, description="Smallest LR height/width the model accepts.")
    fixed_size: int | None = Field(None, description="The only LR size the model accepts, if any.")
    supports_half: bool = True
    tile_exact: bool = Field(
        False,
        description="Tiling with an overlap of receptive_field gives the untiled output bit for bit: "
        "conv-only, no global statistics (whole-image pooling, channel attention, latent encoders, "
        "image-wide norms). Unknown models are assumed not exact.",
    )
    receptive_field: int | None = Field(
        None,
        ge=0,
        description="Input pixels each side that one output pixel depends on (network input pixels: "
        "upsampled ones for pre-upsampled models), where known; exact tiling needs it.",
    )

    @property
    def color(self) -> Literal["rgb", "y"]:
        return "y" if self.in_channels == 1 else "rgb"


@dataclass(frozen=True)
class Component:
    kind: Kind
    name: str
    plugin: str
    builder: Callable[[Any], Any] | None
    config_cls: type[BaseModel] = NoConfig
    description: str = ""
    info: ModelInfo | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.plugin}:{self.name}"

    def parse_config(self, params: Mapping[str, Any] | BaseModel | None = None, where: str = "") -> BaseModel:
        """Validate ``params`` against the config class; errors name the field path."""
        if isinstance(params, self.config_cls):
            return params
        try:
            return self.config_cls.model_validate(dict(params or {}))
        except ValidationError as exc:
            prefix = f"{where}." if where else ""
            raise ConfigError(
                [f"{prefix}{format_loc(e['loc'])}: {e['msg']}" + _input_hint(e) for e in exc.errors()],
                source=f"{self.kind} '{self.id}'",
            ) from None

    def build(self, params: Mapping[str, Any] | BaseModel | None = None) -> Any:
        if self.builder is None:
            raise ComponentError(f"{self.kind} '{self.id}' cannot be built")
        return self.builder(self.parse_config(params))


def format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(root)"


def _input_hint(err: Mapping[str, Any]) -> str:
    if err.get("type") in ("missing",) or "input" not in err:
        return ""
    value = repr(err["input"])
    return f" (got {value[:60]})" if len(value) <= 200 else ""


@dataclass
class PluginStatus:
    """Which plugins the registries were built from, so a missing id can say why it is missing."""

    failed: dict[str, str] = field(default_factory=dict)  # name -> error
    loaded: set[str] = field(default_factory=set)
    installed: set[str] = field(default_factory=set)  # entry-point names, loaded or not


class UnavailableComponentError(UnknownComponentError):
    """The id names a plugin that failed, is not loaded or is not installed: say that, not
    "unknown" with a list of unrelated ids."""

    def __init__(self, kind: str, ref: str, message: str) -> None:
        self.kind, self.ref, self.close = kind, ref, []
        KeyError.__init__(self, message)


def _unavailable(kind: str, ref: str, status: PluginStatus | None, close: list[str]) -> str | None:
    """Why ``ref`` is not registered when its plugin is the reason, else None."""
    if status is None or ":" not in ref:
        return None
    plugin = ref.split(":", 1)[0]
    if plugin in status.failed:
        return f"{kind} {ref} belongs to plugin {plugin}, which failed to load: {status.failed[plugin]}"
    if plugin in status.loaded:
        return None
    if plugin in status.installed:
        return (f"{kind} {ref} belongs to plugin {plugin}, which is installed but not loaded "
                "(see --plugin, SRCORE_LOAD_PLUGINS, SRCORE_BLOCK_PLUGINS)")
    hint = f"did you mean {', '.join(close)}?" if close else "see `srcore plugins`"
    return f"{kind} {ref} belongs to plugin {plugin}, which is not installed ({hint})"


class Registry:
    """Components of one kind, addressed by ``plugin:name`` or a unique bare name."""

    def __init__(self, kind: Kind, status: PluginStatus | None = None) -> None:
        self.kind = kind
        self.status = status
        self._items: dict[str, Component] = {}

    def add(self, component: Component) -> None:
        if component.kind != self.kind:
            raise ComponentError(f"cannot add a {component.kind} to the {self.kind} registry")
        existing = self._items.get(component.id)
        if existing is not None:
            raise DuplicateComponentError(self.kind, component.id, existing.plugin, component.plugin)
        self._items[component.id] = component

    def remove_plugin(self, plugin: str) -> None:
        self._items = {k: v for k, v in self._items.items() if v.plugin != plugin}

    def get(self, ref: str) -> Component:
        if ref in self._items:
            return self._items[ref]
        if ":" not in ref:
            found = [c for c in self._items.values() if c.name == ref]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise AmbiguousComponentError(self.kind, ref, [c.id for c in found])
        names = list(self._items) + [c.name for c in self._items.values()]
        close = list(dict.fromkeys(difflib.get_close_matches(ref, names, n=3, cutoff=0.5)))
        why = _unavailable(self.kind, ref, self.status, close)
        if why is not None:
            raise UnavailableComponentError(self.kind, ref, why)
        err = UnknownComponentError(self.kind, ref, close, self._items)
        if self.status is not None and self.status.failed:  # a bare name may be a failed plugin's
            failed = ", ".join(sorted(self.status.failed))
            err.args = (f"{err.args[0]} Failed to load, so not searched: plugin(s) {failed} (see `srcore plugins`).",)
        raise err

    def __contains__(self, ref: object) -> bool:
        try:
            self.get(str(ref))
        except ComponentError:
            return False
        return True

    def __iter__(self) -> Iterator[Component]:
        return iter(sorted(self._items.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self._items)

    def ids(self) -> list[str]:
        return sorted(self._items)


class Registries:
    """One registry per kind, built fresh for each run from the loaded plugins."""

    def __init__(self, status: PluginStatus | None = None) -> None:
        self.status = status
        self.by_kind: dict[Kind, Registry] = {k: Registry(k, status) for k in KINDS}

    def __getitem__(self, kind: Kind) -> Registry:
        return self.by_kind[kind]

    @property
    def models(self) -> Registry:
        return self.by_kind["model"]

    @property
    def discriminators(self) -> Registry:
        return self.by_kind["discriminator"]

    @property
    def losses(self) -> Registry:
        return self.by_kind["loss"]

    @property
    def degradations(self) -> Registry:
        return self.by_kind["degradation"]

    @property
    def metrics(self) -> Registry:
        return self.by_kind["metric"]

    @property
    def recipes(self) -> Registry:
        return self.by_kind["recipe"]

    @property
    def steps(self) -> Registry:
        return self.by_kind["step"]

    def build(self, kind: Kind, ref: str, params: Mapping[str, Any] | BaseModel | None = None) -> Any:
        return self.by_kind[kind].get(ref).build(params)

    def remove_plugin(self, plugin: str) -> None:
        for reg in self.by_kind.values():
            reg.remove_plugin(plugin)

    def of_plugin(self, plugin: str) -> dict[str, list[str]]:
        return {
            kind: [c.id for c in reg if c.plugin == plugin]
            for kind, reg in self.by_kind.items()
            if any(c.plugin == plugin for c in reg)
        }


def _describe(builder: Any, description: str | None) -> str:
    if description:
        return description
    doc = getattr(builder, "__doc__", None) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


class Registrar:
    """The ``register`` callable handed to one plugin's registrar hook for one kind."""

    def __init__(self, kind: Kind, plugin: str, sink: Callable[[Component], None]) -> None:
        self.kind, self.plugin, self._sink = kind, plugin, sink

    def __call__(
        self,
        name: str,
        builder: Callable[[Any], Any],
        *,
        config: type[BaseModel] = NoConfig,
        description: str | None = None,
        **extra: Any,
    ) -> Component:
        if ":" in name:
            raise ComponentError(f"component name '{name}' must not contain ':' (plugin {self.plugin})")
        info = None
        if self.kind == "model":
            try:
                info = ModelInfo(**extra)
            except ValidationError as exc:
                raise ComponentError(f"model '{self.plugin}:{name}': bad model description: {exc}") from None
            extra = {}
        comp = Component(self.kind, name, self.plugin, builder, config, _describe(builder, description), info, extra)
        self._sink(comp)
        return comp


class RecipeRegistrar(Registrar):
    """``register(name, defaults=...)`` for recipes, ``register.step(...)`` for training steps."""

    def __init__(self, plugin: str, sink: Callable[[Component], None]) -> None:
        super().__init__("recipe", plugin, sink)

    def __call__(  # type: ignore[override]
        self, name: str, *, defaults: Mapping[str, Any], description: str = ""
    ) -> Component:
        if ":" in name:
            raise ComponentError(f"recipe name '{name}' must not contain ':' (plugin {self.plugin})")
        comp = Component("recipe", name, self.plugin, None, NoConfig, description, None, {"defaults": dict(defaults)})
        self._sink(comp)
        return comp

    def step(
        self,
        name: str,
        factory: Callable[..., Any],
        *,
        config: type[BaseModel] = NoConfig,
        description: str | None = None,
        uses: Sequence[str] | Callable[[Any], Sequence[str]] | None = None,
    ) -> Component:
        """A training step. ``uses``: the stage fields it reads (dotted: ``optim.lr``), or a function of
        its validated ``step_params`` giving them; ``srcore config show`` prints only those."""
        extra = {} if uses is None else {"uses": uses}
        comp = Component("step", name, self.plugin, factory, config, _describe(factory, description), extra=extra)
        self._sink(comp)
        return comp


@dataclass
class CheckpointMatch:
    """Answer of ``srcore_detect_checkpoint``: the model a state dict fits, in our key names."""

    model: str
    params: dict[str, Any]
    state_dict: dict[str, Any]
    note: str = ""


class CheckpointRefusal(CheckpointError):
    """Raised by ``srcore_detect_checkpoint`` for a file that is the plugin's but cannot be loaded
    (a truncated release, a variant it does not support): the message reaches the user as is,
    instead of "no installed plugin recognises this state dict"."""
