"""HDF5 patch files with datasets ``lr`` and ``hr`` (the layout of seed004's data_aug.py).

Arrays are uint8, (N, H, W) for Y patches or (N, H, W, 3) for RGB; ``lr`` is either
(N, H/s, W/s[, 3]) or, for pre-upsampled data (``--same_size``), the HR shape. Any other dtype
(float32 patches in [0, 1], 16-bit) is read only when its dataset declares the value of white
in the attribute ``max_value``, else refused when the dataset is built, since guessing a range
would train on images 255 times too dark or too bright without a word. The file is
opened lazily in each process that reads it (h5py handles must not cross ``fork``), so the
dataset is safe with DataLoader worker processes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srcore.errors import SrcoreError

H5_SUFFIXES = (".h5", ".hdf5")


def is_h5(path: str | Path) -> bool:
    return Path(path).suffix.lower() in H5_SUFFIXES


class H5Patches:
    """Lazy random access to (lr, hr) uint8 patches as CHW float tensors in [0, 1]."""

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        self._file: Any = None
        self._pid: int | None = None
        try:
            with h5py.File(self.path, "r") as f:
                missing = [k for k in ("lr", "hr") if k not in f]
                if missing:
                    raise SrcoreError(f"{self.path}: HDF5 patch file lacks dataset(s) {', '.join(missing)}")
                self.lr_shape, self.hr_shape = tuple(f["lr"].shape), tuple(f["hr"].shape)
                self.attrs = {k: _text(v) for k, v in f["hr"].attrs.items()}
                self.white = {k: _white_of(f[k], k, self.path) for k in ("lr", "hr")}
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

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_file"], state["_pid"] = None, None
        return state


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
