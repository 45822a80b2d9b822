"""Reading weight files (``.pth`` through ``torch.load(weights_only=True)``, ``.safetensors``)
with one-line errors that name the file and what it was given as.

Every place that reads a weight file a user hands over (checkpoints, VGG19 / LPIPS / FID
backbones, GLEAN's StyleGAN2 bank, plugin release loaders) goes through here, so an empty,
truncated or random file, or a pickle that needs code, gives the same short message instead of
a multi-line torch or safetensors error.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srcore.errors import CheckpointError

if TYPE_CHECKING:
    import torch
    from torch import nn

_GLOBAL_RE = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_QUOTED_RE = re.compile(r'"([^"]+)"')
_SIZE_RE = re.compile(
    r"size mismatch for (\S+): copying a param with shape torch\.Size\((\[.*?\])\) from checkpoint, "
    r"the shape in current model is torch\.Size\((\[.*?\])\)"
)


def read_torch_file(path: str | Path, what: str = "weights") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; ``CheckpointError`` naming ``what``
    and the file when it cannot be read (code is never unpickled)."""
    import torch

    p = _existing_file(path, what)
    if p.stat().st_size == 0:
        raise CheckpointError(f"cannot read {what} {p}: the file is empty")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": the error below says it
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises EOFError, UnpicklingError, RuntimeError, ... for bad files
        raise CheckpointError(f"cannot read {what} {p}: {_torch_reason(exc)}") from None


def read_safetensors(path: str | Path, what: str = "weights") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; a one-line ``CheckpointError`` otherwise."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    p = _existing_file(path, what)
    if p.stat().st_size == 0:
        raise CheckpointError(f"{what}: not a valid safetensors file: {p} (the file is empty)")
    try:
        with safe_open(str(p), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(p)), meta
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = reason.removeprefix("Error while deserializing header: ")
        raise CheckpointError(f"{what}: not a valid safetensors file: {p} ({reason})") from None


def read_state_file(path: str | Path, what: str = "weights") -> Any:
    """A ``.safetensors`` file's tensors, else whatever ``read_torch_file`` returns."""
    if Path(path).suffix == ".safetensors":
        return read_safetensors(path, what)[0]
    return read_torch_file(path, what)


def read_mapping(path: str | Path, what: str = "weights") -> Mapping[str, Any]:
    """``read_state_file`` for files that must hold a dict (a state dict or a wrapper of one)."""
    obj = read_state_file(path, what)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{what} {path}: expected a state dict, found a {type(obj).__name__}")
    return obj


def first_non_finite(state: Mapping[str, Any]) -> str | None:
    """Name of the first floating tensor holding NaN or inf (one cheap reduction per tensor)."""
    import torch

    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return key
    return None


def check_finite(state: Mapping[str, Any], path: str | Path, what: str = "weights") -> None:
    """Refuse weights with NaN/inf: they give black images or ``nan`` metrics, never an error."""
    bad = first_non_finite(state)
    if bad is not None:
        raise CheckpointError(
            f"{what} {path}: tensor '{bad}' contains NaN or inf values (a diverged run?); refusing to use it"
        )


def mismatch(module: nn.Module, state: Mapping[str, Any]) -> str | None:
    """Why ``state`` does not load strictly into ``module``, in one line; None when it fits."""
    own = module.state_dict()
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    return _problems([k for k in own if k not in state], [k for k in state if k not in own], shapes)


def describe_load_error(exc: BaseException) -> str:
    """torch's ``load_state_dict`` error (every key listed, one per line) as one short line."""
    missing: list[str] = []
    unexpected: list[str] = []
    shapes: list[str] = []
    for line in (ln.strip() for ln in str(exc).splitlines()):
        if line.startswith("Missing key(s)"):
            missing += _QUOTED_RE.findall(line)
        elif line.startswith("Unexpected key(s)"):
            unexpected += _QUOTED_RE.findall(line)
        elif found := _SIZE_RE.match(line):
            key, theirs, ours = found.groups()
            shapes.append(f"{key} ({theirs.strip('[]')}) vs ({ours.strip('[]')})")
    return _problems(missing, unexpected, shapes) or short_error(exc, 2)[:240]


def _problems(missing: list[str], unexpected: list[str], shapes: list[str]) -> str | None:
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) (e.g. {', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        parts.append(f"{len(shapes)} shape mismatch(es) (file vs model: {'; '.join(shapes[:2])})")
    return ", ".join(parts) or None


def load_into(
    module: nn.Module, state: Mapping[str, Any], path: str | Path, what: str = "weights", target: str | None = None
) -> None:
    """``module.load_state_dict(state, strict=True)`` with a one-line error naming the file."""
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{what} {path}: expected a state dict, found a {type(state).__name__}")
    problem = mismatch(module, state)
    if problem is not None:
        raise CheckpointError(f"{what} {path} does not fit {target or type(module).__name__}: {problem}")
    module.load_state_dict(dict(state), strict=True)


def short_error(exc: BaseException, n: int = 6) -> str:
    """The first ``n`` non-empty lines of an exception's message, joined into one line."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return " ".join(lines[:n]) or type(exc).__name__


def _existing_file(path: str | Path, what: str) -> Path:
    p = Path(path).expanduser()
    if not p.exists():
        raise CheckpointError(f"{what}: file not found: {p}")
    if not p.is_file():
        raise CheckpointError(f"{what}: {p} is not a file")
    return p


def _torch_reason(exc: Exception) -> str:
    """A short cause for a failed ``torch.load``, without torch's multi-paragraph advice."""
    import pickle

    text = str(exc)
    found = _GLOBAL_RE.search(text)
    if found:
        return (
            f"it pickles Python objects ({found.group(1)}), which srcore never unpickles "
            "(torch.load weights_only=True); re-save it as a plain state dict"
        )
    if isinstance(exc, EOFError):
        return "the file ends too early (truncated?)"
    if isinstance(exc, pickle.UnpicklingError) or "invalid load key" in text:
        return "not a PyTorch weights file (pickle data that torch.load(weights_only=True) cannot read)"
    if "PytorchStreamReader" in text or "zip archive" in text:
        return "not a complete PyTorch weights file (damaged or truncated archive)"
    return short_error(exc, 1)[:200]
