"""Recognise released state dicts of this family from key names and tensor shapes, and rename
their keys onto this plugin's modules (``srcore_detect_checkpoint``).

Layouts known: yjn870/FSRCNN-pytorch (``first_part``/``mid_part``/``last_part``),
twtygqyy/pytorch-vdsr (``input``/``residual_layer.i.conv``/``output``), twtygqyy/pytorch-LapSRN
(``conv_input``/``convt_F{k}.0.cov_block.j``/``convt_R{k}``/``convt_I{k}``) and the
yjn870/Dekelv ESPCN-pytorch layout (``first_part.{0,2}``/``last_part.0``). Each rename is a table
from release names to ours, so the inverse (ours -> release) is the same table read backwards.
The seed collection's own DRRN (``input``/``conv1``/``conv2``/``output``) and DRCN
(``fea_in_conv1``/.../``ensemble``) dicts are the ``variant: seed`` of those models, whose
modules carry the collection's names: they load without renaming.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from srcore.registry import CheckpointMatch

Renamer = Callable[[str], str]


def _shape(sd: Mapping[str, Any], key: str) -> tuple[int, ...] | None:
    v = sd.get(key)
    return tuple(v.shape) if v is not None and hasattr(v, "shape") else None


def _rename(sd: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any] | None:
    """Rename every key by its module prefix (``prefix.weight`` -> ``new.weight``); None if any is unknown."""
    out = {}
    for key, value in sd.items():
        prefix, _, leaf = key.rpartition(".")
        if prefix not in table:
            return None
        out[f"{table[prefix]}.{leaf}"] = value
    return out


def invert(table: Mapping[str, str]) -> dict[str, str]:
    return {v: k for k, v in table.items()}


# -- FSRCNN (yjn870) ---------------------------------------------------------------------------


def fsrcnn_table(m: int) -> dict[str, str]:
    """yjn870 names -> ours for FSRCNN with m mapping layers."""
    table = {
        "first_part.0": "feature.0",
        "first_part.1": "feature.1",
        "mid_part.0": "shrink.0",
        "mid_part.1": "shrink.1",
    }
    for j in range(2 * m):
        table[f"mid_part.{2 + j}"] = f"mapping.{j}"
    table[f"mid_part.{2 * m + 2}"] = "expand.0"
    table[f"mid_part.{2 * m + 3}"] = "expand.1"
    table["last_part"] = "deconv"
    return table


def detect_fsrcnn(sd: Mapping[str, Any]) -> CheckpointMatch | None:
    first, deconv, shrink = (
        _shape(sd, "first_part.0.weight"),
        _shape(sd, "last_part.weight"),
        _shape(sd, "mid_part.0.weight"),
    )
    if not (first and deconv and shrink) or first[1:] != (1, 5, 5) or deconv[1:] != (1, 9, 9):
        return None
    m = sum(
        1 for k in sd if re.fullmatch(r"mid_part\.\d+\.weight", k) and len(sd[k].shape) == 4 and sd[k].shape[-1] == 3
    )
    state = _rename(sd, fsrcnn_table(m))
    if state is None:
        return None
    params: dict[str, Any] = {"d": first[0], "s": shrink[0], "m": m}
    scale = fsrcnn_scale_from_flat_field(params, state)
    what = f"FSRCNN(d={first[0]}, s={shrink[0]}, m={m}), yjn870 layout"
    if scale is None:
        note = (
            f"{what}; the upscaling factor is not stored in these weights (the deconvolution has the same "
            "shape at every stride) and the flat-field test was inconclusive: give the scale the file was trained for"
        )
    else:
        params["scale"] = scale
        note = f"{what}; x{scale} inferred from the deconvolution's flat-field response (the stride is not stored)"
    return CheckpointMatch(model="srcnn:fsrcnn", params=params, state_dict=state, note=note)


def fsrcnn_scale_from_flat_field(params: Mapping[str, Any], state: Mapping[str, Any]) -> int | None:
    """The stride a trained FSRCNN deconvolution was trained for, from its weights.

    The deconvolution's shape is the same at every stride, but a trained model maps a flat image to a
    flat image only at its own stride: at another stride the r x r output phases get different weight
    sums and the output shows a periodic pattern. Flat at stride 2 and 4 (a stride-4 kernel's phases
    pool into stride-2 phases) means 4: the largest flat stride wins. None if no stride is flat
    (e.g. untrained weights).
    """
    import torch

    from .models.fsrcnn import FSRCNN, FSRCNNConfig

    ripple = {}
    for r in (2, 3, 4):
        net = FSRCNN(FSRCNNConfig(scale=r, **params))
        net.load_state_dict(dict(state))
        with torch.no_grad():
            outs = [net(torch.full((1, 1, 16, 16), v))[..., 4 * r : -4 * r, 4 * r : -4 * r] for v in (0.3, 0.5, 0.7)]
        response = abs(float(outs[2].mean() - outs[0].mean()))  # a trained model maps 0.3 -> 0.7 to about 0.4
        ripple[r] = max(float(o.std()) for o in outs) / max(response, 1e-8)
    best = min(ripple.values())
    if not best < 0.05:  # no stride gives a flat output: untrained or not an SR model
        return None
    return max(r for r, v in ripple.items() if v <= 5 * best + 1e-6)


# -- VDSR (twtygqyy) ---------------------------------------------------------------------------


def vdsr_table(n_body: int) -> dict[str, str]:
    table = {"input": "head", "output": "tail"}
    table.update({f"residual_layer.{i}.conv": f"body.{i}" for i in range(n_body)})
    return table


def detect_vdsr(sd: Mapping[str, Any]) -> CheckpointMatch | None:
    head, tail = _shape(sd, "input.weight"), _shape(sd, "output.weight")
    if not (head and tail) or head[1:] != (1, 3, 3) or tail[:2] != (1, head[0]):
        return None
    n_body = sum(1 for k in sd if re.fullmatch(r"residual_layer\.\d+\.conv\.weight", k))
    state = _rename(sd, vdsr_table(n_body))
    if state is None:
        return None
    params = {"depth": n_body + 2, "channels": head[0]}
    return CheckpointMatch(
        "srcnn:vdsr", params, state, f"VDSR, {n_body + 2} layers, twtygqyy layout (one model for every scale)"
    )


# -- LapSRN (twtygqyy) -------------------------------------------------------------------------


def lapsrn_table(levels: int, depth: int) -> dict[str, str]:
    table = {"conv_input": "conv_input"}
    for k in range(1, levels + 1):
        for j in range(0, 2 * depth + 1, 2):
            table[f"convt_F{k}.0.cov_block.{j}"] = f"levels.{k - 1}.features.{j}"
        table[f"convt_R{k}"] = f"levels.{k - 1}.residual"
        table[f"convt_I{k}"] = f"levels.{k - 1}.image_up"
    return table


def detect_lapsrn(sd: Mapping[str, Any]) -> CheckpointMatch | None:
    first = _shape(sd, "conv_input.weight")
    if not first or first[1:] != (1, 3, 3) or _shape(sd, "convt_I1.weight") != (1, 1, 4, 4):
        return None
    levels = sum(1 for k in sd if re.fullmatch(r"convt_I\d+\.weight", k))
    depth = sum(1 for k in sd if re.fullmatch(r"convt_F1\.0\.cov_block\.\d+\.weight", k)) - 1
    state = _rename(sd, lapsrn_table(levels, depth))
    if state is None or depth < 1:
        return None
    params = {"scale": 2**levels, "depth": depth, "channels": first[0]}
    return CheckpointMatch(
        "srcnn:lapsrn", params, state, f"LapSRN x{2**levels} ({levels} levels of {depth} convs), twtygqyy layout"
    )


# -- ESPCN (yjn870 / Dekelv) -------------------------------------------------------------------

ESPCN_TABLE = {"first_part.0": "feature.0", "first_part.2": "feature.2", "last_part.0": "subpixel.0"}


def detect_espcn(sd: Mapping[str, Any]) -> CheckpointMatch | None:
    c1, c2, c3 = (_shape(sd, f"{p}.weight") for p in ESPCN_TABLE)
    if not (c1 and c2 and c3) or c1[1:] != (1, 5, 5) or c2[1] != c1[0] or c3[1] != c2[0]:
        return None
    r = math.isqrt(c3[0])
    if r * r != c3[0]:
        return None
    state = _rename(sd, ESPCN_TABLE)
    if state is None:
        return None
    return CheckpointMatch(
        "srcnn:espcn", {"scale": r, "n1": c1[0], "n2": c2[0]}, state, f"ESPCN x{r}, ESPCN-pytorch layout"
    )


# -- the seed collection's DRRN and DRCN (543877815/cv_practise) ---------------------------------

DRRN_SEED_KEYS = {"input.weight", "conv1.weight", "conv2.weight", "output.weight"}
DRCN_SEED_CONVS = ("fea_in_conv1", "fea_in_conv2", "recursive_conv", "reconstruct_conv1", "reconstruct_conv2")
DRCN_SEED_KEYS = {f"{c}.{t}" for c in DRCN_SEED_CONVS for t in ("weight", "bias")} | {"ensemble.weight"}


def detect_drrn_seed(sd: Mapping[str, Any]) -> CheckpointMatch | None:
    """The collection's bias-free DRRN (jt827859032 layout); the number of units is not stored."""
    if set(sd) != DRRN_SEED_KEYS:
        return None
    head, conv1, conv2, tail = (_shape(sd, f"{k}.weight") for k in ("input", "conv1", "conv2", "output"))
    c = head[0] if head else 0
    if head != (c, 1, 3, 3) or conv1 != (c, c, 3, 3) or conv2 != conv1 or tail != (1, c, 3, 3):
        return None
    note = f"DRRN, seed collection layout (no BN, {c} channels); the units (25) and the scale are not stored"
    return CheckpointMatch("srcnn:drrn", {"variant": "seed", "channels": c}, dict(sd), note)


