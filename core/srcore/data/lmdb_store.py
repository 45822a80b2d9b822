"""LMDB image stores in BasicSR's layout, and a training dataset reading them.

Layout (``basicsr.utils.lmdb_util.make_lmdb_from_imgs``), so existing BasicSR LMDBs of DIV2K /
Flickr2K sub-images work as ``data.train.hr: DIV2K_train_HR_sub.lmdb``::

    X.lmdb/data.mdb, lock.mdb     the LMDB environment
    X.lmdb/meta_info.txt          one line per image: ``<key>.png (h,w,c) <compression level>``

Keys are the image names without extension (``0001_s001``), UTF-8 (BasicSR: ASCII); values are
PNG bytes from ``cv2.imencode`` (BGR), decoded here with OpenCV as BasicSR does. ``--raw``
stores the uint8 BGR pixels instead (``h*w*c`` bytes) and writes ``raw`` as the compression
level: faster to read, ~2-3x larger, and srcore-specific (BasicSR cannot decode those values).

Readers open the environment as BasicSR does (readonly, lock=False, readahead=False,
meminit=False), once per process: an LMDB handle must not be used across ``fork``, so a
worker reopens it (see ``_read_txn``) and the dataset is safe with DataLoader workers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srcore.errors import SrcoreError

LMDB_SUFFIX = ".lmdb"
META = "meta_info.txt"
RAW = "raw"


def is_lmdb(path: str | Path) -> bool:
    return Path(path).suffix.lower() == LMDB_SUFFIX


def _lmdb() -> Any:
    try:
        import lmdb
    except ImportError:
        raise SrcoreError("reading or writing .lmdb needs the 'lmdb' package: pip install lmdb") from None
    return lmdb


@dataclass(frozen=True)
class Entry:
    shape: tuple[int, ...]  # (h, w, c)
    level: str  # PNG compression level, or "raw"


def parse_meta_info(path: Path) -> dict[str, Entry]:
    """Keys (in file order) and their shape/level from ``meta_info.txt``."""
    out: dict[str, Entry] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SrcoreError(f"cannot read {path}: {exc}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rsplit(" ", 2)
        try:
            name, shape_text, level = parts
            shape = tuple(int(v) for v in shape_text.strip("()").split(","))
            if len(shape) != 3:
                raise ValueError
        except ValueError:
            raise SrcoreError(f"{path} line {n}: expected '<name>.png (h,w,c) <level>', got {line!r}") from None
        key = name.rsplit(".", 1)[0] if "." in name else name
        out[key] = Entry(shape, level)
    if not out:
        raise SrcoreError(f"{path} lists no image")
    return out


class LmdbImages:
    """Random access by key to the images of one LMDB (BasicSR layout), as OpenCV BGR arrays."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise SrcoreError(f"{self.path} is not an LMDB folder (BasicSR's X.lmdb/ with data.mdb and {META})")
        missing = [n for n in ("data.mdb", META) if not (self.path / n).is_file()]
        if missing:
            raise SrcoreError(f"{self.path} lacks {' and '.join(missing)} (BasicSR's LMDB layout)")
        self.meta = parse_meta_info(self.path / META)
        self.keys = list(self.meta)
        self._real = self.path.resolve()  # one environment per database, however it is spelled
        self._handle()  # fail now, naming the file, rather than in a worker

    def __len__(self) -> int:
        return len(self.keys)

    def _handle(self) -> Any:
        return _read_txn(self._real)

    def read(self, key: str) -> np.ndarray:
        """The stored image: (h, w[, c]) uint8 BGR as cv2 decodes it (or the raw bytes reshaped)."""
        value = self._handle().get(key.encode("utf-8"))
        if value is None:
            raise SrcoreError(f"{self.path}: key {key!r} of {META} is not in the database")
        entry = self.meta[key]
        if entry.level == RAW:
            arr = np.frombuffer(value, np.uint8)
            if arr.size != int(np.prod(entry.shape)):
                raise SrcoreError(f"{self.path}: raw value of {key!r} has {arr.size} bytes, {META} says {entry.shape}")
            return arr.reshape(entry.shape)
        from srcore.data.io import _cv2

        cv2 = _cv2()
        arr = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
        if arr is None:
            raise SrcoreError(f"{self.path}: the value of {key!r} is not a decodable image")
        return arr

    def tensor(self, key: str) -> Any:
        """(3, H, W) float32 RGB in [0, 1], by srcore's reading rules (``io.array_to_tensor``)."""
        from srcore.data.io import array_to_tensor

        return array_to_tensor(self.read(key), f"{self.path}:{key}")


_OPEN: dict[Path, tuple[int, Any, Any]] = {}  # path -> (pid, env, read transaction)


def _read_txn(path: Path) -> Any:
    """A read transaction on the LMDB at ``path`` (resolved), one environment per path and process.

    py-lmdb refuses to open an environment twice in a process, and a forked DataLoader worker
    inherits the parent's: the inherited copy is closed (which only unmaps it in the child) and
    the database reopened."""
    pid = os.getpid()
    cached = _OPEN.get(path)
    if cached is not None:
        if cached[0] == pid:
            return cached[2]
        with contextlib.suppress(Exception):
            cached[1].close()
    try:
        env = _lmdb().open(str(path), readonly=True, lock=False, readahead=False, meminit=False)
    except Exception as exc:  # lmdb.Error and its subclasses
        raise SrcoreError(f"cannot open LMDB {path}: {exc}") from None
    txn = env.begin(write=False)
    _OPEN[path] = (pid, env, txn)
    return txn


class LmdbWriter:
    """Write images (RGB uint8 arrays) under keys into a new LMDB folder in BasicSR's layout."""

    BATCH = 1000  # puts per transaction commit (BasicSR: 5000)

    def __init__(self, path: Path, map_size: int, level: int = 1, raw: bool = False) -> None:
        self.path, self.level, self.raw = path, level, raw
        path.mkdir(parents=True)
        self.env = _lmdb().open(str(path), map_size=map_size)
        self.txn = self.env.begin(write=True)
        self.meta = open(path / META, "w", encoding="utf-8")  # noqa: SIM115 (closed in close())
        self.count = 0

    def put(self, key: str, value: bytes, shape: tuple[int, int, int]) -> None:
        """Store ``value`` (from ``lmdb_value``) of an image of ``shape`` (h, w, c) under ``key``."""
        self.txn.put(key.encode("utf-8"), value)
        h, w, c = shape
        self.meta.write(f"{key}.png ({h},{w},{c}) {RAW if self.raw else self.level}\n")
        self.count += 1
        if self.count % self.BATCH == 0:
            self.txn.commit()
            self.txn = self.env.begin(write=True)

    def close(self) -> None:
        """Commit the last transaction; the files are closed even when that fails (a full disk)."""
        try:
            self.txn.commit()
        finally:
            self.env.close()
            self.meta.close()

    def abort(self) -> None:
        for step in (self.txn.abort, self.env.close, self.meta.close):
            with contextlib.suppress(Exception):  # cleaning up a failed write: the folder is deleted next
                step()


NEARLY_FULL = 16 << 20  # free bytes below which a failed LMDB write is put down to a full disk


def lmdb_map_size(raw_bytes: int) -> int:
    """The map is sparse on disk: room for every value uncompressed, twice over."""
    return max(2 * raw_bytes, 1 << 26)


def lmdb_value(rgb: np.ndarray, raw: bool = False, level: int = 1) -> bytes:
    """What an LMDB stores for an RGB uint8 image: PNG bytes (BGR, as BasicSR), or raw BGR pixels."""
    from srcore.data.subimages import encode_png

    return np.ascontiguousarray(rgb[:, :, ::-1]).tobytes() if raw else encode_png(rgb, level)


def write_lmdb(plan: Any, output: Path, output_lr: Path | None, level: int = 1, raw: bool = False,
               progress: Callable[[int], Any] | None = None, jobs: int = 1) -> None:
    """The sub-images of ``plan`` (``srcore.data.subimages.SubimagePlan``) as LMDB(s): HR into
    ``output``, LR into ``output_lr``; ``jobs`` processes cut and encode the images, this one
    writes. Built in temporary folders renamed when complete."""
    import functools
    import shutil

    from srcore.data.prepare import replace_dir, write_error
    from srcore.data.subimages import encoded_images
    from srcore.outputs import free_space, temp_path

    outs = [output] + ([output_lr] if output_lr is not None else [])
    shapes = [(plan.opts.size, plan.opts.size, 3), (plan.lr_size, plan.lr_size, 3)]
    tmps = [temp_path(o) for o in outs]
    writers: list[LmdbWriter] = []
    try:
        for t in tmps:
            writers.append(LmdbWriter(t, lmdb_map_size(plan.raw_bytes), level, raw))
        with encoded_images(plan, functools.partial(lmdb_value, raw=raw, level=level), jobs) as images:
            for keys, hr, lr in images:
                for k, key in enumerate(keys):
                    writers[0].put(key, hr[k], shapes[0])
                    if len(writers) > 1 and lr is not None:
                        writers[1].put(key, lr[k], shapes[1])
                if progress:
                    progress(len(keys))
        for w in writers:
            w.close()
        writers.clear()
        for t, o in zip(tmps, outs):
            replace_dir(t, o)
    except BaseException as exc:
        error = None
        if isinstance(exc, OSError) or type(exc).__module__ == "lmdb":
            error = write_error(exc, output)
            if free_space(output) < NEARLY_FULL and "no space" not in str(error):
                # LMDB reports a full disk as mdb_txn_commit's EIO (its pages are written through the map)
                error = SrcoreError(f"no space left on device writing {output} ({exc})")
        for w in writers:
            w.abort()
        for t in tmps:
            shutil.rmtree(t, ignore_errors=True)
        if error is not None:
            raise error from None
        raise


# -- training -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LmdbKey:
    """One image of an LMDB, standing where FolderPatches has a file path."""

    images: LmdbImages
    key: str

    def __str__(self) -> str:
        return f"{self.images.path}:{self.key}"


class _KeyReader:
    """FolderPatches' reader (its decoded-image cache for files): LMDB values are decoded per
    sample, the page cache holds the database."""

    def read(self, item: LmdbKey) -> Any:
        return item.images.tensor(item.key)


def paired_keys(hr: LmdbImages, lr: LmdbImages) -> list[LmdbKey]:
    """The LR image of each HR key (same key, as BasicSR pairs its lq/gt LMDBs)."""
    missing = [k for k in hr.keys if k not in lr.meta]
    if missing:
        from srcore.outputs import _listing

        raise SrcoreError(f"data.train.lr {lr.path} lacks {len(missing)} key(s) of data.train.hr {hr.path}: "
                          f"{_listing(missing)} "
                          "(pairs are made by equal keys; `data prepare --subimages --lr-dir` writes both)")
    return [LmdbKey(lr, k) for k in hr.keys]


def make_lmdb_dataset(cfg: Any, *, scale: int, info: Any, registries: Any, root: Any) -> Any:
    """``data.train.hr: X.lmdb`` (and ``data.train.lr: Y.lmdb`` paired by key, else LR made by
    ``data.train.degradation``): FolderPatches over the stored images -- same random crop,
    flips, pairing checks and on-the-fly degradation as for a folder."""
    from srcore.data.datasets import FolderPatches, build_degradation
    from srcore.data.io import list_images
    from srcore.data.sets import resolve_set

    hr = LmdbImages(resolve_set(cfg.hr, root))
    lr_items = None
    if cfg.lr:
        if not is_lmdb(cfg.lr):
            raise SrcoreError(f"data.train.lr {cfg.lr}: an LMDB data.train.hr pairs with an LMDB data.train.lr (.lmdb)")
        lr_items = paired_keys(hr, LmdbImages(resolve_set(cfg.lr, root)))
    degradation = None if lr_items is not None else build_degradation(cfg.degradation, scale, registries)
    lr_real = list_images(resolve_set(cfg.lr_real, root)) if cfg.lr_real else None
    if cfg.lr_real and not lr_real:
        raise SrcoreError(f"data.train.lr_real: no images in {cfg.lr_real}")
    ds = FolderPatches(
        [LmdbKey(hr, k) for k in hr.keys], scale=scale, info=info, patch_size=cfg.patch_size, flip=cfg.flip,
        rot90=cfg.rot90, repeat=cfg.repeat, lr_files=lr_items, degradation=degradation, lr_real_files=lr_real,
    )
    ds._cache = _KeyReader()  # type: ignore[assignment]
    return ds
