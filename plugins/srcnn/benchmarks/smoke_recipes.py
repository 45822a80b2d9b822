"""Smoke-train every srcnn recipe: N real steps (default 200) on Set14 patches, then say per recipe
whether the loss stayed finite and fell (mean of the last 50 steps below the mean of the first 20).

    .venv/bin/python plugins/srcnn/benchmarks/smoke_recipes.py [--steps 200] [--recipes a,b] [--all-scales]

Small patches (24 px HR) and batch 2 keep it to CPU minutes; the recipes' models, losses, optimizers
and schedules are otherwise as registered. GLEAN runs with reduced widths (its full bank is 132M
parameters) and an untrained VGG for its perceptual term (no weights download here). One thread by
default: the machine this was written on is shared. Results go to stdout and, with --json, a file.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from click.testing import CliRunner

from srcore.cli import main
from srcore.testing import shared_data_dir

PATCH, BATCH = 24, 2
MODELS = ("srcnn", "fsrcnn", "vdsr", "espcn", "drcn", "drrn", "rdn", "rcan", "wdsr_a", "wdsr_b")
GLEAN_REDUCED = [
    "model.params.in_size=8",
    "model.params.num_rrdbs=1",
    "model.params.max_channels=16",
    "model.params.style_channels=16",
    "model.params.channel_multiplier=1",
    "model.params.num_mlps=2",
    "stages.0.losses.1.params.weights=random",
]


def default_recipes(all_scales: bool) -> list[str]:
    scales = (2, 3, 4) if all_scales else (2,)
    names = [f"{m}-x{s}" for m in MODELS for s in scales]
    return names + [f"lapsrn-x{s}" for s in (2, 4, 8)] + ["glean-x8", "demo-x3"]


def overrides(recipe: str, hr: Path, steps: int) -> list[str]:
    scale = int(recipe.rsplit("-x", 1)[1])
    patch = 8 * scale if recipe.startswith("glean") else max(PATCH, -(-PATCH // scale) * scale)
    sets = [
        f"data.train.hr={hr}",
        f"data.train.patch_size={patch}",
        f"data.train.batch_size={BATCH}",
        "data.train.repeat=1",
        f"stages.0.steps={steps}",
        "val.sets=[]",
        "train.log_every=1",
    ]
    return sets + (GLEAN_REDUCED if recipe.startswith("glean") else [])


def train_losses(run: Path) -> list[float]:
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [line["loss/total"] for line in lines if line.get("kind") == "train" and "loss/total" in line]


def smoke(recipe: str, hr: Path, steps: int, workdir: Path) -> dict[str, Any]:
    run = workdir / recipe
    args = ["train", "-r", f"srcnn:{recipe}", "--run-dir", str(run), "--plugin", "srcnn", "--no-progress"]
    args += ["--device", "cpu"] + [a for o in overrides(recipe, hr, steps) for a in ("-s", o)]
    start = time.perf_counter()
    res = CliRunner().invoke(main, args)
    seconds = time.perf_counter() - start
    losses = train_losses(run) if (run / "log.jsonl").is_file() else []
    finite = bool(losses) and all(math.isfinite(v) for v in losses) and res.exit_code == 0
    first = sum(losses[:20]) / max(1, len(losses[:20])) if losses else float("nan")
    last = sum(losses[-50:]) / max(1, len(losses[-50:])) if losses else float("nan")
    error = "" if res.exit_code == 0 else res.output.strip().splitlines()[-1][:200]
    return {
        "recipe": recipe,
        "steps": len(losses),
        "first20": first,
        "last50": last,
        "finite": finite,
        "falling": finite and last < first,
        "seconds": round(seconds, 1),
        "error": error,
    }


def main_cli() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--recipes", default="", help="comma-separated recipe names (default: one scale per model)")
    ap.add_argument("--all-scales", action="store_true", help="x2, x3 and x4 of every model")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hr = shared_data_dir() / "Set14" / "HR"
    if not hr.is_dir():
        raise SystemExit(f"Set14 not found at {hr} (set SRCORE_SHARED_DATA)")
    recipes = args.recipes.split(",") if args.recipes else default_recipes(args.all_scales)
    results = []
    print(f"{'recipe':14} {'steps':>5} {'loss first20':>13} {'last50':>11} finite falling {'s':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in recipes:
            r = smoke(recipe, hr, args.steps, Path(tmp))
            results.append(r)
            print(f"{r['recipe']:14} {r['steps']:5d} {r['first20']:13.4g} {r['last50']:11.4g} "
                  f"{r['finite']!s:6} {r['falling']!s:7} {r['seconds']:7.1f} {r['error']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main_cli()
