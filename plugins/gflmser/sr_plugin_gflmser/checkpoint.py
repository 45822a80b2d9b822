"""Official GFLmser (v1) state dicts: key handling, conversion and detection.

The authors save whole pickled modules (``{"epoch": e, "model": Lmser_up()}``), which srcore
never unpickles. Their *state dicts* (``ckpt["model"].state_dict()``, saved in the authors'
environment) load here: H2L keys ``up_*``, L2H keys ``down_*``, and a merged dict of both is a
complete SR model (``gflmser:gflmser``). Tensors of the layers the v1 forward pass never runs
(groups 4 and 5 and the idle branch of each rescale unit) are dropped. The joint model of
``Lmser/lmser_gate.py`` (one module, 4-channel head, ``fully_connect`` z layer) is
``gflmser:lmser``; its idle rescale branches are dropped the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from srcore.errors import CheckpointError
from srcore.weights_io import read_torch_file

# Official modules built but never called by the v1 forward passes.
UNUSED_OFFICIAL = re.compile(
    r"^(up_layer_[45]\.|down_layer_[12]\.|up_rescale_[012]\.de_conv\.|up_rescale_5\.conv\."
    r"|down_rescale_0\.de_conv\.|down_rescale_[345]\.conv\.|up_rescale_[34]\.|down_rescale_[12]\.)"
)
# The joint Lmser's rescale units never run: H2L 0-3 down (de_conv idle), 4-5 up (conv idle);
# L2H 0-1 down, 2-5 up.
JOINT_IDLE = re.compile(
    r"^(up_rescale_[0-3]\.de_conv\.|up_rescale_[45]\.conv\.|down_rescale_[01]\.de_conv\.|down_rescale_[2-5]\.conv\.)"
)


def is_official_h2l(sd: Mapping[str, Any]) -> bool:
    return "up_process.weight" in sd and "up_layer_0.layers.0.conv1.weight" in sd


def is_official_l2h(sd: Mapping[str, Any]) -> bool:
    return "down_process.weight" in sd and "down_layer_0.layers.0.conv1.weight" in sd


def _is_v1_layout(sd: Mapping[str, Any]) -> bool:
    """v1 H2L has a 3-channel head; the joint gated model of Lmser/ has 4 (image + z map)."""
    w = sd.get("up_process.weight")
    return w is None or tuple(w.shape[1:]) == (3, 3, 3)


def is_official_joint(sd: Mapping[str, Any]) -> bool:
    """``Lmser/lmser_gate.py``/``lmser_skip.py`` state dict: z layer, 4-channel head, both nets."""
    return (
        "fully_connect.weight" in sd
        and is_official_l2h(sd)
        and is_official_h2l(sd)
        and not _is_v1_layout(sd)
        and "up_layer_6.layers.1.conv2.weight" in sd
    )


def official_joint_to_srcore(sd: Mapping[str, Any]) -> dict[str, Any]:
    """The joint Lmser's keys are ours already: only the idle rescale branches are dropped."""
    return {k: v for k, v in sd.items() if not JOINT_IDLE.match(k)}


def official_to_srcore(sd: Mapping[str, Any]) -> dict[str, Any]:
    """Official ``up_*``/``down_*`` keys -> ``h2l.*``/``l2h.*`` of ``GFLmser``; unused dropped."""
    if not _is_v1_layout(sd):
        raise CheckpointError(
            "this is the joint Lmser of the authors' Lmser/ scripts (4-channel head with a z map, "
            "7 levels): load the whole dict as model gflmser:lmser, its H2L does not fit the v1 layout"
        )
    out: dict[str, Any] = {}
    for key, value in sd.items():
        if UNUSED_OFFICIAL.match(key):
            continue
        if key.startswith("up_"):
            out[f"h2l.{key}"] = value
        elif key.startswith("down_"):
            out[f"l2h.{key}"] = value
    return out


def h2l_state_dict(sd: Mapping[str, Any]) -> dict[str, Any]:
    """The H2L weights of any supported file: srcore ``h2l.*``, official ``up_*``, or bare H2L."""
    if any(k.startswith("h2l.") for k in sd):
        return {k.removeprefix("h2l."): v for k, v in sd.items() if k.startswith("h2l.")}
    if is_official_h2l(sd):
        return {k.removeprefix("h2l."): v for k, v in official_to_srcore(sd).items() if k.startswith("h2l.")}
    raise CheckpointError(
        "no H2L weights found (expected keys 'h2l.*' of a gflmser checkpoint or the authors' "
        f"'up_process.*'/'up_layer_*' keys); first keys: {', '.join(list(sd)[:4])}"
    )


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """Generator tensors of an srcore run/checkpoint folder, a .safetensors or a weights-only .pth.

    A run folder gives its *latest* checkpoint, not the best-by-SR-metric one: the H2L is
    trained before the L2H, so the best SR checkpoint may hold an H2L that is not finished.
    """
    from srcore.engine.checkpoint import latest_checkpoint, load_safetensors, resolve_checkpoint_path, unwrap_state

    p = latest_checkpoint(Path(path)) or Path(path) if (Path(path) / "checkpoints").is_dir() else Path(path)
    p = resolve_checkpoint_path(p)
    if p.is_dir():
        if not (p / "generator.safetensors").is_file():
            raise CheckpointError(f"{p}: not a srcore checkpoint folder (no generator.safetensors)")
        return load_safetensors(p / "generator.safetensors")[0]
    if p.suffix == ".safetensors":
        return unwrap_state(load_safetensors(p)[0])

    try:
        obj = read_torch_file(p, "GFLmser weights")
    except CheckpointError as exc:  # pickled modules (the authors' format) land here
        raise CheckpointError(
            f"{exc}. The authors' "
            "files pickle whole modules; in their environment save ckpt['model'].state_dict() "
            "and load that file instead."
        ) from None
    return unwrap_state(obj)


def detect(sd: Mapping[str, Any]) -> Any:
    """``srcore_detect_checkpoint`` answer: a merged official v1 H2L+L2H dict is ``gflmser:gflmser``,
    the joint ``Lmser/`` dict ``gflmser:lmser``."""
    from srcore.registry import CheckpointMatch

    if is_official_joint(sd):
        return CheckpointMatch(
            model="gflmser:lmser",
            params={"skip": "gated"},
            state_dict=official_joint_to_srcore(sd),
            note="authors' joint Lmser (Lmser/lmser_gate.py; lmser_skip.py has the same keys: "
            "-p skip=ungated for it); idle rescale branches dropped",
        )
    if not (is_official_h2l(sd) and is_official_l2h(sd)):
        return None
    return CheckpointMatch(
        model="gflmser:gflmser",
        params={"skip": "ungated"},
        state_dict=official_to_srcore(sd),
        note="authors' v1 H2L+L2H weights (ungated skips, as v1_lmser.py); unused layers dropped",
    )
