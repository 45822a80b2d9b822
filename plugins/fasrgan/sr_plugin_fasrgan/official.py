"""The authors' checkpoint format (old BasicSR ``B.sequential`` layout) <-> the core's key names.

Old BasicSR flattens nested ``nn.Sequential`` blocks, so the released RRDBNet is one sequential
``model``: ``model.0`` = conv_first; ``model.1.sub.{i}.RDB{j}.conv{k}.0`` = RRDB ``i``;
``model.1.sub.{nb}`` = trunk_conv; per x2 stage ``k`` (1-based) an Upsample, ``model.{3k}`` conv
and a LeakyReLU; then ``model.{3n+2}`` = HRconv and ``model.{3n+4}`` = conv_last. Fs-SRGAN's E
(``model_ex``) is ``model.0`` + ``model.1.sub.*`` RRDBs; with one RRDB ``B.sequential`` returns the
block itself, so its keys lose the index (``model.1.sub.RDB1.conv1.0.weight``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

_RDB = re.compile(r"^model\.1\.sub\.(?:(\d+)\.)?(RDB[123])\.(conv[1-5])\.0\.(weight|bias)$")
_SEQ = re.compile(r"^model\.(\d+)\.(weight|bias)$")
_TRUNK = re.compile(r"^model\.1\.sub\.(\d+)\.(weight|bias)$")


def strip_prefixes(state: Mapping[str, Any]) -> dict[str, Any]:
    """Drop DataParallel ``module.`` prefixes."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def is_official_rrdb(state: Mapping[str, Any]) -> bool:
    return "model.0.weight" in state and any(_RDB.match(k) for k in state)


def _n_blocks(state: Mapping[str, Any]) -> int:
    idx = {m.group(1) for k in state if (m := _RDB.match(k))}
    return 1 if idx == {None} else len(idx)


def official_to_core(state: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, int], str]:
    """Convert a released RRDBNet (``"rrdbnet"``) or Fs-SRGAN E (``"extractor"``) state dict.

    Returns (state dict in core names, architecture parameters read from shapes, kind).
    """
    state = strip_prefixes(state)
    out: dict[str, torch.Tensor] = {}
    for k, v in state.items():
        if m := _RDB.match(k):
            i = m.group(1) or "0"
            out[f"RRDB_trunk.{i}.{m.group(2)}.{m.group(3)}.{m.group(4)}"] = v
    nb = _n_blocks(state)
    seq = {int(m.group(1)) for k in state if (m := _SEQ.match(k))}
    trunk = [k for k in state if _TRUNK.match(k) and not _RDB.match(k)]
    w0 = state["model.0.weight"]
    conv1 = state[next(k for k in state if _RDB.match(k) and k.endswith("RDB1.conv1.0.weight"))]
    params = {"in_nc": int(w0.shape[1]), "nf": int(w0.shape[0]), "nb": nb, "gc": int(conv1.shape[0])}
    out["conv_first.weight"], out["conv_first.bias"] = state["model.0.weight"], state["model.0.bias"]
    if seq == {0} and not trunk:  # model_ex: no trunk conv, no upsampler
        return out, params, "extractor"
    for k in trunk:
        out[f"trunk_conv.{k.rsplit('.', 1)[1]}"] = state[k]
    last = max(seq)
    n_up = (last - 4) // 3
    if n_up < 1 or 3 * n_up + 4 != last:
        raise ValueError(f"unexpected RRDBNet layout: last sequential index {last}")
    mapping = {3 * k: f"upconv{k}" for k in range(1, n_up + 1)}
    mapping[3 * n_up + 2], mapping[last] = "HRconv", "conv_last"
    for idx, name in mapping.items():
        for p in ("weight", "bias"):
            out[f"{name}.{p}"] = state[f"model.{idx}.{p}"]
    params.update(out_nc=int(state[f"model.{last}.weight"].shape[0]), scale=2**n_up)
    return out, params, "rrdbnet"


