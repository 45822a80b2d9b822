"""Fixtures: real face crops from the shared test data (skipped with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from srcore.testing import shared_data_dir


def shared_data() -> Path | None:
    root = shared_data_dir()
    return root.resolve() if (root / "faces").is_dir() else None


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: these small nets gain nothing from more, and the CI box is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def data_root() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip("shared face data (../shared/data/faces or $SRCORE_SHARED_DATA) is not available")
    return root


def load_faces(folder: Path, n: int, size: int) -> torch.Tensor:
    """The first ``n`` images of a folder as (n, 3, size, size) RGB in [0, 1] (OpenCV INTER_AREA)."""
    import cv2

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))[:n]
    imgs = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        assert bgr is not None, f"cannot read {f}"
        small = cv2.resize(bgr, (size, size), interpolation=cv2.INTER_AREA)
        imgs.append(small[:, :, ::-1].astype(np.float32) / 255.0)
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture
def hr_faces(data_root: Path) -> torch.Tensor:
    """4 CelebA-HQ faces at 64x64 (the HR training geometry)."""
    return load_faces(data_root / "faces" / "celeba_hq", 4, 64)


@pytest.fixture
def real_lr_faces(data_root: Path) -> torch.Tensor:
    """4 real low-quality faces at 16x16 (the real LR domain)."""
    return load_faces(data_root / "faces" / "real_lq", 4, 16)


@pytest.fixture
def faces(data_root: Path):
    """``faces(set_name, n, size)``: real faces of ``<data>/faces/<set_name>`` at size x size."""
    return lambda name, n, size: load_faces(data_root / "faces" / name, n, size)
