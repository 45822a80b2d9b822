"""The ``srcore`` command line. Subcommands are imported only when invoked, so ``--help`` is fast."""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from srcore import __version__

# name -> "module:attribute"; each command lives in its own module.
COMMANDS: dict[str, str] = {
    "plugins": "srcore.cli.plugins_cmd:plugins",
    "config": "srcore.cli.config_cmd:config",
    "train": "srcore.cli.train_cmd:train",
    "eval": "srcore.cli.eval_cmd:eval_cmd",
    "upscale": "srcore.cli.upscale_cmd:upscale",
    "export": "srcore.cli.export_cmd:export",
    "data": "srcore.cli.data_cmd:data",
    "runs": "srcore.cli.runs_cmd:runs",
    "demo": "srcore.cli.demo_cmd:demo",
}

HELP = {
    "plugins": "List installed plugins and their components.",
    "config": "Show the resolved run configuration or its JSON Schema.",
    "train": "Train a model from a recipe and/or config file.",
    "eval": "Evaluate a checkpoint, a folder of results or bicubic on benchmark sets.",
    "upscale": "Super-resolve images with a checkpoint (tiling, self-ensemble, condition maps).",
    "export": "Export a checkpoint to ONNX or safetensors.",
    "data": "Prepare training data (HDF5 patches or PNG folders).",
    "runs": "Inspect training runs.",
    "demo": "Train a small model on bundled photos for a few CPU minutes and compare it with bicubic.",
}


_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


class LazyGroup(click.Group):
    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        """Click's own usage errors as one ``error:`` line naming the option, exit 2, like srcore's."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except _NO_ARGS_IS_HELP as exc:  # a bare group: its help, as click prints it
            click.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            click.secho(f"error: {exc.format_message()}{where}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.secho(f"error: {exc.format_message()}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, HELP.get(name, "")) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="srcore")
def main() -> None:
    """srcore: train, evaluate and run single-image super-resolution models.

    Methods come from plugins (`srcore plugins` lists them). Shell completion:
    eval "$(_SRCORE_COMPLETE=bash_source srcore)" (zsh: zsh_source, fish: fish_source).
    """


def run(argv: Any = None) -> None:
    main.main(args=argv, prog_name="srcore")