def core_to_official(state: Mapping[str, torch.Tensor], extractor: bool = False) -> dict[str, torch.Tensor]:
    """Inverse of ``official_to_core`` (tests, and exporting weights for the authors' code)."""
    out: dict[str, torch.Tensor] = {}
    nb = len({k.split(".")[1] for k in state if k.startswith("RRDB_trunk.")})
    n_up = len({k.split(".")[0] for k in state if k.startswith("upconv")})
    names = {"conv_first": "model.0", "trunk_conv": f"model.1.sub.{nb}", "HRconv": f"model.{3 * n_up + 2}",
             "conv_last": f"model.{3 * n_up + 4}"}
    names.update({f"upconv{k}": f"model.{3 * k}" for k in range(1, n_up + 1)})
    for k, v in state.items():
        head, rest = k.split(".", 1)
        if head == "RRDB_trunk":
            i, rdb, conv, p = rest.split(".")
            block = "" if extractor and nb == 1 else f"{i}."
            out[f"model.1.sub.{block}{rdb}.{conv}.0.{p}"] = v
        else:
            out[f"{names[head]}.{rest}"] = v
    return out


def merge_fssrgan(e_state: Mapping[str, Any], g_state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The authors' two Fs-SRGAN files (``*_E.pth``, ``*_G.pth``) -> one ``fasrgan:fssrgan`` state dict."""
    e, _, e_kind = official_to_core(e_state)
    g, _, g_kind = official_to_core(g_state)
    if (e_kind, g_kind) != ("extractor", "rrdbnet"):
        raise ValueError(f"expected an E file and a G file, got {e_kind} and {g_kind}")
    return {**{f"E.{k}": v for k, v in e.items()}, **{f"G.{k}": v for k, v in g.items()}}


def _fssrgan_params(state: Mapping[str, Any]) -> dict[str, int]:
    """fasrgan:fssrgan config from a merged (core-named) state dict."""
    nb = len({k.split(".")[2] for k in state if k.startswith("G.RRDB_trunk.")})
    nb_e = len({k.split(".")[2] for k in state if k.startswith("E.RRDB_trunk.")})
    n_up = len({k.split(".")[1] for k in state if k.startswith("G.upconv")})
    w = state["E.conv_first.weight"]
    gc = int(state["E.RRDB_trunk.0.RDB1.conv1.weight"].shape[0])
    return {"nf": int(w.shape[0]), "nb_e": nb_e, "nb": nb, "gc": gc, "scale": 2**n_up}


def _has_sft(state: Mapping[str, Any]) -> bool:
    return any("SFT" in k or "CondNet" in k or "cond" in k.lower() for k in state)


def detect(state: Mapping[str, Any]) -> Any:
    """``srcore_detect_checkpoint``: the authors' RRDBNet (FASRGAN / old ESRGAN release), an mmsr
    ESRGAN RRDBNet, or a merged Fs-SRGAN (E + G) state dict; ``None`` for anything else."""
    from srcore.registry import CheckpointMatch

    state = strip_prefixes(state)
    if is_official_rrdb(state):
        converted, params, kind = official_to_core(state)
        if kind != "rrdbnet" or params["in_nc"] != 3:
            return None  # an Fs-SRGAN E or G alone: merge both with merge_fssrgan()
        return CheckpointMatch("fasrgan:rrdbnet", params, converted, note="official old-BasicSR RRDBNet keys")
    e_off = {k[2:]: v for k, v in state.items() if k.startswith("E.model.")}
    g_off = {k[2:]: v for k, v in state.items() if k.startswith("G.model.")}
    if e_off and g_off and is_official_rrdb(g_off):
        merged = merge_fssrgan(e_off, g_off)
        return CheckpointMatch("fasrgan:fssrgan", _fssrgan_params(merged), merged, note="official Fs-SRGAN E + G")
    if "E.conv_first.weight" in state and "G.conv_last.weight" in state:
        return CheckpointMatch("fasrgan:fssrgan", _fssrgan_params(state), dict(state), note="Fs-SRGAN E + G")
    if "conv_first.weight" in state and "RRDB_trunk.0.RDB1.conv1.weight" in state and not _has_sft(state):
        w0, conv1 = state["conv_first.weight"], state["RRDB_trunk.0.RDB1.conv1.weight"]
        nb = len({k.split(".")[1] for k in state if k.startswith("RRDB_trunk.")})
        n_up = len({k.split(".")[0] for k in state if k.startswith("upconv") and k.endswith(".weight")})
        if int(w0.shape[1]) != 3 or n_up < 1:
            return None
        params = {"in_nc": 3, "out_nc": int(state["conv_last.weight"].shape[0]), "nf": int(w0.shape[0]),
                  "nb": nb, "gc": int(conv1.shape[0]), "scale": 2**n_up}
        return CheckpointMatch("fasrgan:rrdbnet", params, dict(state), note="mmsr ESRGAN RRDBNet keys")
    return None
