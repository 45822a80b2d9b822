"""Datasets: named sets, paired/degraded folders, Y and pre-upsampled modes, HDF5, unpaired, eval sets."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from srcore.config import TrainDataConfig
from srcore.data.datasets import make_eval_dataset, make_train_dataset
from srcore.data.io import read_image, write_image
from srcore.data.resize import imresize
from srcore.data.sets import resolve_set
from srcore.data.transforms import dihedral
from srcore.errors import SrcoreError
from srcore.registry import ModelInfo
from srcore.testing import shared_data_dir as shared_data

RGB = ModelInfo(scales=(2, 3, 4))
Y_PRE = ModelInfo(scales=(2, 3, 4), in_channels=1, out_channels=1, pre_upsampled=True)


@pytest.fixture
def regs(srcore_manager):
    return srcore_manager.registries


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A tiny set: HR/ with two images, LR/ with their exact MATLAB bicubic x2 (names differ by suffix)."""
    g = torch.Generator().manual_seed(0)
    for i, (h, w) in enumerate([(40, 48), (36, 44)]):
        hr = torch.rand(3, h, w, generator=g)
        write_image(tmp_path / "HR" / f"im{i}.png", hr)
        lr = imresize(read_image(tmp_path / "HR" / f"im{i}.png").double().unsqueeze(0), 0.5)[0]
        write_image(tmp_path / "LR" / f"im{i}x2.png", lr)
    return tmp_path


def test_resolve_set_case_insensitive(tmp_path: Path):
    (tmp_path / "Set5" / "HR").mkdir(parents=True)
    (tmp_path / "Set5" / "LR_bicubic" / "X2").mkdir(parents=True)
    assert resolve_set("set5", tmp_path) == tmp_path / "Set5" / "HR"
    assert resolve_set("SET5/lr_bicubic/x2", tmp_path) == tmp_path / "Set5" / "LR_bicubic" / "X2"
    assert resolve_set(tmp_path / "Set5", None) == tmp_path / "Set5"  # an existing path wins
    with pytest.raises(SrcoreError, match="available: Set5"):
        resolve_set("set14", tmp_path)
    with pytest.raises(SrcoreError, match="no data root"):
        resolve_set("set14", None)


def test_paired_folder_patches_are_aligned(regs, folder: Path):
    cfg = TrainDataConfig(hr=str(folder / "HR"), lr=str(folder / "LR"), patch_size=16, repeat=3)
    ds = make_train_dataset(cfg, scale=2, info=RGB, registries=regs, root=None)
    assert len(ds) == 6
    torch.manual_seed(0)
    for i in range(6):
        s = ds[i]
        assert s["lr"].shape == (3, 8, 8) and s["hr"].shape == (3, 16, 16)
        # the LR patch is the bicubic reduction of the HR patch away from its borders
        ref = imresize(s["hr"].double().unsqueeze(0), 0.5)[0]
        assert (ref[:, 2:-2, 2:-2] - s["lr"][:, 2:-2, 2:-2]).abs().max() < 1.5 / 255


def test_size_mismatch_and_missing_lr_are_clear(regs, folder: Path):
    write_image(folder / "LR" / "im1x2.png", torch.rand(3, 10, 10))
    cfg = TrainDataConfig(hr=str(folder / "HR"), lr=str(folder / "LR"), patch_size=8)
    ds = make_train_dataset(cfg, scale=2, info=RGB, registries=regs, root=None)
    with pytest.raises(SrcoreError, match=r"size mismatch at scale 2: LR .*im1x2.png is 10x10"):
        ds[1]
    (folder / "LR" / "im0x2.png").unlink()
    with pytest.raises(SrcoreError, match="no LR image .* im0.png"):
        make_train_dataset(cfg, scale=2, info=RGB, registries=regs, root=None)


def test_degraded_on_the_fly_y_and_pre_upsampled(regs, folder: Path):
    cfg = TrainDataConfig(hr=str(folder / "HR"), patch_size=12, degradation={"id": "core:bicubic"})
    s = make_train_dataset(cfg, scale=3, info=Y_PRE, registries=regs, root=None)[0]
    assert s["lr"].shape == (1, 12, 12) and s["hr"].shape == (1, 12, 12)
    assert 16 / 255 - 1e-6 <= s["hr"].min() and s["hr"].max() <= 235 / 255 + 1e-6
    s = make_train_dataset(cfg, scale=3, info=RGB, registries=regs, root=None)[0]
    assert s["lr"].shape == (3, 4, 4) and s["hr"].shape == (3, 12, 12)
    with pytest.raises(SrcoreError, match="not a multiple of the scale"):
        make_train_dataset(cfg, scale=5, info=RGB, registries=regs, root=None)
    deg2 = {"id": "core:bicubic", "params": {"scale": 2}}
    bad = TrainDataConfig(hr=str(folder / "HR"), patch_size=12, degradation=deg2)
    with pytest.raises(SrcoreError, match="downscales by 2"):
        make_train_dataset(bad, scale=3, info=RGB, registries=regs, root=None)


