"""A run folder belongs to one run: an OS lock for the run's lifetime, stale temp files cleared.

Two ``srcore train`` on the same folder used to both exit 0 with one's results lost (checkpoints
of one, ``log.jsonl`` interleaved, ``config.json`` of the other). ``RunLock`` takes an exclusive
``flock`` on ``<run>/.lock``: the kernel drops it when the process dies, so ``kill -9`` never
leaves a stale lock, and a second run is told which PID holds the folder.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from types import TracebackType

from srcore.errors import SrcoreError

LOCK_FILE = ".lock"
STALE_PATTERNS = (".tmp_*", ".old_best_*")


class RunFolderBusy(SrcoreError):
    """Another live process trains in this run folder."""


class RunLock:
    """Exclusive lock on a run folder; removes the folder again if it made it and the run wrote nothing."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.created = False
        self._fd: int | None = None

    def __enter__(self) -> RunLock:
        if not self.enabled:
            return self
        self.created = not self.run_dir.exists()
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SrcoreError(f"cannot use run folder {self.run_dir}: {exc.strerror}") from None
        if not _try_flock(fd):
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderBusy(
                f"run folder {self.run_dir} is in use by another srcore run (PID {holder}); "
                "wait for it to finish, or choose another --name/--run-dir"
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._fd is None:
            return
        wrote_nothing = [p.name for p in self.run_dir.iterdir()] == [LOCK_FILE]
        if exc_type is not None and self.created and wrote_nothing:
            shutil.rmtree(self.run_dir, ignore_errors=True)  # a run refused before step 1 leaves no folder
        os.close(self._fd)  # releases the flock
        self._fd = None


def _try_flock(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # not POSIX: no OS lock available, run unguarded
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def clean_stale_temp(run_dir: Path) -> list[str]:
    """Remove temp files and checkpoint folders a killed run left (safe: the caller holds the run's lock)."""
    from srcore.engine.checkpoint import CKPT_DIR
    from srcore.outputs import remove_stale_temps

    removed = [path.name for path in remove_stale_temps(Path(run_dir))]  # config.json, log.jsonl ...
    root = Path(run_dir) / CKPT_DIR
    for pattern in STALE_PATTERNS if root.is_dir() else ():
        for path in root.glob(pattern):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path.name)
    if removed:
        print(f"note: removed {len(removed)} temporary file(s) left by an interrupted run in {run_dir}: "
              f"{', '.join(sorted(removed)[:4])}", file=sys.stderr)
    return removed
