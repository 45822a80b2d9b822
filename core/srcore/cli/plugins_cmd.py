"""``srcore plugins``: what is installed, what it registers, what failed."""

from __future__ import annotations

import json

import click

from srcore.cli.common import get_manager, handle_errors, plugin_option
from srcore.errors import PluginError
from srcore.plugins import PluginInfo

DETECTION = {"yes": "detected (srcore_detect_checkpoint)",
             "tryfirst": "detected (srcore_detect_checkpoint, asked first)",
             "trylast": "detected (srcore_detect_checkpoint, asked last: a catch-all)"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--traceback", "show_tb", is_flag=True, help="Show full tracebacks of failed plugins.")
@click.option("--check", is_flag=True,
              help="Exit 2 when any plugin failed to load (for CI and install scripts); the listing is printed first.")
@plugin_option
@handle_errors
def plugins(as_json: bool, show_tb: bool, check: bool, plugins: tuple[str, ...]) -> None:
    """List plugins: distribution, version, components by kind, checkpoint detection and training
    steps; failed plugins with their error (exit 0 unless --check)."""
    manager = get_manager(plugins)
    manager.probe_detectors()
    infos = manager.info()
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
    else:
        for info in infos:
            _echo_plugin(info, show_tb)
    failed = [i for i in infos if not i.ok]
    if failed and check:
        raise PluginError(f"{len(failed)} plugin(s) failed to load: {', '.join(i.label for i in failed)}")
    if failed and not as_json:
        click.echo(f"warning: {len(failed)} plugin(s) failed to load (listed above); "
                   "`srcore plugins --check` exits non-zero while any does", err=True)


def _echo_plugin(info: PluginInfo, show_tb: bool) -> None:
    """One plugin: a header line, then its error or its components, detection and steps."""
    dist = f"{info.distribution or '?'} {info.version or ''}".strip()
    status = click.style("ok", fg="green") if info.ok else click.style("FAILED", fg="red")
    click.echo(f"{click.style(info.name, bold=True)}  ({dist})  {status}")
    if not info.ok:
        click.echo(f"    error: {info.error}")
        if show_tb and info.traceback:
            click.echo(info.traceback)
        return
    for kind, ids in info.components.items():
        label = "losses:" if kind == "loss" else "training steps:" if kind == "step" else f"{kind}s:"
        click.echo(f"    {label:16} {', '.join(ids)}")
    if info.detection:
        click.echo(f"    {'checkpoints:':16} {DETECTION[info.detection]}")
    if info.detection_error:
        click.echo(f"    {'detection:':16} FAILED: {info.detection_error}")
