"""Checkpoints: writing a run's checkpoints and loading any supported weights file.

A run checkpoint is a folder ``<run>/checkpoints/step_000123/`` with

* ``<network>.safetensors`` per network (canonical keys: no ``module.``/``_orig_mod.``); the
  generator's file also carries ``model``/``params`` in its safetensors metadata, so a single
  file is self-describing; ``generator_ema.safetensors`` when EMA is on;
* ``training_state.pt``: optimizers, schedulers, grad scaler, step counters, data position and
  every RNG state (loaded with ``weights_only=True``: tensors and plain Python values only);
* ``meta.json``: resolved config, plugin names and versions, step, metrics.

It is written into a temporary folder and renamed into place, so a crash never leaves a folder
that looks complete. ``load_checkpoint`` is the one entry for inference: srcore run folders,
checkpoint folders, safetensors files, plain state dicts and the usual wrappers.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srcore.errors import CheckpointError
from srcore.registry import Component, ModelInfo
from srcore.weights_io import (
    check_finite,
    describe_load_error,
    mismatch,
    read_safetensors,
    read_torch_file,
    short_error,
)

CKPT_DIR = "checkpoints"
STEP_RE = re.compile(r"^step_(\d+)$")
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model_state_dict", "model", "generator", "netG", "net_g")
PREFIXES = ("module.", "_orig_mod.")


# -- state dict hygiene ------------------------------------------------------------------------

def unwrap(module: nn.Module) -> nn.Module:
    """The bare module under DDP (``.module``) and torch.compile (``._orig_mod``) wrappers."""
    while True:
        if isinstance(module, nn.parallel.DistributedDataParallel):
            module = module.module
        elif hasattr(module, "_orig_mod") and isinstance(module._orig_mod, nn.Module):
            module = module._orig_mod
        else:
            return module


def canonical_keys(state: Mapping[str, Any]) -> dict[str, Any]:
    """Strip ``module.`` / ``_orig_mod.`` prefixes wherever wrappers left them."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for p in PREFIXES:
                if key.startswith(p):
                    key, changed = key[len(p):], True
        out[key.replace("._orig_mod.", ".")] = value
    return out


def unwrap_state(obj: Any) -> dict[str, torch.Tensor]:
    """Find the state dict in a checkpoint object: ``params_ema`` beats ``params``, etc."""
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        for key in WRAPPER_KEYS:
            if key in obj and isinstance(obj[key], Mapping):
                obj = obj[key]
                break
        else:
            raise CheckpointError(
                f"no state dict found; top-level keys: {', '.join(map(str, list(obj)[:10]))}"
            )
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"expected a state dict, found a {type(obj).__name__}")
    return canonical_keys({k: v for k, v in obj.items() if isinstance(v, torch.Tensor)})


def _is_state_dict(obj: Mapping[str, Any]) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def state_dict_cpu(module: nn.Module) -> dict[str, torch.Tensor]:
    sd = unwrap(module).state_dict()
    return {k: v.detach().to("cpu").clone().contiguous() for k, v in canonical_keys(sd).items()}


# -- writing run checkpoints -----------------------------------------------------------------

