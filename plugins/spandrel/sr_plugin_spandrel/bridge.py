"""spandrel <-> srcore: which architectures, how a model is rebuilt, how a file is detected.

A spandrel model is described by plain data, so srcore can rebuild it anywhere (a run config, a
checkpoint's metadata) without spandrel's detection: the class (``cls``, a name exported by
``spandrel.architectures.<Arch>``), its constructor arguments (``hyperparameters``, recorded by
spandrel's ``@store_hyperparameters``; classes and functions among them as
``{"callable": "module:qualname"}``), the scale and the input size requirements. The state dict
keys are the architecture's own (the authors' release names after spandrel's canonicalisation).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from torch import nn

from srcore.errors import CheckpointError, ConfigError
from srcore.registry import CheckpointMatch, StrictModel

SCALES = (1, 2, 3, 4, 8)

# Architectures of spandrel's registry that are not single-image SR in srcore's sense: inpainting
# (needs a mask), scale-1 restoration-only networks (denoise, deblur, JPEG, dehaze, low light),
# 512x512 face restoration, and IPT (multi-task, runs through its own call wrapper).
NOT_SR = frozenset({
    "LaMa", "DnCNN", "DRUNet", "FBCNN", "NAFNet", "KBNet", "SCUNet", "Uformer", "RetinexFormer",
    "HVICIDNet", "MixDehazeNet", "FFTformer", "GFPGAN", "RestoreFormer", "IPT",
})
# Modules whose classes and functions hyperparameters may name (never arbitrary imports).
_CALLABLE_MODULES = ("torch", "spandrel")


class SpandrelParams(StrictModel):
    """What rebuilds one spandrel network; detection fills every field from a state dict."""

    scale: int = Field(4, ge=1, description="Upscaling factor of the network (spandrel's descriptor scale).")
    cls: str | None = Field(
        None,
        description="Class exported by spandrel.architectures.<Arch> (RealCUGAN, PLKSR have several); "
        "default: the architecture's first class.",
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor arguments of the class, as spandrel reads them from a state dict; "
        "empty = the class's defaults.",
    )
    min_size: int = Field(0, ge=0, description="Smallest LR side the network accepts (input padded up to it).")
    size_multiple: int = Field(1, ge=1, description="LR sides are padded to a multiple of this.")
    square: bool = Field(False, description="The input is padded to a square.")
    init_from: str | None = Field(
        None,
        exclude=True,  # where training started, not what the network is: checkpoints never need the file
        description="A weights file (.pth/.safetensors/.ckpt spandrel reads) the network starts from, e.g. to "
        "fine-tune a release; with empty hyperparameters, they and the fields above are read from it.",
    )

    @model_validator(mode="after")
    def _fill_from_file(self) -> SpandrelParams:
        if self.init_from and not self.hyperparameters:
            desc = _read_file(self.init_from)
            for key, value in describe(desc).items():
                setattr(self, key, value)
        return self


# -- architectures ----------------------------------------------------------------------------

def sr_architectures() -> list[str]:
    """Ids of spandrel's built-in SR architectures, read from its package without importing it.

    spandrel names each built-in architecture's module after its id (``spandrel.architectures.
    SwinIR`` is ``SwinIR``); importing spandrel costs about a second, which ``srcore plugins`` and
    every command building the registries would otherwise pay.
    """
    spec = importlib.util.find_spec("spandrel")
    if spec is None or not spec.submodule_search_locations:
        return []
    root = Path(next(iter(spec.submodule_search_locations))) / "architectures"
    found = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    return [a for a in found if a not in NOT_SR]


def model_name(arch_id: str) -> str:
    return arch_id.lower()


def _arch_module(arch_id: str) -> Any:
    return importlib.import_module(f"spandrel.architectures.{arch_id}")


def _default_class(arch_id: str) -> str:
    mod = _arch_module(arch_id)
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if isinstance(obj, type) and issubclass(obj, nn.Module):
            return name
    raise ConfigError([f"spandrel.architectures.{arch_id} exports no network class"])


def class_name(arch_id: str, model: nn.Module) -> str:
    """The name under which ``spandrel.architectures.<arch_id>`` exports ``type(model)``."""
    mod = _arch_module(arch_id)
    for name in getattr(mod, "__all__", []) + sorted(vars(mod)):
        if getattr(mod, name, None) is type(model):
            return name
    return f"{type(model).__module__}:{type(model).__qualname__}"


def _resolve_class(arch_id: str, name: str) -> type[nn.Module]:
    obj = _import_callable(name) if ":" in name else getattr(_arch_module(arch_id), name, None)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ConfigError([f"model.params.cls: '{name}' is not a network class of spandrel's {arch_id}"])
    return obj


# -- hyperparameters as plain data -----------------------------------------------------------------

def encode(value: Any) -> Any:
    """JSON-able form of hyperparameters: tuples as lists, classes/functions by qualified name."""
    if isinstance(value, Mapping):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if callable(value) and hasattr(value, "__qualname__"):
        return {"callable": f"{value.__module__}:{value.__qualname__}"}
    return value


def decode(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {"callable"}:
            return _import_callable(str(value["callable"]))
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _import_callable(ref: str) -> Any:
    module, _, qualname = ref.partition(":")
    if module.split(".")[0] not in _CALLABLE_MODULES:
        raise ConfigError([f"hyperparameter callable '{ref}': only torch and spandrel names are allowed"])
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


# -- building -----------------------------------------------------------------------------------------

def build(arch_id: str, cfg: SpandrelParams) -> nn.Module:
    """The network of ``cfg`` (with the weights of ``init_from`` when given), padded as it needs."""
    cls = _resolve_class(arch_id, cfg.cls or _default_class(arch_id))
    try:
        module = cls(**decode(cfg.hyperparameters))
    except TypeError as exc:
        raise ConfigError([f"model.params.hyperparameters: {cls.__name__}: {exc}"]) from None
    if cfg.init_from:
        desc = _read_file(cfg.init_from)
        if desc.architecture.id != arch_id:
            raise CheckpointError(f"{cfg.init_from} is a spandrel {desc.architecture.id} file, not {arch_id}")
        module.load_state_dict(desc.model.state_dict())
    _add_size_hooks(module, cfg)
    return module


def _add_size_hooks(module: nn.Module, cfg: SpandrelParams) -> None:
    """Pad the input to the network's size requirements and crop the output back, as spandrel's
    ``ImageModelDescriptor.__call__`` does, and keep the image of networks returning a tuple.
    The network always gets a copy: some write into their input (spandrel's RCAN scales it in
    place), and srcore reuses the LR it passed (bicubic rows, chroma, self-ensemble)."""
    from spandrel import SizeRequirements
    from torch.nn import functional as F

    req = SizeRequirements(minimum=cfg.min_size, multiple_of=cfg.size_multiple, square=cfg.square)
    sizes: list[tuple[int, int]] = []

    def pad(_: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        h, w = x.shape[-2:]
        sizes.append((h, w))
        pw, ph = req.get_padding(w, h)
        if pw or ph:
            rw, rh = min(pw, w - 1), min(ph, h - 1)
            x = F.pad(F.pad(x, (0, rw, 0, rh), mode="reflect"), (0, pw - rw, 0, ph - rh), mode="replicate")
        else:
            x = x.clone()
        return (x, *args[1:])

    def crop(_: nn.Module, args: tuple[Any, ...], out: Any) -> Any:
        h, w = sizes.pop()
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out[..., : h * cfg.scale, : w * cfg.scale]

    module.register_forward_pre_hook(pad)
    module.register_forward_hook(crop)


# -- detection --------------------------------------------------------------------------------------------

def describe(desc: Any) -> dict[str, Any]:
    """``SpandrelParams`` fields of a loaded spandrel descriptor."""
    arch_id = str(desc.architecture.id)
    req = desc.size_requirements
    return {
        "scale": int(desc.scale),
        "cls": class_name(arch_id, desc.model),
        "hyperparameters": encode(getattr(desc.model, "hyperparameters", {})),
        "min_size": int(req.minimum),
        "size_multiple": int(req.multiple_of),
        "square": bool(req.square),
    }


def _load_descriptor(state: Mapping[str, Any]) -> Any:
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError

    try:
        desc = ModelLoader().load_from_state_dict(dict(state))
    except UnsupportedModelError:
        return None
    return desc if isinstance(desc, ImageModelDescriptor) else None


def detect(state: Mapping[str, Any]) -> CheckpointMatch | None:
    """A state dict spandrel recognises as one of the registered SR architectures (RGB in)."""
    desc = _load_descriptor(state)
    if desc is None or desc.architecture.id in NOT_SR or desc.input_channels != 3:
        return None
    arch_id = str(desc.architecture.id)
    note = f"spandrel {desc.architecture.name}" + (f" ({', '.join(desc.tags)})" if desc.tags else "")
    return CheckpointMatch(f"spandrel:{model_name(arch_id)}", describe(desc), dict(desc.model.state_dict()), note)


@lru_cache(maxsize=4)
def _read_cached(path: str, mtime: float) -> Any:
    from spandrel import ModelLoader, UnsupportedModelError

    try:
        return ModelLoader().load_from_file(path)
    except UnsupportedModelError:
        raise CheckpointError(f"{path}: spandrel does not recognise this file's architecture") from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None


def _read_file(path: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"init_from: weights file not found: {path}")
    return _read_cached(str(p.resolve()), p.stat().st_mtime)
