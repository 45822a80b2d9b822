"""HDF5 patch files with datasets ``lr`` and ``hr`` (the layout of seed004's data_aug.py).

Arrays are uint8, (N, H, W) for Y patches or (N, H, W, 3) for RGB; ``lr`` is either
(N, H/s, W/s[, 3]) or, for pre-upsampled data (``--same_size``), the HR shape. Any other dtype
(float32 patches in [0, 1], 16-bit) is read only when its dataset declares the value of white
in the attribute ``max_value``, else refused when the dataset is built, since guessing a range
would train on images 255 times too dark or too bright without a word. The file is
opened lazily in each process that reads it (h5py handles must not cross ``fork``), so the
dataset is safe with DataLoader worker processes.

``H5Patches.read`` reads a whole batch of indices at once, in file order (sorted, duplicates read
once). A contiguous, unfiltered dataset (what ``srcore data prepare`` and data_aug.py write) is
read with ``preadv`` at its byte offset, one call per run of consecutive patches, which is
several times faster than an HDF5 hyperslab selection and keeps no cache: a worker's memory does
not grow with the file. Other layouts (chunked, compressed) are read by h5py, whose chunk cache
stays at its default (1 MiB per dataset): random patches rarely share a chunk, so a larger cache
would only grow each worker, and memory stays bounded whatever the file size.

A sharded layout (``data prepare --shards N``) is a directory ``OUT.h5.shards`` holding
``shard-00000.h5``, ... (each the single-file format, patches in global order) and an
``index.json`` with the patch count of each; ``ShardedH5Patches`` reads it with the interface of
``H5Patches`` and global indices: every shard is checked against the index when it is built, and
opened for reading only in a process that reads from it (a rank reads only its own shards).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srcore.errors import SrcoreError

H5_SUFFIXES = (".h5", ".hdf5")
SHARDS_FORMAT = "srcore-h5-shards"
SHARDS_INDEX = "index.json"


def is_h5(path: str | Path) -> bool:
    return Path(path).suffix.lower() in H5_SUFFIXES


def is_h5_shards(path: str | Path) -> bool:
    """A directory of HDF5 shards written by ``data prepare --shards`` (it holds ``index.json``)."""
    return (Path(path) / SHARDS_INDEX).is_file()


class H5Patches:
    """Lazy random access to (lr, hr) uint8 patches as CHW float tensors in [0, 1]."""

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        self._file: Any = None
        self._pid: int | None = None
        self._fdesc: int | None = None
        try:
            with h5py.File(self.path, "r") as f:
                missing = [k for k in ("lr", "hr") if k not in f]
                if missing:
                    raise SrcoreError(f"{self.path}: HDF5 patch file lacks dataset(s) {', '.join(missing)}")
                self.lr_shape, self.hr_shape = tuple(f["lr"].shape), tuple(f["hr"].shape)
                self.attrs = {k: _text(v) for k, v in f["hr"].attrs.items()}
                self.white = {k: _white_of(f[k], k, self.path) for k in ("lr", "hr")}
                self._direct = {k: _direct_layout(f[k], self.path) for k in ("lr", "hr")}
                self._dtypes = {k: np.dtype(f[k].dtype) for k in ("lr", "hr")}
        except OSError as exc:
            raise SrcoreError(f"cannot open HDF5 file {self.path}: {exc}") from None
        if self.lr_shape[0] != self.hr_shape[0]:
            raise SrcoreError(f"{self.path}: {self.lr_shape[0]} LR patches but {self.hr_shape[0]} HR patches")
        if len(self.hr_shape) not in (3, 4) or len(self.lr_shape) != len(self.hr_shape):
            raise SrcoreError(f"{self.path}: unexpected patch shapes lr {self.lr_shape}, hr {self.hr_shape}")

    @property
    def channels(self) -> int:
        return 1 if len(self.hr_shape) == 3 else self.hr_shape[-1]

    @property
    def same_size(self) -> bool:
        return self.lr_shape[1:3] == self.hr_shape[1:3]

    def __len__(self) -> int:
        return self.hr_shape[0]

    def _handle(self) -> Any:
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        f = self._handle()
        return _to_tensor(f["lr"][index], self.white["lr"]), _to_tensor(f["hr"][index], self.white["hr"])

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The stored (lr, hr) arrays (N, H, W[, C]) of ``indices``, in their order."""
        uniq, inverse = np.unique(np.asarray(indices, dtype=np.int64), return_inverse=True)
        if len(uniq) and (uniq[0] < 0 or uniq[-1] >= len(self)):
            raise IndexError(f"{self.path}: patch index out of range 0..{len(self) - 1}")
        lr, hr = self._read_sorted("lr", uniq), self._read_sorted("hr", uniq)
        if len(uniq) == len(inverse) and (inverse == np.arange(len(inverse))).all():
            return lr, hr
        return lr[inverse], hr[inverse]

    def _read_sorted(self, name: str, uniq: np.ndarray) -> np.ndarray:
        direct = self._direct[name]
        if direct is None:
            return self._handle()[name][uniq]
        offset, dtype, shape = direct
        out = np.empty((len(uniq), *shape), dtype)
        item = out[0].nbytes if len(uniq) else 0
        fd = self._fd()
        # one preadv per run of consecutive indices
        breaks = np.flatnonzero(np.diff(uniq) != 1) + 1
        starts = np.concatenate(([0], breaks)).tolist()
        ends = np.concatenate((breaks, [len(uniq)])).tolist()
        first = uniq[starts].tolist() if len(uniq) else []
        for a, b, i in zip(starts, ends, first):
            got = os.preadv(fd, [out[a:b]], offset + i * item)
            if got != (b - a) * item:
                raise SrcoreError(f"{self.path}: file is truncated (dataset '{name}' patch {i})")
        return out

    def _fd(self) -> int:
        """A descriptor for ``preadv``: positionless reads, so one inherited across ``fork`` is safe."""
        if self._fdesc is None:
            self._fdesc = os.open(self.path, os.O_RDONLY)
        return self._fdesc

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"], state["_pid"], state["_fdesc"] = None, None, None
        return state

    def __del__(self) -> None:
        if getattr(self, "_fdesc", None) is not None:
            os.close(self._fdesc)


