"""``srcore eval`` (wired by the issue that owns it)."""

from __future__ import annotations

import click

from srcore.cli.common import fail


@click.command(name="eval", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def eval_cmd(args: tuple[str, ...]) -> None:
    """Not available yet in this build."""
    fail("'srcore eval' is not available yet in this build")
