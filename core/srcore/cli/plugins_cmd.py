"""``srcore plugins``: what is installed, what it registers, what failed."""

from __future__ import annotations

import json

import click

from srcore.cli.common import get_manager, handle_errors, plugin_option


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--traceback", "show_tb", is_flag=True, help="Show full tracebacks of failed plugins.")
@plugin_option
@handle_errors
def plugins(as_json: bool, show_tb: bool, plugins: tuple[str, ...]) -> None:
    """List plugins: distribution, version and components by kind; failed plugins with their error."""
    infos = get_manager(plugins).info()
    if as_json:
        click.echo(json.dumps([i.as_dict() for i in infos], indent=2))
        return
    for info in infos:
        dist = f"{info.distribution or '?'} {info.version or ''}".strip()
        status = click.style("ok", fg="green") if info.ok else click.style("FAILED", fg="red")
        click.echo(f"{click.style(info.name, bold=True)}  ({dist})  {status}")
        if not info.ok:
            click.echo(f"    error: {info.error}")
            if show_tb and info.traceback:
                click.echo(info.traceback)
            continue
        for kind, ids in info.components.items():
            label = "losses:" if kind == "loss" else f"{kind}s:"
            click.echo(f"    {label:16} {', '.join(ids)}")
