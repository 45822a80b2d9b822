"""``srcore upscale`` (wired by the issue that owns it)."""

from __future__ import annotations

import click

from srcore.cli.common import fail


@click.command(name="upscale", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def upscale(args: tuple[str, ...]) -> None:
    """Not available yet in this build."""
    fail("'srcore upscale' is not available yet in this build")
