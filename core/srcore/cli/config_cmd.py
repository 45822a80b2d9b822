"""``srcore config show|schema``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import click
import yaml

from srcore.cli.common import get_manager, handle_errors, plugin_option
from srcore.config import ABSENT, changed_fields


@click.group()
def config() -> None:
    """Show the resolved run configuration, its JSON Schema for editors, or import option files."""


@config.command()
@click.option("--recipe", "-r", help="Recipe id whose defaults start the configuration.")
@click.option(
    "--config", "-c", "files", multiple=True, type=click.Path(dir_okay=False),
    help="YAML, JSON (.json) or TOML (.toml) file (repeatable).",
)
@click.option(
    "--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a field, e.g. stages.0.steps=100."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@click.option("--all", "show_all", is_flag=True,
              help="Every field of every stage, also those its training step does not read.")
@click.option("--diff", "as_diff", is_flag=True,
              help="Print only what the files and --set changed relative to the recipe (or to the defaults).")
@plugin_option
@handle_errors
def show(
    recipe: str | None, files: tuple[str, ...], overrides: tuple[str, ...], as_json: bool, show_all: bool,
    as_diff: bool, plugins: tuple[str, ...],
) -> None:
    """Print the configuration a run would use (recipe <- files <- --set), after validation."""
    from srcore.config import config_to_dict, resolve_run_config

    registries = get_manager(plugins).registries
    data = config_to_dict(resolve_run_config(registries, recipe, files, overrides))
    if as_diff:
        base = _baseline(registries, recipe, data)
        changes = {key: {"from": old, "to": new} for key, old, new in changed_fields(base, data)}
        if as_json:
            click.echo(json.dumps(changes, indent=2))
        else:
            click.echo("\n".join(f"{k}: {_show(c['from'])} -> {_show(c['to'])}" for k, c in changes.items())
                       or f"no changes relative to {'recipe ' + recipe if recipe else 'the defaults'}")
        return
    if not show_all:
        from srcore.config import stage_view

        data["stages"] = [stage_view(registries, st) for st in data["stages"]]
    click.echo(json.dumps(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False))


def _baseline(registries: Any, recipe: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe alone, resolved the same way; without a recipe, the defaults around the same model id."""
    from srcore.config import RunConfig, config_to_dict, resolve_run_config

    if recipe:
        return config_to_dict(resolve_run_config(registries, recipe))
    return config_to_dict(RunConfig.model_validate({"model": {"id": data["model"]["id"]}}))


def _show(value: Any) -> str:
    return value if value is ABSENT else json.dumps(value)


@config.command()
@handle_errors
def schema() -> None:
    """Print the JSON Schema of run configuration files."""
    from srcore.config import run_config_schema

    click.echo(json.dumps(run_config_schema(), indent=2))


@config.command(name="import")
@click.argument("options", type=click.Path(exists=True, dir_okay=False))
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the YAML here instead of stdout.")
@handle_errors
def import_cmd(options: str, output: str | None) -> None:
    """Translate a BasicSR / traiNNer-redux / neosr (or old BasicSR: FASRGAN, FxSR, ESRGAN) option
    file into an srcore run config; every key it could not map is listed.

    \b
      srcore config import options/train_RealESRGANx4plus.yml -o realesrgan.yaml
      srcore train -c realesrgan.yaml
    """
    from pathlib import Path

    from srcore.config_import import import_file, to_yaml

    result = import_file(options)
    text = to_yaml(result, options)
    if output:
        Path(output).write_text(text)
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if result.unmapped:
        click.echo(f"not mapped ({len(result.unmapped)}): {', '.join(result.unmapped)}", err=True)


def _add_check() -> None:
    from srcore.cli.check_cmd import check

    config.add_command(check)


_add_check()
