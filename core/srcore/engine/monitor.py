"""What a person watches during a run (rank 0 only): JSONL log, TensorBoard, curves, samples.

* ``log.jsonl``: one JSON object per logged step or validation, every value;
* ``curves.png``: training losses and validation metrics against the step, redrawn at each
  validation (matplotlib, Agg backend: no display needed);
* ``samples/step_XXXXXXX.png``: rows of bicubic | SR | HR crops of the first validation images;
* ``tb/``: TensorBoard scalars when ``train.tensorboard`` is on.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def to_floats(values: Mapping[str, Any]) -> dict[str, float]:
    """Every value as a float (a tensor's mean), with one wait for the device rather than one per tensor."""
    means = {k: v.detach().float().mean() for k, v in values.items() if isinstance(v, torch.Tensor)}
    if len({t.device for t in means.values()}) == 1:
        means = dict(zip(means, torch.stack(list(means.values())).tolist()))
    return {k: float(means[k]) if k in means else float(v) for k, v in values.items()}


class Monitor:
    def __init__(self, run_dir: Path, tensorboard: bool = False, enabled: bool = True, wandb: Any = None,
                 config: Mapping[str, Any] | None = None) -> None:
        self.run_dir = run_dir
        self.enabled = enabled
        self.log_path = run_dir / "log.jsonl"
        self.tb = None
        self.wandb = None
        if enabled and wandb is not None:
            from srcore.engine.wandb_log import WandbLogger

            self.wandb = WandbLogger(run_dir, wandb, config or {})
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir / "tb"))
            except ImportError:
                print("warning: tensorboard is not installed; pip install 'srcore[tensorboard]'")

    def log(self, step: int, kind: str, values: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        row = {"step": step, "kind": kind, "time": round(time.time(), 3)}
        row.update(to_floats(values))
        with self.log_path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k in values:
                self.tb.add_scalar(f"{kind}/{k}" if kind == "val" else k, row[k], step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.log(step, kind, {k: v for k, v in row.items() if k not in ("step", "kind", "time")})

    def image(self, step: int, tag: str, path: Path) -> None:
        """A written PNG (a sample grid) to TensorBoard's images tab."""
        if self.tb is not None:
            from srcore.data.io import read_image

            self.tb.add_image(tag, read_image(path), step)
            self.tb.flush()
        if self.wandb is not None:
            self.wandb.image(step, tag, path)

    def warn(self, step: int, message: str) -> None:
        """A ``kind: warning`` row, so a warning printed during an unattended run is kept with it."""
        if self.enabled:
            with self.log_path.open("a") as f:
                f.write(json.dumps({"step": step, "kind": "warning", "time": round(time.time(), 3),
                                    "message": message}) + "\n")
        if self.wandb is not None:
            self.wandb.warn(step, message)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.close()


class DivergenceWatch:
    """Warns once per stage and loss when a loss grows a thousandfold over its first logged value.

    A loss of 1e19 for 100 steps (FSRCNN at lr 1) is finite, so the NaN check lets it through;
    this says so while the run is still young instead of after it "finished".
    """

    FACTOR = 1e3

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.warned: set[str] = set()

    def reset(self) -> None:
        self.first.clear()
        self.warned.clear()

    def check(self, values: Mapping[str, float], step: int, stage: str, where: str) -> list[str]:
        out = []
        for key, v in values.items():
            if not key.startswith("loss/") or not math.isfinite(v):
                continue
            ref = self.first.setdefault(key, abs(v))
            if key not in self.warned and abs(v) > 1.0 and abs(v) > self.FACTOR * max(ref, 1e-12):
                self.warned.add(key)
                out.append(f"warning: {key} grew from {ref:.4g} to {v:.4g} by step {step} (stage '{stage}'): "
                           f"the run is diverging; lower {where}.optim.lr or set {where}.grad_clip")
        return out


def read_log(run_dir: Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut by a kill
    return rows


def truncate_log(run_dir: Path, step: int) -> None:
    """Drop log rows after ``step`` (a resumed run rewrites what the killed one logged)."""
    path = Path(run_dir) / "log.jsonl"
    if path.is_file():
        from srcore.atomic import write_atomic

        rows = [r for r in read_log(run_dir) if r.get("step", 0) <= step]
        write_atomic(path, "".join(json.dumps(r) + "\n" for r in rows), "training log")


def plot_curves(run_dir: Path, out: Path | None = None) -> Path | None:
    """Loss curves (log scale) and one panel per validation metric, from ``log.jsonl``."""
    rows = read_log(run_dir)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in rows if r["kind"] == "train"]
    val = [r for r in rows if r["kind"] == "val"]
    loss_keys = sorted({k for r in train for k in r if k.startswith("loss/")})
    val_keys = sorted({k for r in val for k in r if k not in ("step", "kind", "time")})
    panels = 1 + len(val_keys)
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.5), squeeze=False)
    ax = axes[0][0]
    for k in loss_keys:
        pts = [(r["step"], r[k]) for r in train if k in r and math.isfinite(r[k])]
        if pts:
            ax.plot(*zip(*pts), label=k.removeprefix("loss/"))
    ax.set_title("training losses")
    ax.set_xlabel("step")
    if any(v > 0 for r in train for k, v in r.items() if k in loss_keys):
        ax.set_yscale("log")
    if loss_keys:
        ax.legend(fontsize=7)
    for ax, k in zip(axes[0][1:], val_keys):
        pts = [(r["step"], r[k]) for r in val if k in r]
        ax.plot(*zip(*pts), marker="o")
        ax.set_title(k)
        ax.set_xlabel("step")
    fig.tight_layout()
    out = out or Path(run_dir) / "curves.png"
    tmp = out.with_name(f".{out.name}.tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(out)
    return out


def sample_grid(rows: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], path: Path, crop: int = 128) -> Path:
    """A PNG with one row per image: bicubic | SR | HR, centre crops of ``crop`` HR pixels.

    A header names the columns and each bicubic / SR tile carries its PSNR against the HR crop
    (RGB, on the crop shown), so a grid says at a glance whether the model beats bicubic.
    """
    from srcore.data.io import write_image

    cells, scores = [], []
    for bic, sr, hr in rows:
        h, w = hr.shape[-2:]
        ch, cw = min(crop, h), min(crop, w)
        top, left = (h - ch) // 2, (w - cw) // 2
        parts = [t[..., top : top + ch, left : left + cw].reshape(3, ch, cw).clamp(0, 1) for t in (bic, sr, hr)]
        scores.append([_psnr(parts[0], parts[2]), _psnr(parts[1], parts[2])])
        parts = [torch.nn.functional.pad(p, (0, crop - cw + 4, 0, crop - ch + 4), value=1.0) for p in parts]
        cells.append(torch.cat(parts, dim=-1))
    grid = torch.cat(cells, dim=-2).clamp(0, 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(path, _labelled(grid, scores, crop + 4))
    return path


HEADER = 22  # pixels of the column-title band


def _psnr(x: torch.Tensor, ref: torch.Tensor) -> float:
    mse = float(((x.double() - ref.double()) ** 2).mean())
    return 99.0 if mse == 0 else 10 * math.log10(1.0 / mse)


def _labelled(grid: torch.Tensor, scores: list[list[float]], cell: int) -> torch.Tensor:
    """``grid`` under a title band, with ``scores[row][col]`` written on the bicubic and SR tiles."""
    import cv2
    import numpy as np

    from srcore.data.io import to_uint8

    img = np.ascontiguousarray(to_uint8(with_titles(grid, ("bicubic", "SR", "HR"), cell)).permute(1, 2, 0).numpy())
    font = cv2.FONT_HERSHEY_SIMPLEX
    for row, values in enumerate(scores):
        for col, value in enumerate(values):
            at = (col * cell + 4, HEADER + row * cell + 16)
            text = f"{value:.2f} dB"
            cv2.putText(img, text, at, font, 0.45, (0, 0, 0), 3, cv2.LINE_AA)  # outline, readable on any tile
            cv2.putText(img, text, at, font, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return torch.from_numpy(img).permute(2, 0, 1).float() / 255


def with_titles(grid: torch.Tensor, titles: Sequence[str], cell: int) -> torch.Tensor:
    """``grid`` (3xHxW in [0, 1]) under a white band naming each column of width ``cell``."""
    import cv2
    import numpy as np

    from srcore.data.io import to_uint8

    img = to_uint8(grid).permute(1, 2, 0).numpy()
    img = np.ascontiguousarray(np.concatenate([np.full((HEADER, img.shape[1], 3), 255, np.uint8), img]))
    for col, title in enumerate(titles):
        cv2.putText(img, title, (col * cell + 4, HEADER - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                    cv2.LINE_AA)
    return torch.from_numpy(img).permute(2, 0, 1).float() / 255
