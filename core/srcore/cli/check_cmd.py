"""``srcore config check``: the preflight of ``srcore train`` alone, in seconds, writing nothing."""

from __future__ import annotations

import time

import click

from srcore.cli.common import get_manager, handle_errors, plugin_option


@click.command(name="check")
@click.option("--recipe", "-r", metavar="ID", help="Recipe to start from.")
@click.option("--config", "-c", "files", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML/JSON/TOML config merged over the recipe (repeatable).")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one value (repeatable).")
@click.option("--device", help="cpu, cuda, cuda:1 or auto (default: the config's train.device).")
@plugin_option
@handle_errors
def check(recipe: str | None, files: tuple[str, ...], overrides: tuple[str, ...], device: str | None,
          plugins: tuple[str, ...]) -> None:
    """Check a run as `srcore train` would before step 1, without training or writing anything.

    Every stage is built with its networks, losses and discriminators and fed one batch of the
    configured patch shape (forward and loss, no optimizer step); every training image is
    checked against the patch size and one crop of each validation set goes through the
    metrics. All problems are listed at once with their config paths (exit 2).

    \b
    Example:
      srcore config check -r fasrgan:fasrgan-x4 -s data.train.hr=DIV2K/HR -s data.train.patch_size=128
    """
    from srcore.config import resolve_run_config
    from srcore.engine import dist as D
    from srcore.engine.loop import build_run, check_run

    t0 = time.perf_counter()
    manager = get_manager(plugins)
    cfg = resolve_run_config(manager.registries, recipe=recipe, files=files, overrides=overrides)
    dev = D.device_for(device or cfg.train.device, D.DistInfo())
    parts = build_run(cfg, manager, dev)
    report = check_run(cfg, manager, parts, dev, D.DistInfo())
    click.echo(f"ok: {report.summary()} ({time.perf_counter() - t0:.1f} s in all); "
               f"{len(cfg.stages)} stage(s), {sum(s.steps for s in cfg.stages)} steps would run")