def detect_drcn_seed(sd: Mapping[str, Any]) -> CheckpointMatch | None:
    """The collection's DRCN: recursions = ensemble inputs - 1."""
    if set(sd) != DRCN_SEED_KEYS:
        return None
    head, ens = _shape(sd, "fea_in_conv1.weight"), _shape(sd, "ensemble.weight")
    if not head or head[1:] != (1, 3, 3) or not ens or ens[0] != 1 or ens[2:] != (1, 1):
        return None
    params = {"variant": "seed", "channels": head[0], "recursions": ens[1] - 1}
    note = f"DRCN, seed collection layout ({ens[1]} predictions, {head[0]} channels); the scale is not stored"
    return CheckpointMatch("srcnn:drcn", params, dict(sd), note)


DETECTORS = (detect_fsrcnn, detect_vdsr, detect_lapsrn, detect_espcn, detect_drrn_seed, detect_drcn_seed)


def detect(sd: Mapping[str, Any]) -> CheckpointMatch | None:
    for fn in DETECTORS:
        match = fn(sd)
        if match is not None:
            return match
    return None


def to_release(state: Mapping[str, Any], table: Mapping[str, str]) -> dict[str, Any]:
    """Our key names back to a release's (for exporting in the authors' layout)."""
    out = _rename(state, invert(table))
    if out is None:
        raise KeyError("state dict does not match the table")
    return out
