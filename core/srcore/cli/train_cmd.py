"""``srcore train``: compose the run configuration, then hand it to the engine.

``--nproc N`` (N > 1) re-launches the same command under torchrun
(``python -m torch.distributed.run --standalone --nproc-per-node N -m srcore train ...``), so
``torchrun -m srcore train ...`` and ``srcore train --nproc N`` are the same run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click

from srcore.cli.common import get_manager, handle_errors, plugin_option


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The torchrun command line that runs ``srcore train`` with ``argv`` on ``nproc`` processes."""
    rest = _drop_nproc(argv)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "srcore", "train", *rest]


def _drop_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


def _saved_config(run_dir: str | None, name: str | None) -> Path:
    """``--resume`` alone: the run's own ``config.json`` (``--run-dir``, else ``runs/<--name>``)."""
    from srcore.config import RunConfig
    from srcore.errors import SrcoreError

    if run_dir is None and name is None:
        raise SrcoreError("--resume without -r/-c needs the run: give --run-dir RUN (or --name NAME)")
    folder = Path(run_dir) if run_dir is not None else Path(RunConfig.model_fields["out_dir"].default) / str(name)
    path = folder / "config.json"
    if not path.is_file():
        raise SrcoreError(f"--resume: {folder} has no config.json (is it a srcore run folder?); "
                          "give the run's -r/-c options as for the original run")
    return path


@click.command(name="train")
@click.option("--recipe", "-r", metavar="ID", help="Recipe to start from (see `srcore plugins`).")
@click.option("--config", "-c", "configs", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML/JSON config merged over the recipe (repeatable, later wins).")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override one value, e.g. -s stages.0.steps=500 (repeatable).")
@plugin_option
@click.option("--run-dir", type=click.Path(file_okay=False), help="Run folder (default: out_dir/name).")
@click.option("--name", help="Run name (the folder under out_dir).")
@click.option("--pretrained", type=click.Path(exists=True), metavar="FILE",
              help="Start the generator from FILE (a release, run folder or BasicSR params_ema .pth): "
                   "model.pretrained.path; see docs/training.md.")
@click.option("--resume", is_flag=True,
              help="Continue from the newest checkpoint that verifies; alone (no -r/-c) it reads the "
                   "run's config.json.")
@click.option("--device", help="cpu, cuda, cuda:1 or auto (default: the config's train.device).")
@click.option("--nproc", type=int, default=1, show_default=True, help="Processes (DDP through torchrun).")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs still go to log.jsonl).")
@handle_errors
def train(recipe: str | None, configs: tuple[str, ...], overrides: tuple[str, ...], plugins: tuple[str, ...],
          run_dir: str | None, name: str | None, pretrained: str | None, resume: bool, device: str | None,
          nproc: int, no_progress: bool) -> None:
    """Train a model from a recipe and/or config files.

    \b
    Examples:
      srcore train -r srcnn:demo-x3 --name demo
      srcore train -c my.yaml -s stages.0.steps=2000 -s train.seed=3
      srcore train -c my.yaml --name big --resume
      srcore train --run-dir runs/big --resume     # the run's own config.json; -s still applies
      srcore train -c my.yaml --nproc 2          # or: torchrun --nproc-per-node 2 -m srcore train -c my.yaml
    """
    from srcore.config import resolve_run_config
    from srcore.engine.loop import train as run_training

    manager = get_manager(plugins)
    extra = [f"name={name}"] if name else []
    extra += [f"model.pretrained.path={pretrained}"] if pretrained else []
    if resume and not recipe and not configs:
        configs = (str(_saved_config(run_dir, name)),)
    cfg = resolve_run_config(manager.registries, recipe=recipe, files=configs, overrides=[*overrides, *extra])
    if nproc > 1 and int(os.environ.get("RANK", -1)) == -1:
        cmd = torchrun_command(nproc, sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else [])
        click.echo(f"launching {nproc} processes: {' '.join(cmd[1:])}", err=True)
        sys.exit(subprocess.call(cmd))
    from srcore.engine.dist import shutdown

    try:
        result = run_training(cfg, manager, run_dir=run_dir, resume=resume, device=device, progress=not no_progress)
    finally:
        shutdown()
    if result.run_dir and int(os.environ.get("RANK", 0)) == 0:
        click.echo(f"done: {result.step} steps; run folder {result.run_dir}")
        if result.best:
            click.echo(f"best {result.best['label']} = {result.best['value']:.4f} at step {result.best['step']}")
