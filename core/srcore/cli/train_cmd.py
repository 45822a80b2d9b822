"""``srcore train``: compose the run configuration, then hand it to the engine.

``--nproc N`` (N > 1), ``--nnodes``/``--rdzv-endpoint`` or ``--max-restarts`` re-launch the
same command under torchrun (``python -m torch.distributed.run ... -m srcore train ...``), so
``torchrun -m srcore train ...`` and ``srcore train --nproc N`` are the same run. The launcher
starts torchrun with a parent-death signal, so killing the launcher (even with -9) stops the
agent, whose ranks in turn die with it (``srcore.engine.dist.die_with_parent``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from srcore.cli.common import get_manager, handle_errors, plugin_option
from srcore.errors import ConfigError

# launcher options (value-taking): torchrun's business, not the ranks'
LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint", "--rdzv-id", "--max-restarts")


@dataclass(frozen=True)
class Launch:
    """Where and how torchrun runs the ranks: one node (``--standalone``) or a c10d rendezvous."""

    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None
    rdzv_id: str = "srcore"
    max_restarts: int = 0

    def torchrun_args(self) -> list[str]:
        """torchrun's options for this launch (``--nproc-per-node`` aside)."""
        if self.rdzv_endpoint is None:
            rdzv = ["--standalone"]
        else:
            # no --node-rank: c10d assigns the ranks (torchrun ignores it, with a warning)
            rdzv = [f"--nnodes={self.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={self.rdzv_endpoint}",
                    f"--rdzv-id={self.rdzv_id}"]
        return [*rdzv, *([f"--max-restarts={self.max_restarts}"] if self.max_restarts else [])]


def check_launch(nproc: int, launch: Launch) -> None:
    """One-line errors for launcher options that torchrun would reject with a traceback (or hang on)."""
    from srcore.errors import SrcoreError

    if nproc < 1:
        raise SrcoreError(f"--nproc {nproc}: give 1 or more processes per node")
    if launch.nnodes < 1 or launch.max_restarts < 0:
        raise SrcoreError("--nnodes must be 1 or more and --max-restarts 0 or more")
    if launch.nnodes > 1 and launch.rdzv_endpoint is None:
        raise SrcoreError(f"--nnodes {launch.nnodes}: the nodes meet at a rendezvous: give --rdzv-endpoint HOST:PORT "
                          "(the same on every node, e.g. the first node's address)")
    if not 0 <= launch.node_rank < launch.nnodes:
        raise SrcoreError(f"--node-rank {launch.node_rank}: must be in 0..{launch.nnodes - 1} "
                          f"(--nnodes {launch.nnodes})")
    if launch.rdzv_endpoint is not None and not re.fullmatch(r"\[?[\w.:-]+\]?:\d+", launch.rdzv_endpoint):
        raise SrcoreError(f"--rdzv-endpoint {launch.rdzv_endpoint!r}: expected HOST:PORT, e.g. node01:29400")


def torchrun_command(nproc: int, argv: list[str], launch: Launch | None = None, command: str = "train") -> list[str]:
    """The torchrun command line that runs ``srcore <command>`` with ``argv`` on ``nproc`` processes per node."""
    rest = _drop_launch_options(argv)
    return [sys.executable, "-m", "torch.distributed.run", *(launch or Launch()).torchrun_args(),
            f"--nproc-per-node={nproc}", "-m", "srcore", command, *rest]


