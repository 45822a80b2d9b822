"""What a resume may change: settings the engine re-reads are applied, the rest is refused.

A resumed run used to record a new learning rate in ``config.json`` and keep training with the
old one (the optimizer and scheduler states carry the old value). Now every differing key is
either applied, and said so, or the resume is refused with the keys listed. Applied are the
settings read afresh at each step (logging, saving, validation, schedules, loss and GAN
weights, stage lengths, clipping, devices and workers) and the learning rates, which
``apply_learning_rates`` rescales in the loaded optimizer and scheduler states. Anything that
changes what was learnt so far (model, data, losses, stages, seeds, optimizer types) is refused;
stages appended after the trained ones are new training and allowed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from srcore.errors import SrcoreError

APPLIED = tuple(re.compile(p) for p in (
    r"^(name|out_dir|recipe)$",
    r"^(model|stages\.\d+\.discriminator)\.pretrained",  # read at a run's start only
    r"^train\.(device|log_every|save_every|keep_last|tensorboard|samples|preflight)$",
    r"^train\.wandb",
    r"^val\.",
    r"^data\.root$",
    r"^data\.train\.num_workers$",
    r"^stages\.\d+\.(steps|grad_clip)$",
    r"^stages\.\d+\.(schedule|schedule_d)\.",
    r"^stages\.\d+\.(optim|optim_d)\.lr$",
    r"^stages\.\d+\.gan\.(weight|d_start)$",
    r"^stages\.\d+\.losses\.\d+\.weight$",
))

NEW_STAGE = re.compile(r"^stages\.(\d+)$")


class ResumeConfigError(SrcoreError):
    """The configuration differs from the run's in ways a resume cannot apply."""


def config_changes(saved: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(applied, refused) descriptions ``key: old -> new`` of every differing key."""
    from srcore.config import ABSENT, changed_fields

    n_saved = len(saved.get("stages") or [])
    applied, refused = [], []
    added: set[str] = set()
    for key, old, now in sorted(changed_fields(saved, new)):
        if (old, now) in ((None, ABSENT), (ABSENT, None)):  # a field added since the run started, left unset
            continue
        m = NEW_STAGE.match(key)
        if m and int(m.group(1)) >= n_saved and old is ABSENT:  # stages appended after the trained ones
            added.add(f"stages.{m.group(1)} added")
            continue
        text = f"{key}: {old} -> {now}"
        (applied if any(p.match(key) for p in APPLIED) else refused).append(text)
    return sorted(added) + applied, refused


def check_resume_config(saved: Mapping[str, Any], new: Mapping[str, Any], checkpoint: Any) -> list[str]:
    """The applied changes (to print), or ``ResumeConfigError`` listing those a resume cannot apply."""
    applied, refused = config_changes(saved, new)
    if refused:
        more = f" (and {len(refused) - 12} more)" if len(refused) > 12 else ""
        raise ResumeConfigError(
            f"--resume: the configuration differs from the one {checkpoint} was trained with in keys a resume "
            f"cannot apply{more}:\n" + "\n".join(f"  - {r}" for r in refused[:12]) +
            "\nStart a new run (--name/--run-dir) for these, or resume with the run's own settings "
            "(srcore train --run-dir RUN --resume reads them from its config.json)."
        )
    return applied


def apply_learning_rates(ctx: Any, saved_stage: Mapping[str, Any], stage: Any) -> None:
    """Rescale the loaded optimizer and scheduler states to a changed ``optim.lr``/``optim_d.lr``.

    The scheduler's ``base_lrs`` and each group's lr came from the checkpoint; multiplying both by
    new/old keeps per-group ratios (per-layer learning rates) and the schedule's position.
    """
    for name, key in (("generator", "optim"), ("discriminator", "optim_d")):
        old = float(saved_stage.get(key, {}).get("lr", getattr(stage, key).lr))
        ratio = getattr(stage, key).lr / old
        if name not in ctx.optimizers or ratio == 1.0:
            continue
        for group in ctx.optimizers[name].param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:
                group["initial_lr"] *= ratio
        sched = ctx.schedulers.get(name)
        if sched is not None:
            sched.base_lrs = [b * ratio for b in sched.base_lrs]
