"""Run configuration: recipe defaults <- YAML/JSON/TOML files <- ``--set`` overrides, validated once.

The run configuration is data (frozen pydantic models); run-time state (rank, device, step)
lives in the engine's context. Component parameters (``model.params``, ``losses[i].params``...)
are validated against the component's own config class in the same pass, so one run of
``validate_run_config`` reports every problem with its field path.
"""

from __future__ import annotations

import copy
import json
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from srcore.errors import ConfigError, SrcoreError
from srcore.registry import Kind, Registries, format_loc


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentRef(Section):
    """A registered component by id, with its parameters."""

    id: str = Field(description="Component id, 'plugin:name' or a unique bare name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Options of the component.")


class PretrainedConfig(Section):
    """Weights a network starts from (fine-tuning): any file ``srcore.load_checkpoint`` reads."""

    path: str = Field(description="A run folder, checkpoint folder, release .pth or .safetensors file.")
    param_key: str | None = Field(None, description="Entry of a wrapped .pth to use, e.g. 'params' or 'params_ema' "
                                  "(default: params_ema, then params, state_dict ...).")
    strict: bool = Field(True, description="Refuse missing, unexpected or reshaped tensors; false loads what fits "
                         "and lists the rest.")


class TrainedRef(ComponentRef):
    """A network the run trains: a component, optionally started from pretrained weights."""

    pretrained: PretrainedConfig | None = Field(None, description="Start from these weights (not on resume).")


class NetRef(ComponentRef):
    kind: Literal["model", "discriminator"] = Field("model", description="Registry the id is looked up in.")


class LossTerm(ComponentRef):
    weight: float = Field(1.0, description="Multiplier of this term in the total loss.")
    label: str | None = Field(None, description="Name used in logs; defaults to the component name.")


class OptimConfig(Section):
    type: Literal["adam", "adamw"] = "adam"
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    eps: float = 1e-8


class ScheduleConfig(Section):
    type: Literal["constant", "multistep", "cosine", "linear"] = Field(
        "constant", description="'linear': constant until decay_start, then linear down to min_lr at the stage's end."
    )
    milestones: list[int] = Field(default_factory=list, description="Steps (multistep) at which lr *= gamma.")
    gamma: float = 0.5
    warmup_steps: int = Field(0, ge=0, description="Linear warm-up from 0 over this many steps.")
    min_lr: float = Field(0.0, description="Floor of the cosine and linear schedules.")
    decay_start: int = Field(0, ge=0, description="Step of the stage where the linear decay starts.")


class GanConfig(Section):
    type: Literal["vanilla", "lsgan", "ragan", "hinge", "wgan"] = Field(
        "ragan", description="GAN loss; 'ragan' is the relativistic average GAN of ESRGAN."
    )
    weight: float = Field(5e-3, description="Weight of the adversarial term in the generator loss.")
    d_steps: int = Field(1, ge=1, description="Discriminator updates per generator update.")
    d_start: int = Field(0, ge=0, description="Step of the stage from which the generator sees D.")
    input: Literal["rgb", "highpass"] = Field("rgb", description="What D sees (SRResCGAN: high-pass).")


class StageConfig(Section):
    """One training stage (e.g. PSNR pre-training, then GAN); the generator carries over."""

    name: str = "main"
    steps: int = Field(1000, ge=1, description="Optimizer steps of this stage.")
    step: str = Field(
        "supervised",
        description="Training step: 'supervised', 'adversarial' or a step id registered by a plugin.",
    )
    step_params: dict[str, Any] = Field(default_factory=dict, description="Options of a plugin's step.")
    losses: list[LossTerm] = Field(default_factory=lambda: [LossTerm(id="core:l1")])
    optim: OptimConfig = Field(default_factory=OptimConfig, description="Generator optimizer.")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)
    discriminator: TrainedRef | None = None
    gan: GanConfig = Field(default_factory=GanConfig)
    optim_d: OptimConfig = Field(default_factory=OptimConfig)
    schedule_d: ScheduleConfig = Field(default_factory=ScheduleConfig)
    grad_clip: float | None = Field(None, gt=0, description="Clip the gradient norm to this value.")
    accumulate: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    ema_decay: float | None = Field(None, gt=0, lt=1, description="EMA of the generator (e.g. 0.999).")


