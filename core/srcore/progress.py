"""Progress bars for long commands, one policy for all of them.

* ``--no-progress`` (``enabled=False``): nothing is drawn.
* default (``enabled=None``): a tqdm bar with ETA on stderr only when stderr is a terminal.
  Logs, pipes and CI get no bar and no periodic lines: the result (table, "wrote ...") is what
  they need, and carriage-return redraws make log files unreadable.
* ``--progress`` (``enabled=True``): the bar even when stderr is not a terminal.

stdout is never touched, so ``srcore eval ... > table.txt`` stays clean.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO, TypeVar

import click

T = TypeVar("T")


def progress_option(func: Any) -> Any:
    """``--progress/--no-progress`` (default: a bar when stderr is a terminal)."""
    return click.option(
        "--progress/--no-progress", "progress", default=None,
        help="Progress bar with ETA on stderr [default: only when stderr is a terminal].",
    )(func)


def wanted(enabled: bool | None, stream: TextIO | None = None) -> bool:
    """Whether to draw: the explicit choice, else whether ``stream`` (stderr) is a terminal."""
    if enabled is not None:
        return enabled
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def bar(
    items: Iterable[T], *, desc: str, total: int | None = None, unit: str = "it", enabled: bool | None = None,
    leave: bool = False, position: int | None = None,
) -> Iterator[T]:
    """Iterate ``items`` under a tqdm bar (rate and ETA), or plainly when no bar is wanted."""
    if not wanted(enabled):
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit=unit, leave=leave, position=position, file=sys.stderr,
                    **_screen())


def _screen() -> dict[str, int]:
    """stderr's size for tqdm; 80x24 for a terminal that reports 0x0 (a fresh pty does, and
    tqdm then hides every bar); nothing (tqdm decides) when stderr is not a terminal."""
    try:
        size = os.get_terminal_size(sys.stderr.fileno())
    except (OSError, ValueError, AttributeError):
        return {}
    return {"ncols": size.columns or 80, "nrows": size.lines or 24}


@contextmanager
def phases(names: Sequence[str], *, desc: str, enabled: bool | None = None) -> Iterator[Any]:
    """A bar over named phases: ``with phases(["trace", "check"], desc="export") as step: ...
    step("trace")`` marks the start of each phase (shown as the bar's postfix)."""
    if not wanted(enabled):
        yield lambda name: None
        return
    from tqdm import tqdm

    t = tqdm(total=len(names), desc=desc, unit="phase", leave=False, file=sys.stderr, **_screen())
    started = [False]

    def step(name: str) -> None:
        if started[0]:
            t.update(1)
        started[0] = True
        t.set_postfix_str(name)

    try:
        yield step
        t.update(t.total - t.n)
    finally:
        t.close()