def _drop_launch_options(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in LAUNCH_OPTIONS:
            skip = True
            continue
        if a.startswith(tuple(f"{o}=" for o in LAUNCH_OPTIONS)):
            continue
        out.append(a)
    return out


def launch_torchrun(cmd: list[str]) -> int:
    """Run torchrun to completion; it gets SIGTERM (and stops its ranks) when this process dies, however."""
    from srcore.engine.dist import parent_death_hook

    proc = subprocess.Popen(cmd, preexec_fn=parent_death_hook(signal.SIGTERM))
    try:
        return proc.wait()
    except KeyboardInterrupt:  # the terminal sent SIGINT to torchrun too: let it stop its ranks
        return proc.wait()


def _has_checkpoint(run_dir: Path) -> bool:
    """A restarted worker resumes when the run got as far as a checkpoint, else starts over."""
    from srcore.engine.checkpoint import list_checkpoints

    found = bool(list_checkpoints(run_dir))
    if int(os.environ.get("RANK", 0)) == 0:
        restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
        click.echo(f"restart {restart} after a failed worker: "
                   f"{'resuming from the latest verified checkpoint' if found else 'no checkpoint yet, starting over'}",
                   err=True)
    return found


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


_MISSING_PLUGIN = re.compile(r"belongs to plugin (\S+), which is not installed")


def _name_recorded_plugins(exc: ConfigError, run_dir: str | None, name: str | None, registries: Any) -> ConfigError:
    """On ``--resume``, add what to pip install for each plugin the config needs and this machine
    lacks, from the distributions the run's newest checkpoint recorded in its meta.json."""
    from srcore.config import RunConfig
    from srcore.engine.checkpoint import latest_checkpoint
    from srcore.plugins import recorded_distribution

    if run_dir is None and name is None:
        return exc
    folder = Path(run_dir) if run_dir is not None else Path(RunConfig.model_fields["out_dir"].default) / str(name)
    ckpt = latest_checkpoint(folder)
    if ckpt is None:
        return exc
    try:
        recorded = json.loads((ckpt / "meta.json").read_text()).get("plugins") or {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return exc
    wanted = dict.fromkeys(m.group(1) for p in exc.problems for m in _MISSING_PLUGIN.finditer(p))
    needs = [d for d in (recorded_distribution(p, recorded, registries) for p in wanted) if d]
    if not needs:
        return exc
    pins = " ".join("==".join(d.split(" ", 1)) for d in needs)
    note = f"this run was made with {', '.join(needs)} (recorded in {ckpt / 'meta.json'}): pip install {pins}"
    return ConfigError([*exc.problems, note], exc.source)


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
@click.option("--nproc", type=int, default=1, show_default=True, help="Processes per node (DDP through torchrun).")
@click.option("--nnodes", type=int, default=1, show_default=True, help="Nodes (each runs this command).")
@click.option("--node-rank", type=int, default=0, show_default=True,
              help="This node's index, 0..nnodes-1 (checked; the c10d rendezvous assigns the ranks).")
@click.option("--rdzv-endpoint", metavar="HOST:PORT", help="c10d rendezvous of the nodes (the same on every node).")
@click.option("--rdzv-id", default="srcore", show_default=True, help="Rendezvous id (the same on every node).")
@click.option("--max-restarts", type=int, default=0, show_default=True,
              help="Restart the ranks this many times after a failure; they resume from the latest checkpoint.")
@click.option("--no-progress", is_flag=True, help="No progress bar (logs still go to log.jsonl).")
@handle_errors
def train(recipe: str | None, configs: tuple[str, ...], overrides: tuple[str, ...], plugins: tuple[str, ...],
          run_dir: str | None, name: str | None, pretrained: str | None, resume: bool, device: str | None,
          nproc: int, nnodes: int, node_rank: int, rdzv_endpoint: str | None, rdzv_id: str, max_restarts: int,
          no_progress: bool) -> None:
    """Train a model from a recipe and/or config files.

    \b
    Examples:
      srcore train -r srcnn:demo-x3 --name demo
      srcore train -c my.yaml -s stages.0.steps=2000 -s train.seed=3
      srcore train -c my.yaml --name big --resume
      srcore train --run-dir runs/big --resume     # the run's own config.json; -s still applies
      srcore train -c my.yaml --nproc 2          # or: torchrun --nproc-per-node 2 -m srcore train -c my.yaml
      srcore train -c my.yaml --nproc 8 --nnodes 2 --node-rank 0 --rdzv-endpoint node01:29400
    """
    from srcore.config import resolve_run_config
    from srcore.engine.dist import elastic_restart, enter_rank, shutdown
    from srcore.engine.loop import train as run_training

    under_torchrun = enter_rank()
    launch = Launch(nnodes, node_rank, rdzv_endpoint, rdzv_id, max_restarts)
    check_launch(nproc, launch)
    manager = get_manager(plugins)
    extra = [f"name={name}"] if name else []
    extra += [f"model.pretrained.path={pretrained}"] if pretrained else []
    if resume and not recipe and not configs:
        configs = (str(_saved_config(run_dir, name)),)
    try:
        cfg = resolve_run_config(manager.registries, recipe=recipe, files=configs, overrides=[*overrides, *extra])
    except ConfigError as exc:
        raise (_name_recorded_plugins(exc, run_dir, name, manager.registries) if resume else exc) from None
    if (nproc > 1 or launch != Launch(rdzv_id=rdzv_id)) and not under_torchrun:
        cmd = torchrun_command(nproc, sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else [], launch)
        click.echo(f"launching {nproc} process(es) per node: {' '.join(cmd[1:])}", err=True)
        sys.exit(launch_torchrun(cmd))
    if elastic_restart():
        resume = resume or _has_checkpoint(Path(run_dir) if run_dir is not None else cfg.run_dir)

    try:
        result = run_training(cfg, manager, run_dir=run_dir, resume=resume, device=device, progress=not no_progress)
    finally:
        shutdown()
    if result.run_dir and int(os.environ.get("RANK", 0)) == 0:
        click.echo(f"done: {result.step} steps; run folder {result.run_dir}")
        if result.best:
            click.echo(f"best {result.best['label']} = {result.best['value']:.4f} at step {result.best['step']}")
