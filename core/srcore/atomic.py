"""Writing result files atomically, with one-line errors naming the path and the option.

A result (eval's JSON/CSV, an exported model, an image) is written under a temporary name in
the same folder and renamed into place, so a crash or a full disk never leaves a 0-byte or
half-written file under the final name, and a failed write removes its temporary file.
``check_writable`` runs the cheap checks before a command does its work, so an impossible
``--json`` path fails in a second rather than after an hour of evaluation.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from srcore.errors import SrcoreError
from srcore.outputs import temp_path


def check_writable(path: str | Path, what: str, error: type[SrcoreError] = SrcoreError) -> Path:
    """Raise unless a file can be created at ``path`` (its folder exists or can be made, and is
    writable; ``path`` itself is not a folder). Nothing is created."""
    p = Path(path)
    if p.is_dir():
        raise error(f"{what} {p} is a folder, not a file")
    probe = p.absolute().parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise error(f"{what} {p}: cannot write there, {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise error(f"{what} {p}: cannot write there, {probe} is not writable")
    return p


@contextlib.contextmanager
def atomic_target(path: str | Path, what: str, error: type[SrcoreError] = SrcoreError) -> Iterator[Path]:
    """Yield a temporary path to write; it replaces ``path`` when the block succeeds and is
    removed when it fails. ``OSError`` (no such folder, read-only, disk full) becomes ``error``."""
    p = check_writable(path, what, error)
    tmp = temp_path(p)  # .<name>.incomplete-<pid>, the tree's one temp-name convention
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, p)
    except OSError as exc:
        raise error(f"{what} {p}: cannot write: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str, what: str, error: type[SrcoreError] = SrcoreError) -> Path:
    """Write ``data`` (text as UTF-8) to ``path`` atomically; see ``atomic_target``."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_target(path, what, error) as tmp:
        tmp.write_bytes(payload)
    return Path(path)
