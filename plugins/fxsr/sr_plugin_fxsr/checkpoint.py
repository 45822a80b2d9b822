"""Recognise and load FxSR's released weights (``FxSR_{PD,DS}_{4x,8x}.pth``, BasicSR/mmsr layout).

The released files are plain state dicts with the key names of ``FxSRNet`` (spec 1.4), possibly
behind a ``module.`` prefix (DataParallel). The architecture options are read back from tensor
shapes: nf from ``conv_first``, gc from ``RDB1.conv1``, nb from the trunk indices, the scale from
the number of ``upconv`` layers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from srcore.errors import CheckpointError
from srcore.registry import CheckpointMatch
from srcore.weights_io import read_torch_file

MODEL_ID = "fxsr:fxsr"
_TRUNK = re.compile(r"^RRDB_trunk\.(\d+)\.")
_UPCONV = re.compile(r"^upconv(\d+)\.weight$")


def strip_prefix(state_dict: Mapping[str, Any], prefix: str = "module.") -> dict[str, Any]:
    """Drop a DataParallel/DDP prefix from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def is_fxsr_state_dict(state_dict: Mapping[str, Any]) -> bool:
    """FxSR's keys: a CondNet branch and SFT layers inside the RRDB trunk."""
    has_cond = "CondNet.0.weight" in state_dict and "CondNet.2.weight" in state_dict
    return has_cond and any(".sft0.SFT_scale_conv0." in k for k in state_dict)


def infer_params(state_dict: Mapping[str, Any]) -> dict[str, int]:
    """``FxSRConfig`` fields from the tensor shapes of an FxSR state dict (canonical keys)."""
    try:
        nf = int(state_dict["conv_first.weight"].shape[0])
        gc = int(state_dict["RRDB_trunk.0.RDB1.conv1.weight"].shape[0])
    except KeyError as exc:
        raise CheckpointError(f"FxSR state dict lacks {exc.args[0]!r}") from None
    nb = 1 + max(int(m.group(1)) for k in state_dict if (m := _TRUNK.match(k)))
    n_up = sum(1 for k in state_dict if _UPCONV.match(k))
    return {"scale": 2**n_up, "nf": nf, "nb": nb, "gc": gc}


def detect(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    """``srcore_detect_checkpoint`` answer for FxSR state dicts, ``None`` for anything else."""
    sd = strip_prefix(state_dict)
    if not is_fxsr_state_dict(sd):
        return None
    params = infer_params(sd)
    if params["scale"] not in (4, 8):
        raise CheckpointError(f"FxSR state dict has {params['scale']}x upsampling; FxSR supports x4 and x8")
    return CheckpointMatch(model=MODEL_ID, params=params, state_dict=sd, note="FxSR release (BasicSR/mmsr key names)")


def load_official(path: str | Path) -> Any:
    """Build an ``FxSRNet`` from a released ``.pth`` (no unpickling of code: weights_only)."""

    from sr_plugin_fxsr.model import FxSRConfig, build_fxsr

    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"FxSR checkpoint not found: {p}")
    raw = read_torch_file(p, "FxSR checkpoint")
    for wrapper in ("params_ema", "params", "state_dict"):
        if isinstance(raw, Mapping) and wrapper in raw and isinstance(raw[wrapper], Mapping):
            raw = raw[wrapper]
            break
    match = detect(raw) if isinstance(raw, Mapping) else None
    if match is None:
        raise CheckpointError(f"{p} is not an FxSR state dict (no CondNet/SFT keys)")
    model = build_fxsr(FxSRConfig(**match.params))
    model.load_state_dict(match.state_dict, strict=True)
    return model.eval()
