"""Checks that keep commands from destroying a user's files, run before any work is done.

A command computes every path it will write first, then asks here whether that is safe: no
output is one of its inputs, no two inputs write the same file, nothing existing is replaced
without ``--overwrite``, and the output folder can be created. Failing late (after loading a
model or cutting patches for an hour) or silently replacing originals is what this prevents.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from srcore.errors import SrcoreError

SHOWN = 3  # how many offending paths an error message lists


def _listing(paths: Sequence[Path]) -> str:
    shown = ", ".join(str(p) for p in paths[:SHOWN])
    return shown + (f" and {len(paths) - SHOWN} more" if len(paths) > SHOWN else "")


def refuse_existing(paths: Iterable[Path], hint: str = "use --overwrite to replace") -> None:
    """Raise when any of ``paths`` exists (as a file, folder or dangling symlink)."""
    found = [p for p in paths if p.exists() or p.is_symlink()]
    if found:
        what = "output file exists" if len(found) == 1 else f"{len(found)} output files exist"
        raise SrcoreError(f"{what} already: {_listing(found)}; {hint}")


def refuse_inputs_as_outputs(outputs: Iterable[Path], inputs: Iterable[Path]) -> None:
    """Raise when an output resolves (symlinks followed) to one of the inputs."""
    resolved = {p.resolve(): p for p in inputs}
    for out in outputs:
        src = resolved.get(out.resolve())
        if src is not None:
            raise SrcoreError(f"output {out} is the input {src}; choose another output")


def refuse_collisions(writers: Mapping[Path, Sequence[Path]]) -> None:
    """``writers`` maps each input to its outputs; raise when two inputs would write one file."""
    owner: dict[Path, Path] = {}
    for src, outs in writers.items():
        for out in outs:
            key = out.resolve()
            if key in owner and owner[key] != src:
                raise SrcoreError(f"inputs {owner[key]} and {src} would both write {out}; "
                                  "rename one or run them separately")
            owner[key] = src


def check_output_dir(folder: Path) -> None:
    """Raise unless ``folder`` exists as a writable folder or can be created (nothing is created)."""
    probe = folder.absolute()
    while not probe.exists():
        if probe.is_symlink():
            raise SrcoreError(f"cannot create output folder {folder}: {probe} is a dangling symlink")
        probe = probe.parent
    if not probe.is_dir():
        raise SrcoreError(f"cannot create output folder {folder}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SrcoreError(f"cannot write to output folder {folder}: {probe} is not writable")


def make_output_dir(folder: Path) -> None:
    """``mkdir -p`` with a one-line error naming the folder."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SrcoreError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
