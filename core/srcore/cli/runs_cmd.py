"""``srcore runs show DIR``: what a run is, how far it got, and how well it does."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from srcore.cli.common import handle_errors


@click.group(name="runs")
def runs() -> None:
    """Inspect training runs."""


def summarize(run_dir: Path) -> dict[str, Any]:
    """A run's summary as data (``--json``) from config.json, log.jsonl and its checkpoints."""
    from srcore.engine.checkpoint import CKPT_DIR, list_checkpoints, run_checkpoint
    from srcore.engine.monitor import read_log
    from srcore.errors import CheckpointError, SrcoreError

    cfg_file = run_dir / "config.json"
    if not cfg_file.is_file():
        raise SrcoreError(f"{run_dir} is not a srcore run folder (no config.json)")
    cfg = json.loads(cfg_file.read_text())
    rows = read_log(run_dir)
    train = [r for r in rows if r["kind"] == "train"]
    val = [r for r in rows if r["kind"] == "val"]
    ckpts = list_checkpoints(run_dir)
    best_meta = run_dir / CKPT_DIR / "best" / "meta.json"
    best = json.loads(best_meta.read_text()).get("best") if best_meta.is_file() else None
    total = sum(s.get("steps", 0) for s in cfg.get("stages", []))
    try:
        used, why = run_checkpoint(run_dir)
        stands_for: dict[str, Any] | None = {"checkpoint": str(used), "why": why}
    except CheckpointError:
        stands_for = None
    return {
        "run_dir": str(run_dir),
        "model": cfg["model"],
        "recipe": cfg.get("recipe"),
        "stages": [{"name": s["name"], "steps": s["steps"], "step": s["step"]} for s in cfg["stages"]],
        "steps_done": train[-1]["step"] if train else 0,
        "steps_total": total,
        "last_train": {k: v for k, v in (train[-1] if train else {}).items() if k not in ("kind", "time")},
        "last_val": {k: v for k, v in (val[-1] if val else {}).items() if k not in ("kind", "time")},
        "best": best,
        "checkpoints": [p.name for p in ckpts],
        "stands_for": stands_for,
        "warnings": [r.get("message") for r in rows if r.get("kind") == "warning"],
        "samples": sorted(p.name for p in (run_dir / "samples").glob("*.png")),
        "curves": str(run_dir / "curves.png") if (run_dir / "curves.png").is_file() else None,
    }


@runs.command(name="show")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@handle_errors
def show(run_dir: Path, as_json: bool) -> None:
    """Summarise the run in RUN_DIR."""
    s = summarize(run_dir)
    if as_json:
        click.echo(json.dumps(s, indent=2))
        return
    click.echo(f"run        {s['run_dir']}")
    click.echo(f"model      {s['model']['id']} {s['model'].get('params') or ''}")
    if s["recipe"]:
        click.echo(f"recipe     {s['recipe']}")
    click.echo("stages     " + ", ".join(f"{st['name']} ({st['step']}, {st['steps']} steps)" for st in s["stages"]))
    click.echo(f"progress   {s['steps_done']}/{s['steps_total']} steps")
    if s["last_train"]:
        losses = {k: v for k, v in s["last_train"].items() if k.startswith("loss/") or k == "it_per_s"}
        click.echo("last train " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    if s["last_val"]:
        click.echo("last val   " + ", ".join(f"{k} {v:.4f}" for k, v in s["last_val"].items() if k != "step"))
    if s["best"]:
        click.echo(f"best       {s['best']['label']} = {s['best']['value']:.4f} at step {s['best']['step']}")
    click.echo(f"checkpts   {', '.join(s['checkpoints']) or 'none'}")
    if s["stands_for"]:
        click.echo(f"uses       {s['stands_for']['checkpoint']} ({s['stands_for']['why']})")
    for w in s["warnings"]:
        click.echo(f"warning    {w.removeprefix('warning: ')}")
    if s["curves"]:
        click.echo(f"curves     {s['curves']}")
    if s["samples"]:
        click.echo(f"samples    {len(s['samples'])} grid(s), last {s['samples'][-1]}")
