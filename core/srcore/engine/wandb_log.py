"""Weights & Biases logging (``train.wandb``): the values, sample grids and warnings the run folder gets.

Optional: ``pip install 'srcore[wandb]'``. The W&B run id is kept in ``<run>/wandb_id``, so a
resumed srcore run continues the same W&B run. ``mode: offline`` writes under ``<run>/wandb``
for a later ``wandb sync`` (what the tests use: no network).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from srcore.errors import SrcoreError


def require_wandb() -> Any:
    try:
        import wandb
    except ImportError:
        raise SrcoreError("train.wandb: wandb is not installed; pip install 'srcore[wandb]' (or remove train.wandb)")\
            from None
    return wandb


class WandbLogger:
    def __init__(self, run_dir: Path, cfg: Any, config: Mapping[str, Any]) -> None:
        wandb = require_wandb()
        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else secrets.token_hex(4)  # W&B: [a-z0-9]+
        self.wandb = wandb
        self.run = wandb.init(project=cfg.project, entity=cfg.entity, name=cfg.name or run_dir.name, tags=cfg.tags,
                              mode=cfg.mode, dir=str(run_dir), id=run_id, resume="allow", config=dict(config))
        if not id_file.is_file():
            from srcore.atomic import write_atomic

            write_atomic(id_file, run_id + "\n", "W&B run id")

    def log(self, step: int, kind: str, values: Mapping[str, float]) -> None:
        self.run.log({(f"val/{k}" if kind == "val" else k): v for k, v in values.items()}, step=step)

    def image(self, step: int, tag: str, path: Path) -> None:
        self.run.log({tag: self.wandb.Image(str(path))}, step=step)

    def warn(self, step: int, message: str) -> None:
        self.run.log({"warning": message}, step=step)

    def close(self) -> None:
        self.run.finish()