def test_unpaired_real_lr(regs, folder: Path):
    cfg = TrainDataConfig(hr=str(folder / "HR"), lr_real=str(folder / "LR"), patch_size=16)
    s = make_train_dataset(cfg, scale=2, info=RGB, registries=regs, root=None)[0]
    assert s["lr_real"].shape == (3, 8, 8) and s["lr"].shape == (3, 8, 8)


def test_builtin_skimage_default(regs):
    ds = make_train_dataset(TrainDataConfig(patch_size=32), scale=4, info=RGB, registries=regs, root=None)
    assert len(ds) >= 3 and ds[0]["hr"].shape == (3, 32, 32) and ds[0]["lr"].shape == (3, 8, 8)


def test_dihedral_covers_eight_orientations():
    x = torch.arange(6.0).view(1, 2, 3)
    seen = {tuple(dihedral(x, h, v, r).flatten().tolist()) for h in (0, 1) for v in (0, 1) for r in (0, 1)}
    assert len(seen) == 8


def _write_h5(path: Path, n: int, hr: int, lr: int, y: bool) -> None:
    rng = np.random.default_rng(0)
    shp = (n, hr, hr) if y else (n, hr, hr, 3)
    lshp = (n, lr, lr) if y else (n, lr, lr, 3)
    with h5py.File(path, "w") as f:
        f.create_dataset("hr", data=rng.integers(0, 256, shp, dtype=np.uint8))
        f.create_dataset("lr", data=rng.integers(0, 256, lshp, dtype=np.uint8))


def test_h5_patches_lazy_and_safe_with_workers(regs, tmp_path: Path):
    path = tmp_path / "p.h5"
    _write_h5(path, 12, 16, 16, y=True)  # data_aug --single_y --same_size layout
    cfg = TrainDataConfig(hr=str(path), patch_size=96, flip=False, rot90=False)
    ds = make_train_dataset(cfg, scale=2, info=Y_PRE, registries=regs, root=None)
    with h5py.File(path) as f:
        expected = torch.from_numpy(f["hr"][5]).float() / 255
    assert torch.equal(ds[5]["hr"][0], expected)
    loader = DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork")
    batches = list(loader)
    assert len(batches) == 3 and batches[0]["lr"].shape == (4, 1, 16, 16)
    assert torch.equal(batches[1]["hr"][1, 0], expected)
    with pytest.raises(SrcoreError, match="Y-only"):
        make_train_dataset(cfg, scale=2, info=RGB, registries=regs, root=None)
    rgb = tmp_path / "rgb.h5"
    _write_h5(rgb, 3, 16, 8, y=False)
    s = make_train_dataset(TrainDataConfig(hr=str(rgb), patch_size=8), scale=2, info=RGB, registries=regs, root=None)[0]
    assert s["lr"].shape == (3, 4, 4) and s["hr"].shape == (3, 8, 8)
    with pytest.raises(SrcoreError, match="pre-upsampled"):
        make_train_dataset(cfg, scale=2, info=ModelInfo(scales=(2,), in_channels=1, out_channels=1),
                           registries=regs, root=None)


def test_eval_set_is_mod_cropped_matlab_bicubic(folder: Path, regs):
    ds = make_eval_dataset(str(folder / "HR"), scale=3, root=None)
    item = ds[0]
    assert item["name"] == "im0" and item["hr"].shape == (3, 39, 48) and item["lr"].shape == (3, 13, 16)
    ref = imresize(item["hr"].double().unsqueeze(0), 1 / 3)[0].clamp(0, 1)
    torch.testing.assert_close(item["lr"].double(), torch.round(ref * 255) / 255, atol=1e-6, rtol=0)
    noisy = regs.build("degradation", "core:chain", {"steps": [{"id": "core:bicubic", "params": {"scale": 3}},
                                                               {"id": "core:noise"}], "seed": 4})
    a = make_eval_dataset(str(folder / "HR"), scale=3, root=None, degradation=noisy)
    assert torch.equal(a[1]["lr"], a[1]["lr"])  # per-image seeding: same LR on every access
    paired = make_eval_dataset({"hr": str(folder / "HR"), "lr": str(folder / "LR")}, scale=2, root=None)
    assert [x["lr"].shape[-1] * 2 for x in paired] == [x["hr"].shape[-1] for x in paired]


@pytest.mark.shared_data
def test_named_set5_from_shared_data():
    root = shared_data()
    if not (root / "Set5" / "HR").is_dir():
        pytest.skip(f"Set5 not found under {root} (set SRCORE_SHARED_DATA)")
    ds = make_eval_dataset("SET5", scale=4, root=root)
    assert ds.name == "Set5" and [x["name"] for x in ds] == ["baby", "bird", "butterfly", "head", "woman"]
    assert ds[4]["hr"].shape == (3, 344, 228) and ds[4]["lr"].shape == (3, 86, 57)
