"""``srcore config show|schema``."""

from __future__ import annotations

import json

import click
import yaml

from srcore.cli.common import get_manager, handle_errors, plugin_option


@click.group()
def config() -> None:
    """Show the resolved run configuration, or its JSON Schema for editors."""


@config.command()
@click.option("--recipe", "-r", help="Recipe id whose defaults start the configuration.")
@click.option(
    "--config", "-c", "files", multiple=True, type=click.Path(dir_okay=False), help="YAML/JSON file (repeatable)."
)
@click.option(
    "--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a field, e.g. stages.0.steps=100."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@plugin_option
@handle_errors
def show(
    recipe: str | None, files: tuple[str, ...], overrides: tuple[str, ...], as_json: bool, plugins: tuple[str, ...]
) -> None:
    """Print the configuration a run would use (recipe <- files <- --set), after validation."""
    from srcore.config import config_to_dict, resolve_run_config

    cfg = resolve_run_config(get_manager(plugins).registries, recipe, files, overrides)
    data = config_to_dict(cfg)
    click.echo(json.dumps(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False))


@config.command()
@handle_errors
def schema() -> None:
    """Print the JSON Schema of run configuration files."""
    from srcore.config import run_config_schema

    click.echo(json.dumps(run_config_schema(), indent=2))