class TrainDataConfig(Section):
    hr: str = Field(
        "builtin:skimage",
        description="HR source: a folder, an HDF5 patch file, a named set under data.root, "
        "or 'builtin:skimage' (scikit-image's sample photographs).",
    )
    lr: str | None = Field(
        None, description="Paired LR folder (matched by file stem); else LR is made by `degradation`."
    )
    lr_real: str | None = Field(None, description="Unpaired real-LR domain folder (GFLmser, DSGAN).")
    degradation: ComponentRef = Field(
        default_factory=lambda: ComponentRef(id="core:bicubic"),
        description="HR -> LR when no LR is given; its scale is set from model.params.scale.",
    )
    patch_size: int = Field(96, ge=4, description="HR patch size (LR patch = patch_size / scale).")
    batch_size: int = Field(16, ge=1)
    num_workers: int = Field(0, ge=0)
    flip: bool = True
    rot90: bool = True
    repeat: int = Field(1, ge=1, description="Passes over the image list per epoch (small sets).")
    shard_by_rank: bool = Field(
        False, description="With a shard directory (data prepare --shards) under DDP: each rank reads only "
        "shards rank, rank + world, ... (every patch once per epoch across the ranks).",
    )


class PairedSet(Section):
    """A test set with its own LR images (the seed collection's test_HR_dir / test_LR_dir)."""

    hr: str
    lr: str
    name: str | None = Field(None, description="Label in logs; default: the HR folder's name.")


class ValConfig(Section):
    sets: list[str | PairedSet] = Field(
        default_factory=list, description="Named sets or folders validated on (LR made by MATLAB bicubic), or "
        "{hr: DIR, lr: DIR} pairs with their own LR, matched by name (a_HR/a_LR, a_SRF_4_HR/_LR, ax4)."
    )
    metrics: list[ComponentRef] = Field(
        default_factory=lambda: [
            ComponentRef(id="core:psnr", params={"y_channel": True}),
            ComponentRef(id="core:ssim", params={"y_channel": True}),
        ]
    )
    every: int = Field(1000, ge=1, description="Validate every N steps (and at the end).")
    max_images: int | None = Field(None, ge=1)
    best_metric: str | None = Field(None, description="Metric label that picks the best checkpoint.")
    condition: list[float] = Field(default_factory=list, description="Condition values for conditional models.")
    select: Literal["best", "last"] = Field(
        "best",
        description="Which checkpoint the run folder stands for in upscale/eval/export: 'best' by best_metric "
        "within the final stage, or the 'last' one (GAN recipes: PSNR would pick the least perceptual model).",
    )


class DataConfig(Section):
    root: str | None = Field(None, description="Root of named sets (e.g. ../shared/data); env SRCORE_DATA_ROOT.")
    train: TrainDataConfig = Field(default_factory=TrainDataConfig)


class WandbConfig(Section):
    project: str = Field(description="W&B project.")
    entity: str | None = None
    name: str | None = Field(None, description="W&B run name; default: the run folder's name.")
    mode: Literal["online", "offline", "disabled"] = Field(
        "online", description="'offline' writes under <run>/wandb for a later `wandb sync`."
    )
    tags: list[str] = Field(default_factory=list)


class TrainConfig(Section):
    seed: int = 0
    device: str = Field("auto", description="'auto' (CUDA if present), 'cpu', 'cuda', 'cuda:1'.")
    amp: Literal["off", "bf16", "fp16"] = Field("off", description="Mixed precision; applies on CUDA only.")
    channels_last: bool = False
    compile: bool = False
    log_every: int = Field(10, ge=1)
    save_every: int = Field(1000, ge=1)
    keep_last: int = Field(2, ge=1)
    tensorboard: bool = False
    wandb: WandbConfig | None = Field(None, description="Log to Weights & Biases too (pip install 'srcore[wandb]').")
    samples: int = Field(4, ge=0, description="Images in the PNG sample grid at each validation.")
    preflight: bool = Field(
        True, description="Build every stage and run one batch through it before step 1 (see docs/training.md)."
    )