def save_run_checkpoint(
    run_dir: Path,
    step: int,
    networks: Mapping[str, nn.Module],
    training_state: Mapping[str, Any],
    meta: Mapping[str, Any],
    model_id: str,
    model_params: Mapping[str, Any],
) -> Path:
    """Write ``checkpoints/step_<step>/`` atomically (temp folder, manifest, then rename).

    A failed write (a full disk, above all) removes the temp folder and raises one line; the
    checkpoints already there are untouched.
    """
    from safetensors.torch import save_file

    root = run_dir / CKPT_DIR
    final = root / f"step_{step:07d}"
    tmp = root / f".tmp_step_{step:07d}_{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        gen_meta = {"format": "srcore", "model": model_id, "params": json.dumps(dict(model_params))}
        for name, net in networks.items():
            md = gen_meta if name in ("generator", "generator_ema") else {"format": "srcore", "network": name}
            save_file(state_dict_cpu(net), str(tmp / f"{name}.safetensors"), metadata=md)
        torch.save(dict(training_state), tmp / "training_state.pt")
        (tmp / "meta.json").write_text(json.dumps(dict(meta), indent=2, default=str))
        write_manifest(tmp)
    except (OSError, RuntimeError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(f"cannot write checkpoint {final}: {write_failure(exc, root)}; "
                              "the earlier checkpoints are intact") from None
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def write_failure(exc: BaseException, where: Path) -> str:
    """What went wrong in words: torch reports a full disk as ``unexpected pos 76032 vs 75924``."""
    from srcore.outputs import is_disk_full

    if is_disk_full(exc):
        return "no space left on device"
    try:
        free = shutil.disk_usage(where if where.exists() else where.parent).free
    except OSError:
        free = None
    if free is not None and free < 1 << 20:
        return f"no space left on device ({free} bytes free)"
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]


# -- manifest: what a complete checkpoint holds ---------------------------------------------------

MANIFEST = "manifest.json"


def _sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> None:
    """``manifest.json``: size and sha256 of every file, so a truncated or replaced file is seen."""
    files = {p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
             for p in sorted(folder.iterdir()) if p.is_file() and p.name != MANIFEST}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, indent=1))


def verify_checkpoint(folder: Path, need: tuple[str, ...] = ("meta.json", "generator.safetensors")) -> str | None:
    """Why ``folder`` is not a complete, unaltered checkpoint; None when it is."""
    missing = [n for n in need if not (folder / n).is_file()]
    if missing:
        return f"{', '.join(missing)} missing"
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return None  # written before manifests existed: the files are read (and checked) on load
    try:
        files = json.loads(manifest.read_text())["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{MANIFEST} is unreadable"
    for name, want in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} missing"
        size = path.stat().st_size
        if size != want["size"]:
            return f"{name} has {size} bytes, {want['size']} were written"
        if _sha256(path) != want["sha256"]:
            return f"{name} differs from what was written (sha256 mismatch)"
    return None


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete step checkpoints of a run, oldest first."""
    root = Path(run_dir) / CKPT_DIR
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_RE.match(p.name) and (p / "meta.json").is_file()]
    return sorted(found, key=lambda p: int(STEP_RE.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def latest_resumable(run_dir: Path, warn: bool = True) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint whose files verify and whose training state loads, with that state.

    Newer ones that fail are skipped with a line saying which and why (a kill during a copy, a
    truncated file, a file replaced by hand).
    """
    import sys

    for ckpt in reversed(list_checkpoints(run_dir)):
        problem = verify_checkpoint(ckpt, need=("meta.json", "generator.safetensors", "training_state.pt"))
        if problem is None:
            try:
                return ckpt, load_training_state(ckpt)
            except CheckpointError as exc:
                problem = str(exc)
        if warn:
            print(f"warning: skipping checkpoint {ckpt}: {problem}", file=sys.stderr)
    return None


def prune_checkpoints(run_dir: Path, keep_last: int, protect: set[Path] = frozenset()) -> None:  # type: ignore[assignment]
    for path in list_checkpoints(run_dir)[:-keep_last]:
        if path.resolve() not in {p.resolve() for p in protect}:
            shutil.rmtree(path, ignore_errors=True)


def mark_best(run_dir: Path, ckpt: Path) -> Path:
    """Copy a checkpoint's weights and meta to ``checkpoints/best`` (atomically)."""
    root = Path(run_dir) / CKPT_DIR
    tmp = root / f".tmp_best_{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(ckpt, tmp, ignore=shutil.ignore_patterns("training_state.pt"))
    write_manifest(tmp)
    best = root / "best"
    old = root / f".old_best_{os.getpid()}"
    if best.exists():
        os.replace(best, old)
    os.replace(tmp, best)
    shutil.rmtree(old, ignore_errors=True)
    return best


