"""``srcore data prepare``: patch counts/shapes, content, orientations, bounded memory, atomic output."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from srcore.cli import main
from srcore.config import TrainDataConfig
from srcore.data.prepare import PrepareOptions, prepare_h5
from srcore.registry import ModelInfo
from srcore.testing import shared_data_dir as shared_data

VDSR = ["--upsampling", "nearest,bicubic", "-W", "41", "-H", "41", "--stride", "41", "-uf", "2,3,4",
        "--scales", "1.0,0.7,0.5", "--rotations", "0,90,180,270", "--flips", "0,1,2,3", "--same-size", "--single-y"]


def expected_count(sizes: list[tuple[int, int]], ufs, scales, n_methods, rotations, n_flips, w, h, stride) -> int:
    """Straightforward count from the data_aug.py description (rotations of 90/270 swap W and H)."""
    total = 0
    for w0, h0 in sizes:
        for uf in ufs:
            for s in scales:
                ws, hs = math.floor(w0 * s), math.floor(h0 * s)
                ws, hs = ws - ws % uf, hs - hs % uf
                for rot in rotations:
                    rw, rh = (hs, ws) if rot % 180 == 90 else (ws, hs)
                    nx = sum(1 for i in range(rw // stride) if i * stride + w <= rw)
                    ny = sum(1 for j in range(rh // stride) if j * stride + h <= rh)
                    total += nx * ny * n_methods * n_flips
    return total


def run(args: list[str]):
    return CliRunner().invoke(main, ["data", "prepare", *args])


@pytest.mark.shared_data
def test_vdsr_options_on_set14(tmp_path: Path):
    hr_dir = shared_data() / "Set14" / "HR"
    if not hr_dir.is_dir():
        pytest.skip(f"Set14 not found at {hr_dir} (set SRCORE_SHARED_DATA)")
    out = tmp_path / "vdsr.h5"
    res = run(["-i", str(hr_dir), "-n", "2", "-o", str(out), *VDSR])
    assert res.exit_code == 0, res.output
    files = sorted(hr_dir.iterdir())[:2]
    sizes = [Image.open(p).size for p in files]
    n = expected_count(sizes, [2, 3, 4], [1.0, 0.7, 0.5], 2, [0, 90, 180, 270], 4, 41, 41, 41)
    with h5py.File(out) as f:
        assert f["hr"].shape == (n, 41, 41) and f["lr"].shape == (n, 41, 41)
        assert f["hr"].dtype == np.uint8 and f["hr"].attrs["same_size"] == "True"
        hr = f["hr"][:2000]
        assert 16 <= hr.min() and hr.max() <= 235  # Y of BT.601
    assert f"wrote {n} patch pairs" in res.output


def _folder(tmp_path: Path, n: int, size=(90, 70)) -> Path:
    rng = np.random.default_rng(0)
    d = tmp_path / f"imgs{n}"
    d.mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(d / f"im{i:02d}.png")
    return d


def test_patch_content_lr_and_orientation(tmp_path: Path):
    src = _folder(tmp_path, 1)
    img = Image.open(src / "im00.png").convert("RGB")
    out = tmp_path / "p.h5"
    res = run(["-i", str(src), "-o", str(out), "-W", "24", "-H", "16", "--stride", "20", "-uf", "4",
               "--padding", "4", "--no-shuffle", "--flips", "1", "--rotations", "90"])
    assert res.exit_code == 0, res.output
    t = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(90, expand=True)  # 70 x 90 (W x H)
    lr_t = img.resize((22, 17), Image.Resampling.BICUBIC)
    lr_t = lr_t.transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(90, expand=True)
    with h5py.File(out) as f:
        hr, lr = f["hr"][:], f["lr"][:]
    # HR is 88x68 after the mod-4 resize, so the grid runs on the resized image, not the original
    base = img.resize((88, 68), Image.Resampling.BICUBIC).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    base = np.asarray(base.rotate(90, expand=True))  # 68 wide, 88 high
    xs = [x for x in range(0, 68 // 20 * 20, 20) if x + 24 <= 68]
    ys = [y for y in range(0, 88 // 20 * 20, 20) if y + 16 <= 88]
    assert hr.shape == (len(xs) * len(ys), 8, 16, 3) and lr.shape == (len(xs) * len(ys), 2, 4, 3)
    x, y = xs[1], ys[2]
    k = 1 * len(ys) + 2  # x outer, y inner
    np.testing.assert_array_equal(hr[k], base[y + 4 : y + 12, x + 4 : x + 20])
    lr_ref = np.asarray(img.resize((88, 68), Image.Resampling.BICUBIC).resize((22, 17), Image.Resampling.BICUBIC)
                        .transpose(Image.Transpose.FLIP_LEFT_RIGHT).rotate(90, expand=True))
    np.testing.assert_array_equal(lr[k], lr_ref[(y + 4) // 4 : (y + 12) // 4, (x + 4) // 4 : (x + 20) // 4])
    assert t.size == (70, 90) and lr_t.size == (17, 22)


def test_cumulative_quirk_repeats_orientations():
    opts = PrepareOptions(flips=[0, 1, 2, 3], rotations=[0, 90, 180, 270])
    plain = opts.orientations()
    assert len(set(plain)) == 16
    opts.cumulative = True
    img = Image.fromarray(np.arange(12, dtype=np.uint8).reshape(3, 4))
    from srcore.data.prepare import orient_image

    seen = [np.asarray(orient_image(img, o)).tobytes() + bytes(np.asarray(orient_image(img, o)).shape)
            for o in opts.orientations()]
    assert len(seen) == 16 and len(set(seen)) == 8  # data_aug.py: 8 distinct, pure rotations repeated


def test_memory_is_independent_of_image_count(tmp_path: Path):
    opts = PrepareOptions(width=16, height=16, stride=8, upscale_factors=[2, 4], scales=[1.0, 0.7],
                          rotations=[0, 90], flips=[0, 1], same_size=True, single_y=True)
    peaks, counts = [], []
    for n in (2, 8):
        src = _folder(tmp_path, n)
        tracemalloc.start()
        res = prepare_h5(src, tmp_path / f"m{n}.h5", opts)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        counts.append(res.patches)
    assert counts[1] == 4 * counts[0]
    data_bytes = counts[1] * 16 * 16 * 2
    assert peaks[1] < 1.3 * peaks[0] + 200_000, (peaks, data_bytes)
    assert peaks[1] < data_bytes / 2


def test_interrupted_run_leaves_no_complete_looking_file(tmp_path: Path):
    src = _folder(tmp_path, 3)
    out = tmp_path / "x.h5"

    def boom(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare_h5(src, out, PrepareOptions(width=16, height=16, stride=16), progress=boom)
    assert not out.exists() and not list(tmp_path.glob(".x.h5*"))


def test_png_mode_and_h5_trains(tmp_path: Path, srcore_manager):
    src = _folder(tmp_path, 2)
    res = run(["-i", str(src), "--output-hr", str(tmp_path / "H"), "--output-lr", str(tmp_path / "L"),
               "-W", "32", "-H", "32", "--stride", "32", "-uf", "2"])
    assert res.exit_code == 0, res.output
    hr_files, lr_files = sorted((tmp_path / "H").iterdir()), sorted((tmp_path / "L").iterdir())
    assert len(hr_files) == len(lr_files) == 2 * (90 // 32) * (70 // 32)
    assert Image.open(hr_files[0]).size == (32, 32) and Image.open(lr_files[0]).size == (16, 16)
    h5 = tmp_path / "t.h5"
    assert run(["-i", str(src), "-o", str(h5), "-W", "32", "-H", "32", "--stride", "16", "-uf", "2"]).exit_code == 0
    from srcore.data.datasets import make_train_dataset

    ds = make_train_dataset(TrainDataConfig(hr=str(h5), patch_size=32), scale=2, info=ModelInfo(scales=(2,)),
                            registries=srcore_manager.registries, root=None)
    assert ds[0]["lr"].shape == (3, 16, 16) and ds[0]["hr"].shape == (3, 32, 32)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-W", "41", "-uf", "2"], "multiples of the upscale factor 2"),
        (["--upsampling", "cubic"], "unknown upsampling"),
        (["--flips", "5"], "flips must be among"),
        (["-uf", "2,3", "-W", "12", "-H", "12", "--stride", "12"], "--same-size"),
    ],
)
def test_bad_options_exit_2(tmp_path: Path, args: list[str], message: str):
    src = _folder(tmp_path, 1)
    res = run(["-i", str(src), "-o", str(tmp_path / "o.h5"), *args])
    assert res.exit_code == 2 and message in res.output, res.output


def test_sharded_patches_equal_the_single_file(tmp_path: Path):
    """--shards N -j 2 (unshuffled order): the shards concatenated are the single file, patch for patch."""
    src = _folder(tmp_path, 3)
    common = ["-i", str(src), "-W", "16", "-H", "16", "--stride", "12", "-uf", "2", "--rotations", "0,90",
              "--no-shuffle"]
    assert run([*common, "-o", str(tmp_path / "one.h5")]).exit_code == 0
    res = run([*common, "-o", str(tmp_path / "s.h5"), "--shards", "50", "-j", "2"])
    assert res.exit_code == 0, res.output
    import json

    index = json.loads((tmp_path / "s.h5.shards" / "index.json").read_text())
    with h5py.File(tmp_path / "one.h5") as f:
        hr, lr = f["hr"][:], f["lr"][:]
    assert index["patches"] == len(hr) and len(index["shards"]) == -(-len(hr) // 50) > 2
    parts = [h5py.File(tmp_path / "s.h5.shards" / s["file"]) for s in index["shards"]]
    assert [len(p["hr"]) for p in parts] == [s["patches"] for s in index["shards"]]
    np.testing.assert_array_equal(np.concatenate([p["hr"][:] for p in parts]), hr)
    np.testing.assert_array_equal(np.concatenate([p["lr"][:] for p in parts]), lr)
    for p in parts:
        p.close()
