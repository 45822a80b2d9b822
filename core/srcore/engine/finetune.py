"""Start a network from a file: ``model.pretrained`` and ``stages[i].discriminator.pretrained``.

This is how ESRGAN is trained in practice: the GAN stage starts from a PSNR-oriented release.
Any file ``srcore.load_checkpoint`` reads works (a run folder, a checkpoint folder, a release
``.pth``, BasicSR's ``params_ema`` wrapper, safetensors); keys are converted to the model's own
names by the plugin that recognises the file when they do not fit as they are. ``strict: false``
loads what fits and lists what did not (missing, unexpected, other shapes) instead of refusing.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srcore.errors import CheckpointError


def read_pretrained(path: str, param_key: str | None) -> tuple[Path, dict[str, torch.Tensor]]:
    """(file, canonical state dict); ``param_key`` picks a wrapper entry (``params`` vs ``params_ema``)."""
    from srcore.engine.checkpoint import _read_weights, canonical_keys, resolve_with_reason, unwrap_state
    from srcore.weights_io import check_finite, read_torch_file

    p, _ = resolve_with_reason(path)
    if param_key and p.is_file() and p.suffix != ".safetensors":
        obj = read_torch_file(p, "pretrained weights")
        if not isinstance(obj, Mapping) or param_key not in obj:
            keys = ", ".join(map(str, list(obj)[:8])) if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"pretrained weights {p}: no entry '{param_key}' (param_key); it holds {keys}")
        state = canonical_keys(unwrap_state(obj[param_key]))
    else:
        state = _read_weights(p, prefer_ema=param_key != "params")[0]
    check_finite(state, p, "pretrained weights")
    return p, state


def load_pretrained(module: nn.Module, ref: Any, where: str, manager: Any = None) -> str:
    """Load ``ref.pretrained`` into ``module``; the line to print saying what was loaded."""
    pre = ref.pretrained
    p, state = read_pretrained(pre.path, pre.param_key)
    own = module.state_dict()
    if not _fits(own, state) and manager is not None:
        match = manager.detect_checkpoint(state)
        if match is not None and manager.registries.models.get(match.model).id == manager.registries.models.get(
                ref.id).id:
            from srcore.engine.checkpoint import canonical_keys

            state = canonical_keys(match.state_dict)
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if (missing or unexpected or shapes) and pre.strict:
        raise CheckpointError(f"{where}.pretrained: {p} does not fit {ref.id}: {_listing(missing, unexpected, shapes)}"
                              f"; set {where}.pretrained.strict=false to load what fits")
    fitting = {k: v for k, v in state.items() if k in own and k not in shapes}
    module.load_state_dict(fitting, strict=False)
    text = f"{where}.pretrained: {len(fitting)} of {len(own)} tensors from {p}"
    return text + (f" ({_listing(missing, unexpected, shapes)})" if missing or unexpected or shapes else "")


def _fits(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> bool:
    return own.keys() == state.keys() and all(tuple(own[k].shape) == tuple(state[k].shape) for k in own)


def _listing(missing: list[str], unexpected: list[str], shapes: list[str]) -> str:
    parts = [f"{len(v)} {name} (e.g. {', '.join(v[:3])})"
             for name, v in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)) if v]
    return "; ".join(parts)
