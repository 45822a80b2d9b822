"""Checks that keep commands from destroying a user's files, run before any work is done.

A command computes every path it will write first, then asks here whether that is safe: no
output is one of its inputs, no two inputs write the same file, nothing existing is replaced
without ``--overwrite``, and the output folder can be created. Failing late (after loading a
model or cutting patches for an hour) or silently replacing originals is what this prevents.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from srcore.errors import SrcoreError

SHOWN = 3  # how many offending paths an error message lists
_TEMP = re.compile(r"\..+\.incomplete-(\d+)")


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


def check_output_dir(folder: Path, target: Path | None = None) -> None:
    """Raise unless ``folder`` exists as a writable folder or can be created (nothing is created);
    the message names ``target`` (the file to be written there) when given."""
    head = f"cannot write {target}" if target else f"cannot create output folder {folder}"
    probe = folder.absolute()
    while not probe.exists():
        if probe.is_symlink():
            raise SrcoreError(f"{head}: {probe} is a dangling symlink")
        probe = probe.parent
    if not probe.is_dir():
        raise SrcoreError(f"{head}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise SrcoreError(f"{head}: {probe} is not writable")


def make_output_dir(folder: Path) -> None:
    """``mkdir -p`` with a one-line error naming the folder; temporary files that a killed srcore
    process left there (``remove_stale_temps``) are removed, so a kill leaves nothing for long."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SrcoreError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    remove_stale_temps(folder)


def format_bytes(n: float) -> str:
    """``1234567`` -> ``1.2 MB`` (decimal units, as ``df -H`` and file managers show)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


def free_space(path: Path) -> int:
    """Free bytes (for this user) on the filesystem that will hold ``path``, which may not exist yet."""
    probe = path.absolute()
    while not probe.exists():
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_free_space(path: Path, needed: int) -> int:
    """Raise when the output of ``needed`` bytes cannot fit where ``path`` goes; return the free bytes."""
    free = free_space(path)
    if needed > free:
        raise SrcoreError(f"not enough free space for {path}: it needs about {format_bytes(needed)}, "
                          f"{format_bytes(free)} is free on its filesystem")
    return free


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove ``.<name>.incomplete-<pid>`` files/folders in ``folder`` whose process is gone
    (what a killed run leaves behind); return what was removed."""
    removed = []
    if not folder.is_dir():
        return removed
    for p in folder.iterdir():
        m = _TEMP.fullmatch(p.name)
        if m and not pid_alive(int(m.group(1))):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed.append(p)
    return removed


def temp_path(path: Path) -> Path:
    """The name a file or folder is written under until it is complete: ``.<name>.incomplete-<pid>``."""
    return path.with_name(f".{path.name}.incomplete-{os.getpid()}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def is_disk_full(exc: BaseException) -> bool:
    """A write failed for lack of space: ENOSPC, or said only in words (h5py's RuntimeError of a
    failed close)."""
    import errno

    return getattr(exc, "errno", None) == errno.ENOSPC or "No space left on device" in str(exc)
