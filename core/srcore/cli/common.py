"""Shared CLI plumbing: plugin options, readable errors, device choice."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from srcore.errors import ConfigError, SrcoreError

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = 2) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


def error_message(exc: SrcoreError) -> str:
    """What ``error:`` shows: a configuration error with a single problem (one bad ``-s``
    value, a YAML syntax error) fits on one line; a list of problems keeps one line each."""
    if isinstance(exc, ConfigError) and len(exc.problems) == 1:
        where = f" in {exc.source}" if exc.source else ""
        return f"invalid configuration{where}: {_join_lines(exc.problems[0])}"
    return str(exc)


def _join_lines(text: str) -> str:
    """Multi-line text (a YAML parser's message with its caret line) as one line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and ln.strip() != "^"]
    return " ".join(lines)


def handle_errors(func: F) -> F:
    """Turn ``SrcoreError`` into one readable message and exit code 2 (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SrcoreError as exc:
            fail(error_message(exc), exc.exit_code)
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
