"""Recognising the authors' released state dicts (``srcore_detect_checkpoint``)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from srcore.registry import CheckpointMatch

_BLOCK = re.compile(r"^model\.layer1\.(\d+)\.conv1\.weight_v$")


def detect_srrescgan(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    """The released ``srrescgan_model.pth`` (keys ``alpha``, ``model.conv1.weight_v`` ...).

    Keys are already ours; depth and channels come from the tensors. The scale is not stored in
    the file: the only released model is x4, so 4 is assumed (override ``scale`` if needed).
    """
    if "alpha" not in state_dict or "model.conv1.weight_v" not in state_dict:
        return None
    blocks = [int(m.group(1)) for k in state_dict if (m := _BLOCK.match(k))]
    params = {"scale": 4, "depth": max(blocks) + 1 if blocks else 0}
    params["channels"] = int(state_dict["model.conv1.weight_v"].shape[0])
    note = "SRResCGAN generator (RaoUmer/SRResCGAN release); scale not stored, x4 assumed"
    return CheckpointMatch(model="srrescgan:srrescgan", params=params, state_dict=dict(state_dict), note=note)


def detect_dsgan(state_dict: Mapping[str, Any]) -> CheckpointMatch | None:
    """DSGAN's ``300_G.pth`` (keys ``block_input.0.weight``, ``res_blocks.{i}.conv1`` ...)."""
    if "block_input.0.weight" not in state_dict or "block_output.weight" not in state_dict:
        return None
    blocks = {int(k.split(".")[1]) for k in state_dict if k.startswith("res_blocks.")}
    params = {"n_res_blocks": max(blocks) + 1 if blocks else 0}
    note = "DSGAN degradation generator G_d (same-size LR -> LR); use it as degradation srrescgan:dsgan"
    return CheckpointMatch(model="srrescgan:dsgan_g", params=params, state_dict=dict(state_dict), note=note)