def _direct_layout(dataset: Any, path: Path) -> tuple[int, np.dtype, tuple[int, ...]] | None:
    """(byte offset, dtype, patch shape) when ``dataset`` is stored as one plain array in the file.

    Checked by reading its first and last patch both ways, so a layout h5py reports differently
    (user block, external storage) falls back to h5py instead of reading wrong bytes.
    """
    if not hasattr(os, "preadv") or dataset.chunks is not None or dataset.shape[0] == 0:
        return None
    try:
        offset = dataset.id.get_offset()
    except Exception:  # virtual or external datasets have no single offset
        return None
    dtype = np.dtype(dataset.dtype)
    if offset is None or dtype.kind not in "uif":
        return None
    shape = tuple(dataset.shape[1:])
    item = int(np.prod(shape)) * dtype.itemsize
    with open(path, "rb") as fh:
        for i in (0, dataset.shape[0] - 1):
            fh.seek(offset + i * item)
            raw = fh.read(item)
            if len(raw) != item or not np.array_equal(np.frombuffer(raw, dtype).reshape(shape), dataset[i]):
                return None
    return offset, dtype, shape


class ShardedH5Patches:
    """The patches of a shard directory as one sequence (global index -> (lr, hr)), like ``H5Patches``.

    ``require_all`` off: shard files missing here (a node that holds only its ranks' shards) are
    allowed, and an error only when read; ``missing`` names them.
    """

    def __init__(self, path: str | Path, require_all: bool = True) -> None:
        self.path = Path(path)
        index_path = self.path / SHARDS_INDEX
        try:
            index = json.loads(index_path.read_text())
            if index.get("format") != SHARDS_FORMAT:
                raise ValueError(f"format is {index.get('format')!r}, not {SHARDS_FORMAT!r}")
            entries = [(str(e["file"]), int(e["patches"])) for e in index["shards"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SrcoreError(f"{index_path}: not a readable shard index ({exc})") from None
        if not entries:
            raise SrcoreError(f"{index_path}: lists no shards")
        self.names = [name for name, _ in entries]
        self.missing = [name for name in self.names if not (self.path / name).is_file()]
        if self.missing and (require_all or len(self.missing) == len(entries)):
            raise SrcoreError(f"{self.path}: {len(self.missing)} shard file(s) listed in {SHARDS_INDEX} are missing: "
                              + ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else ""))
        self.shards = [None if name in self.missing else H5Patches(self.path / name) for name in self.names]
        present = [s for s in self.shards if s is not None]
        problems = [f"{s.path.name} holds {len(s)} patches, the index says {n}"
                    for s, (_, n) in zip(self.shards, entries) if s is not None and len(s) != n]
        first = present[0]
        problems += [f"{s.path.name} has patch shapes lr {s.lr_shape[1:]}, hr {s.hr_shape[1:]} "
                     f"(shard {first.path.name}: lr {first.lr_shape[1:]}, hr {first.hr_shape[1:]})"
                     for s in present[1:] if (s.lr_shape[1:], s.hr_shape[1:], s.white, s._dtypes)
                     != (first.lr_shape[1:], first.hr_shape[1:], first.white, first._dtypes)]
        if problems:
            raise SrcoreError(f"{self.path}: {'; '.join(problems)}")
        counts = np.array([n for _, n in entries], dtype=np.int64)
        self.starts = np.concatenate(([0], np.cumsum(counts)))  # shard k holds [starts[k], starts[k+1])
        total = int(self.starts[-1])
        self.lr_shape, self.hr_shape = (total, *first.lr_shape[1:]), (total, *first.hr_shape[1:])
        self.attrs, self.white, self._dtypes = first.attrs, first.white, first._dtypes
        declared = index.get("patches")
        if declared is not None and int(declared) != total:
            raise SrcoreError(f"{index_path}: says {declared} patches, its shards hold {total}")

    def _shard(self, k: int) -> H5Patches:
        shard = self.shards[k]
        if shard is None:
            raise SrcoreError(f"{self.path}: shard {self.names[k]} is not on this machine")
        return shard

    channels = H5Patches.channels
    same_size = H5Patches.same_size

    def __len__(self) -> int:
        return int(self.starts[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        if not 0 <= index < len(self):
            raise IndexError(f"{self.path}: patch index {index} out of range 0..{len(self) - 1}")
        k = int(np.searchsorted(self.starts, index, side="right")) - 1
        return k, index - int(self.starts[k])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        k, local = self._locate(int(index))
        return self._shard(k)[local]

    def read(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As ``H5Patches.read``: one read per shard that holds any of ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.path}: patch index out of range 0..{len(self) - 1}")
        shard = np.searchsorted(self.starts, idx, side="right") - 1
        lr = np.empty((len(idx), *self.lr_shape[1:]), self._dtypes["lr"])
        hr = np.empty((len(idx), *self.hr_shape[1:]), self._dtypes["hr"])
        for k in np.unique(shard).tolist():
            rows = np.flatnonzero(shard == k)
            lr[rows], hr[rows] = self._shard(k).read(idx[rows] - self.starts[k])
        return lr, hr

    def shard_ranges(self) -> list[tuple[int, int]]:
        """(first global index, patch count) of each shard, in order."""
        return [(int(a), int(b - a)) for a, b in zip(self.starts[:-1], self.starts[1:])]


def _white_of(dataset: Any, name: str, path: Path) -> float:
    """The stored value of white: 255 for uint8, else the dataset's declared ``max_value``."""
    dtype = np.dtype(dataset.dtype)
    declared = dataset.attrs.get("max_value")
    if declared is None:
        if dtype == np.uint8:
            return 255.0
        raise SrcoreError(
            f"{path}: dataset '{name}' holds {dtype} patches, but srcore reads uint8 patches (0..255, as "
            "data_aug.py and `srcore data prepare` write them); convert the file, or declare the value of white "
            f"with the attribute {name}.attrs['max_value'] (e.g. 1.0 for floats in [0, 1], 65535 for 16-bit)"
        )
    try:
        white = float(np.asarray(declared).item())
    except (TypeError, ValueError):
        white = float("nan")
    if dtype.kind not in "uif" or not white > 0 or not np.isfinite(white):
        raise SrcoreError(
            f"{path}: dataset '{name}' ({dtype}) has max_value {_text(declared)!r}; it must be a positive number "
            "and the patches numeric"
        )
    return white


def _to_tensor(arr: np.ndarray, white: float = 255.0) -> torch.Tensor:
    a = np.asarray(arr)
    if a.ndim == 2:
        a = a[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))).float() / white


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