class RunConfig(Section):
    name: str = Field("run", description="Run name; the run folder is out_dir/name.")
    out_dir: str = "runs"
    recipe: str | None = Field(None, description="Recipe these defaults came from (informational).")
    plugins: list[str] = Field(default_factory=list, description="Plugins the run needs.")
    model: TrainedRef
    nets: dict[str, NetRef] = Field(
        default_factory=dict, description="Further networks for plugin steps (by role)."
    )
    data: DataConfig = Field(default_factory=DataConfig)
    stages: list[StageConfig] = Field(default_factory=lambda: [StageConfig()], min_length=1)
    train: TrainConfig = Field(default_factory=TrainConfig)
    val: ValConfig = Field(default_factory=ValConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.name


# -- merging and overrides ------------------------------------------------------------------

REPLACE_KEY = "_replace"


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any], replace: Iterable[str] = ()) -> dict[str, Any]:
    """Merge ``over`` into ``base`` (see docs/training.md, "How a file merges with the recipe").

    Mappings merge key by key. Lists of mappings (stages, losses, metrics) merge item by item by
    position, so a file that sets ``stages: [{steps: 10}]`` keeps the recipe's stage and changes
    its length only; an item naming another ``id`` than the recipe's item replaces it, items past
    the recipe's end are added, the recipe's items past the file's end stay. Other lists and
    scalars replace. Dotted paths in ``replace`` (a file's ``_replace`` list) replace whole.
    """
    return _merge(base, over, set(replace), "")


def _merge(base: Any, over: Any, replace: set[str], path: str) -> Any:
    if path in replace:
        return copy.deepcopy(over)
    if isinstance(base, Mapping) and isinstance(over, Mapping):
        out = copy.deepcopy(dict(base))
        for key, value in over.items():
            sub = f"{path}.{key}" if path else str(key)
            out[key] = _merge(out[key], value, replace, sub) if key in out else copy.deepcopy(value)
        return out
    if _is_list_of_mappings(base) and _is_list_of_mappings(over):
        merged = [
            copy.deepcopy(o) if _other_component(b, o) else _merge(b, o, replace, f"{path}.{i}")
            for i, (b, o) in enumerate(zip(base, over))
        ]
        longer = over if len(over) > len(base) else base
        return merged + copy.deepcopy(list(longer[len(merged):]))
    return copy.deepcopy(over)