def load_training_state(ckpt: Path) -> dict[str, Any]:
    """Optimizer, scheduler, counters and RNG states; tensors and plain values only (no code)."""
    from srcore.weights_io import read_torch_file

    path = ckpt / "training_state.pt"
    state = read_torch_file(path, "training state")
    if not isinstance(state, dict) or "global_step" not in state:
        raise CheckpointError(f"{path} is not a srcore training state")
    return state


def load_safetensors(path: Path, what: str = "checkpoint") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata); a damaged file is a one-line ``CheckpointError`` naming it."""
    return read_safetensors(path, what)


# -- loading for inference -----------------------------------------------------------------------

@dataclass
class LoadedModel:
    """A ready generator (eval mode, CPU) and what the core needs to feed it."""

    module: nn.Module
    component: Component
    info: ModelInfo
    params: dict[str, Any]
    config: dict[str, Any] | None = None
    source: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def scale(self) -> int:
        s = self.params.get("scale")
        return int(s) if s is not None else int(self.info.scales[0])


def resolve_checkpoint_path(path: str | Path) -> Path:
    """A run folder -> the checkpoint it stands for (``run_checkpoint``); ``<run>/last`` and ``<run>/best`` work."""
    return resolve_with_reason(path)[0]


def resolve_with_reason(path: str | Path) -> tuple[Path, str | None]:
    """``resolve_checkpoint_path`` and, for a run folder, which checkpoint it chose and why."""
    p = Path(path)
    choice = None
    if not p.exists() and p.name in ("last", "latest", "best") and (p.parent / CKPT_DIR).is_dir():
        choice, p = ("best" if p.name == "best" else "last"), p.parent
    if not p.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if p.is_dir() and (p / CKPT_DIR).is_dir():
        return run_checkpoint(p, choice)
    return p, None


def run_checkpoint(run_dir: Path, choice: str | None = None) -> tuple[Path, str]:
    """The checkpoint a run folder stands for: its recipe's ``val.select`` unless ``choice`` says.

    ``best``: best by ``val.best_metric`` within the final stage that validated (``checkpoints/best``);
    ``last``: the newest complete checkpoint, what GAN recipes select (their best PSNR would be the
    least perceptual model).
    """
    select = choice or _run_select(run_dir)
    best = run_dir / CKPT_DIR / "best"
    if select == "best" and (best / "meta.json").is_file():
        meta = json.loads((best / "meta.json").read_text())
        b = meta.get("best") or {}
        how = f"{b.get('label')} = {b.get('value', float('nan')):.4f}" if b else "validation"
        return best, f"best by {how} at step {meta.get('step')} ({_stage(meta)}); RUN/last for the last checkpoint"
    for ckpt in reversed(list_checkpoints(run_dir)):
        if verify_checkpoint(ckpt) is None:
            meta = json.loads((ckpt / "meta.json").read_text())
            why = "as the run's val.select = last" if select == "last" and choice is None else "no best checkpoint"
            if choice == "last":
                why = "as asked (RUN/last)"
            return ckpt, f"the last checkpoint, step {meta.get('step')} ({_stage(meta)}), {why}"
    raise CheckpointError(f"run folder {run_dir} has no complete checkpoint yet")


def _stage(meta: Mapping[str, Any]) -> str:
    stages = (meta.get("config") or {}).get("stages") or []
    i = meta.get("stage")
    name = stages[i].get("name") if isinstance(i, int) and i < len(stages) else None
    return f"stage '{name}'" if name else f"stage {i}"


def _run_select(run_dir: Path) -> str:
    try:
        cfg = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError):
        return "best"
    return str((cfg.get("val") or {}).get("select") or "best")


def _read_weights(p: Path, prefer_ema: bool) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any] | None]:
    """(state dict, srcore metadata or {}, run config or None) of a file or checkpoint folder."""
    if p.is_dir():
        meta_file = p / "meta.json"
        if not meta_file.is_file():
            raise CheckpointError(f"{p} is a folder but not a srcore checkpoint (no meta.json)")
        try:
            meta = json.loads(meta_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {meta_file}: {short_error(exc, 1)}") from None
        ema = p / "generator_ema.safetensors"
        sd, md = load_safetensors(ema if prefer_ema and ema.is_file() else p / "generator.safetensors")
        return sd, md, meta.get("config") if isinstance(meta, dict) else None
    if p.suffix == ".safetensors":
        sd, md = load_safetensors(p)
        return canonical_keys(sd), md, None
    obj = read_torch_file(p, "checkpoint")
    if isinstance(obj, Mapping) and not obj:
        raise CheckpointError(f"{p}: the file holds an empty dict, no weights")
    try:
        return unwrap_state(obj), {}, None
    except CheckpointError as exc:  # a list, a tensor, a dict without tensors: say which file
        raise CheckpointError(f"{p}: {exc}") from None


def load_checkpoint(
    path: str | Path,
    model: str | None = None,
    params: Mapping[str, Any] | None = None,
    manager: Any = None,
    prefer_ema: bool = True,
) -> LoadedModel:
    """Load any supported checkpoint into a ready model (eval mode, on CPU).

    The model comes from, in order: ``model``/``params`` given here (``--model``), the srcore
    metadata of the file, or the plugins' ``srcore_detect_checkpoint``. A named model whose keys
    do not fit still gets the plugins' key conversion when detection names the same model (an
    authors' release given with ``--model``). An unrecognised state dict gives an error listing
    the registered models whose keys fit best; weights holding NaN/inf are refused.
    """
    if manager is None:
        from srcore.plugins import load_plugins

        manager = load_plugins()
    registries = manager.registries
    p, why = resolve_with_reason(path)
    state, md, run_config = _read_weights(p, prefer_ema)
    check_finite(state, p, "checkpoint")
    notes: list[str] = [f"using {p}: {why}"] if why else []
    model_params: dict[str, Any] = dict(params or {})
    if model is None and md.get("model"):
        model = md["model"]
        model_params = {**_metadata_params(md, p), **model_params}
    elif model is None:
        found = manager.detect(state)
        if found.match is None:  # a refusal is the plugin's own one-line reason; a crash names the detector
            raise CheckpointError(f"{p}: {found.refusal}" if found.refusal else
                                  _quietly(_no_match_message, p, state, registries, found.error))
        match = found.match
        model, state = match.model, canonical_keys(match.state_dict)
        model_params = {**match.params, **model_params}
        notes.append(_detected_note(match))
    comp = _model_component(registries, model, p)
    module, cfg = _build(comp, model_params)
    problem = _fit(module, state)
    if problem is not None:
        match = manager.detect_checkpoint(state)
        if match is None or registries.models.get(match.model).id != comp.id:
            raise CheckpointError(f"{p} does not fit model {comp.id} with params {model_params}: "
                                  f"{problem}{_hint(comp)}")
        state, model_params = canonical_keys(match.state_dict), {**match.params, **model_params}
        module, cfg = _build(comp, model_params)
        problem = _fit(module, state)
        if problem is not None:
            raise CheckpointError(f"{p} does not fit model {comp.id} with params {model_params}: "
                                  f"{problem}{_hint(comp)}")
        notes.append(_detected_note(match).replace("detected as", "converted for", 1))
    module.eval()
    assert comp.info is not None
    if "scale" not in model_params and hasattr(cfg, "scale") and len(comp.info.scales) > 1:
        others = ", ".join(str(s) for s in comp.info.scales if s != cfg.scale)
        notes.append(f"{comp.id} serves scales {', '.join(map(str, comp.info.scales))} and the file does not say "
                     f"which: using x{cfg.scale}; -p scale=N chooses another ({others})")
    return LoadedModel(module, comp, comp.info, cfg.model_dump(mode="json"), run_config, str(p), notes)


def _model_component(registries: Any, model: str, p: Path) -> Component:
    """The registered model; for a checkpoint folder whose plugin is not installed, the
    distribution its meta.json recorded, so the user knows what to pip install."""
    from srcore.errors import UnknownComponentError
    from srcore.plugins import recorded_requirement

    try:
        return registries.models.get(model)
    except UnknownComponentError as exc:
        meta = _meta_or_empty(p / "meta.json") if p.is_dir() else {}
        need = recorded_requirement(model, meta.get("plugins") or {}, registries)
        if need is None:
            raise
        raise CheckpointError(f"{p}: {exc}; this run needs {need} (recorded in meta.json): pip install it") from None


def _meta_or_empty(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _build(comp: Component, params: Mapping[str, Any]) -> tuple[nn.Module, Any]:
    cfg = comp.parse_config(dict(params), where="model.params")
    return comp.builder(cfg), cfg  # type: ignore[misc]


def _fit(module: nn.Module, state: Mapping[str, torch.Tensor]) -> str | None:
    """Load ``state`` strictly; on failure, why in one line (the module is left unusable)."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        return mismatch(module, state) or describe_load_error(exc)
    return None


