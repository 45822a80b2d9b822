"""Shared CLI plumbing: plugin options, readable errors, device choice."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from srcore.errors import SrcoreError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn ``SrcoreError`` into one readable message and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SrcoreError as exc:
            fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            fail("interrupted", 130)

    return wrapper  # type: ignore[return-value]


def plugin_option(func: F) -> F:
    return click.option(
        "--plugin",
        "plugins",
        multiple=True,
        metavar="NAME",
        help="Load only this plugin (repeatable); default: every installed plugin.",
    )(func)


def get_manager(plugins: Sequence[str] = ()) -> Any:
    """The plugin manager with ``plugins`` (or all installed ones) loaded."""
    from srcore.plugins import load_plugins

    return load_plugins(only=list(plugins) or None)