def _is_list_of_mappings(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _other_component(base: Mapping[str, Any], over: Mapping[str, Any]) -> bool:
    """Items naming different components: the file's item replaces, the params would not fit."""
    return "id" in over and over["id"] != base.get("id")


_FORMATS = {".json": "JSON", ".toml": "TOML"}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML, JSON (``.json``) or TOML (``.toml``: neosr / traiNNer-redux style) config file."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise SrcoreError(f"cannot read config file {p}: {exc.strerror}") from None
    fmt = _FORMATS.get(p.suffix.lower(), "YAML")
    toml = _toml() if fmt == "TOML" else None
    try:
        data = json.loads(text) if fmt == "JSON" else toml.loads(text) if toml else yaml.safe_load(text)
    except (json.JSONDecodeError, ValueError, yaml.YAMLError) as exc:  # TOMLDecodeError is a ValueError
        raise ConfigError([f"not valid {fmt}: {exc}"], source=str(p)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        hint = " (a TOML file needs the .toml suffix)" if fmt == "YAML" and _looks_like_toml(text) else ""
        raise ConfigError([f"the top level must be a mapping of sections{hint}"], source=str(p))
    return data


def _toml() -> Any:
    """``tomllib`` (Python 3.11+), else the ``tomli`` backport."""
    try:
        import tomllib
    except ModuleNotFoundError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            raise SrcoreError("TOML config files need Python 3.11+ (tomllib) or `pip install tomli`") from None
    return tomllib


def _looks_like_toml(text: str) -> bool:
    try:
        return bool(_toml().loads(text))
    except (ValueError, SrcoreError):
        return False


def merge_config_file(data: Mapping[str, Any], path: str | Path) -> dict[str, Any]:
    """``data`` with the file merged over it; the file's ``_replace`` names lists it replaces whole."""
    over = read_config_file(path)
    replace = over.pop(REPLACE_KEY, [])
    if not isinstance(replace, list) or not all(isinstance(r, str) for r in replace):
        raise ConfigError([f"{REPLACE_KEY}: expected a list of dotted keys, e.g. [stages]"], source=str(path))
    return deep_merge(data, over, replace)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b.0.c=value`` -> (["a", "b", "0", "c"], value parsed as a YAML scalar/list, no eval)."""
    if "=" not in text:
        raise ConfigError([f"--set {text!r}: expected section.key=value"])
    key, raw = text.split("=", 1)
    path = [p for p in key.strip().split(".") if p]
    if not path:
        raise ConfigError([f"--set {text!r}: empty key"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, _RawStr(raw, value)


class _RawStr:
    """A parsed override that remembers its text, so string-typed fields get the text back."""

    def __init__(self, raw: str, value: Any) -> None:
        self.raw, self.value = raw, value


def apply_overrides(data: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    out = copy.deepcopy(dict(data))
    for text in overrides:
        path, val = parse_override(text)
        node: Any = out
        model: Any = RunConfig
        for part in path[:-1]:
            if isinstance(node, list):
                node = node[_index(part, node, text)]
                model = _list_item_type(model)
                continue
            if not isinstance(node, dict):
                break
            field = _field(model, part)
            if part not in node or node[part] is None:
                # a section the data does not have yet: start from its default (e.g. the one
                # default stage, so that stages.0.steps=N works without a recipe)
                node[part] = _default_of(field)
            node = node[part]
            model = _unwrap(field.annotation) if field is not None else None
        last = path[-1]
        if isinstance(node, list):
            node[_index(last, node, text)] = val
        elif isinstance(node, dict):
            node[last] = val
        else:
            raise ConfigError([f"--set {text}: '{'.'.join(path[:-1])}' is not a section"])
    return _resolve_raw(out, RunConfig)


def _field(model: Any, name: str) -> Any:
    fields = getattr(model, "model_fields", None) if isinstance(model, type) else None
    return fields.get(name) if fields else None


def _default_of(field: Any) -> Any:
    """The field's default as plain data, or an empty section when there is none."""
    if field is None:
        return {}
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is not None and not isinstance(field.default, type(...)):
        value = field.default
    else:
        return {}
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
    return copy.deepcopy(value) if isinstance(value, (dict, list)) else {}


def _index(part: str, node: list[Any], text: str) -> int:
    if not part.lstrip("-").isdigit() or not -len(node) <= int(part) < len(node):
        raise ConfigError([f"--set {text}: '{part}' is not an index of a list of {len(node)} item(s)"])
    return int(part)


def _resolve_raw(data: Any, model: Any) -> Any:
    """Replace ``_RawStr`` with the YAML value, or the raw text where the field is a string."""
    if isinstance(data, _RawStr):
        return data.raw if _is_str_field(model) else data.value
    if isinstance(data, dict):
        fields = getattr(model, "model_fields", None) if isinstance(model, type) else None
        out = {}
        for k, v in data.items():
            sub = None
            if fields and k in fields:
                sub = _unwrap(fields[k].annotation)
            out[k] = _resolve_raw(v, sub)
        return out
    if isinstance(data, list):
        item = _list_item_type(model)
        return [_resolve_raw(v, item) for v in data]
    return data


def _unwrap(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _list_item_type(annotation: Any) -> Any:
    if typing.get_origin(annotation) is list:
        (arg,) = typing.get_args(annotation) or (None,)
        return arg
    return None


def _is_str_field(annotation: Any) -> bool:
    return annotation is str


# -- validation -------------------------------------------------------------------------------

def _get(data: Any, *path: str | int) -> Any:
    """``data[path...]`` on raw (unvalidated) data, or None where the shape does not fit."""
    for key in path:
        if isinstance(key, int):
            data = data[key] if isinstance(data, list) and key < len(data) else None
        else:
            data = data.get(key) if isinstance(data, Mapping) else None
    return data


def _raw_component_refs(data: Mapping[str, Any]) -> list[tuple[str, Kind, Any]]:
    """Every component reference in raw config data, with its field path and registry kind."""
    refs: list[tuple[str, Kind, Any]] = [("model", "model", _get(data, "model"))]
    refs.append(("data.train.degradation", "degradation", _get(data, "data", "train", "degradation")))
    nets = _get(data, "nets")
    for role, ref in nets.items() if isinstance(nets, Mapping) else []:
        kind = _get(ref, "kind") if _get(ref, "kind") in ("model", "discriminator") else "model"
        refs.append((f"nets.{role}", kind, ref))
    stages = _get(data, "stages")
    for i, st in enumerate(stages if isinstance(stages, list) else []):
        losses = _get(st, "losses")
        for j, term in enumerate(losses if isinstance(losses, list) else []):
            refs.append((f"stages.{i}.losses.{j}", "loss", term))
        refs.append((f"stages.{i}.discriminator", "discriminator", _get(st, "discriminator")))
        step = _get(st, "step") or "supervised"
        refs.append((f"stages.{i}", "step", {"id": step, "params": _get(st, "step_params") or {}}))
    metrics = _get(data, "val", "metrics")
    for j, m in enumerate(metrics if isinstance(metrics, list) else []):
        refs.append((f"val.metrics.{j}", "metric", m))
    return [r for r in refs if isinstance(_get(r[2], "id"), str)]


def _check_component(registries: Registries, kind: Kind, ref: Mapping[str, Any], where: str) -> list[str]:
    from srcore.errors import ComponentError

    id_field, params_field = ("step", "step_params") if kind == "step" else ("id", "params")
    try:
        comp = registries[kind].get(ref["id"])
    except ComponentError as exc:
        return [f"{where}.{id_field}: {exc}"]
    params = ref.get("params") or {}
    if not isinstance(params, Mapping):
        return []  # the structural validation reports it
    try:
        comp.parse_config(params, where=f"{where}.{params_field}")
    except ConfigError as exc:
        return exc.problems
    return []


def validate_run_config(
    data: Mapping[str, Any], registries: Registries | None = None, source: str | None = None
) -> RunConfig:
    """Validate the whole configuration in one pass; raise ``ConfigError`` listing every problem
    (structure and types of the sections, every component id and its parameters)."""
    problems: list[str] = []
    cfg = None
    try:
        cfg = RunConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems.extend(f"{format_loc(e['loc'])}: {e['msg']}" for e in exc.errors())
    if registries is not None:
        for where, kind, ref in _raw_component_refs(data):
            problems.extend(_check_component(registries, kind, ref, where))
    if problems or cfg is None:
        raise ConfigError(problems, source=source)
    return cfg


def resolve_run_config(
    registries: Registries,
    recipe: str | None = None,
    files: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
) -> RunConfig:
    """Compose recipe defaults, config files and ``--set`` overrides, then validate once."""
    data: dict[str, Any] = {}
    source = None
    if recipe:
        comp = registries.recipes.get(recipe)
        data = deep_merge(comp.extra["defaults"], {"recipe": comp.id})
        source = f"recipe {comp.id}"
    for f in files:
        data = merge_config_file(data, f)
        source = str(f)
    if overrides:
        data = apply_overrides(data, overrides)
        source = "--set overrides" if source is None else f"{source} + --set overrides"
    if "model" not in data:
        raise ConfigError(["model: required (give --recipe, a config file with a model section, or --set model.id=ID)"])
    return validate_run_config(data, registries, source=source)


ENGINE_STAGE_FIELDS = ("name", "steps", "step", "step_params", "schedule", "grad_clip", "accumulate", "ema_decay")


def stage_view(registries: Registries, stage: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a stage its step reads (``uses`` of the step's registration) and the engine's own.

    ``srcore config show`` prints this, so an SGD step's stage does not show an unused
    ``optim.type: adam`` or a PSNR stage a discriminator section.
    """
    comp = registries.steps.get(stage.get("step") or "supervised")
    uses = comp.extra.get("uses")
    if uses is None:
        return dict(stage)
    if callable(uses):
        uses = uses(comp.parse_config(stage.get("step_params") or {}, where="step_params"))
    out: dict[str, Any] = {}
    for key, value in stage.items():
        wanted = [u.split(".", 1)[1] for u in uses if u.startswith(key + ".")]
        if key in ENGINE_STAGE_FIELDS or key in uses:
            out[key] = value
        elif wanted and isinstance(value, Mapping):
            out[key] = {k: v for k, v in value.items() if k in wanted}
    return out


ABSENT = "(absent)"  # a key one side of ``changed_fields`` does not have


def changed_fields(base: Any, new: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """(dotted key, old, new) for every leaf that differs; lists are compared item by item."""
    if isinstance(base, Mapping) and isinstance(new, Mapping):
        for key in [*base, *(k for k in new if k not in base)]:
            sub = f"{path}.{key}" if path else str(key)
            yield from changed_fields(base.get(key, ABSENT), new.get(key, ABSENT), sub)
    elif isinstance(base, list) and isinstance(new, list) and base and new:
        for i in range(max(len(base), len(new))):
            old = base[i] if i < len(base) else ABSENT
            yield from changed_fields(old, new[i] if i < len(new) else ABSENT, f"{path}.{i}")
    elif base != new:
        yield path, base, new


def config_to_dict(cfg: BaseModel) -> dict[str, Any]:
    return cfg.model_dump(mode="json")


def run_config_schema() -> dict[str, Any]:
    return RunConfig.model_json_schema()