def _hint(comp: Component) -> str:
    """Which parameters a named model takes (its shapes depend on them): the fix for a mismatch."""
    fields = list(getattr(comp.config_cls, "model_fields", {}))
    return f" (set {comp.id}'s parameters with -p KEY=VALUE: {', '.join(fields)})" if fields else ""


def _detected_note(match: Any) -> str:
    return f"detected as {match.model}" + (f" ({match.note})" if match.note else "")


def _metadata_params(md: Mapping[str, str], p: Path) -> dict[str, Any]:
    try:
        out = json.loads(md.get("params") or "{}")
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p}: the 'params' metadata is not JSON ({exc.msg})") from None
    if not isinstance(out, dict):
        raise CheckpointError(f"{p}: the 'params' metadata is not a JSON object")
    return out


def _quietly(func: Any, *args: Any) -> Any:
    """Call ``func`` with logging, warnings, stdout and stderr off: ranking builds every model,
    and their build-time messages (GLEAN without a latent bank, torch deprecations, a plugin's
    print) are noise beside the one error line."""
    import contextlib
    import io
    import logging
    import warnings

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            return func(*args)
    finally:
        logging.disable(previous)


def _no_match_message(p: Path, state: Mapping[str, torch.Tensor], registries: Any, crashed: str | None = None) -> str:
    """Rank registered models by how many of the file's (key, shape) pairs they share: 90 % for
    keys and shapes, 10 % for the similarity of the key names, so a score is within [0, 100] %."""
    scores: list[tuple[float, str]] = []
    for comp in registries.models:
        try:
            with torch.device("meta"):
                net = comp.build({})
            theirs = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        except Exception:
            continue
        ours = {k: tuple(v.shape) for k, v in state.items()}
        same_key = len(ours.keys() & theirs.keys())
        same_shape = sum(1 for k in ours.keys() & theirs.keys() if ours[k] == theirs[k])
        union = len(ours.keys() | theirs.keys()) or 1
        name_sim = difflib.SequenceMatcher(None, " ".join(sorted(ours)), " ".join(sorted(theirs))).ratio()
        scores.append((0.9 * (same_key + same_shape) / (2 * union) + 0.1 * name_sim, comp.id))
    scores.sort(reverse=True)
    best = ", ".join(f"{cid} ({s:.0%} match)" for s, cid in scores[:3]) or "no models registered"
    keys = ", ".join(list(state)[:5])
    lead = f"{crashed}, and no other installed plugin" if crashed else "no installed plugin"
    return (
        f"{p}: {lead} recognises this state dict (first keys: {keys}). "
        f"Closest registered models: {best}. Name it with --model ID (and -p KEY=VALUE for its parameters)."
    )

