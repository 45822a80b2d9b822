"""Sub-images (BasicSR's extract_subimages) into folders, LMDB (BasicSR's layout) and HDF5 (+ shards)."""

from __future__ import annotations

import json
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import h5py
import lmdb
import numpy as np
import pytest
from click.testing import CliRunner

from srcore.cli import main
from srcore.config import TrainDataConfig
from srcore.data.datasets import make_train_dataset
from srcore.data.lmdb_store import LmdbImages
from srcore.data.subimages import SubimageOptions, plan_subimages, positions
from srcore.registry import ModelInfo


def run(*args: object):
    return CliRunner().invoke(main, ["data", "prepare", *map(str, args)])


def basicsr_space(length: int, crop: int, step: int, thresh: int) -> list[int]:
    """BasicSR's worker(), as written there (np.arange, then the border crop if the rest > thresh)."""
    space = np.arange(0, length - crop + 1, step)
    if length - (space[-1] + crop) > thresh:
        space = np.append(space, length - crop)
    return space.tolist()


def photos(folder: Path, sizes: list[tuple[int, int]], seed: int = 0) -> list[np.ndarray]:
    """Random BGR PNGs ``im<i>.png`` of the given (h, w); returns the arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, (h, w) in enumerate(sizes):
        a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(str(folder / f"im{i}.png"), a)
        out.append(a)
    return out


def basicsr_lmdb(path: Path, images: dict[str, np.ndarray], level: int = 1) -> None:
    """An LMDB written the way basicsr.utils.lmdb_util.make_lmdb_from_imgs writes it."""
    env = lmdb.open(str(path), map_size=1 << 26)
    txn = env.begin(write=True)
    with open(path / "meta_info.txt", "w") as meta:
        for key, img in images.items():
            _, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, level])
            txn.put(key.encode("ascii"), buf)
            h, w, c = img.shape if img.ndim == 3 else (*img.shape, 1)
            meta.write(f"{key}.png ({h},{w},{c}) {level}\n")
    txn.commit()
    env.close()


@pytest.mark.parametrize("thresh", [0, 5, 30])
def test_positions_are_basicsrs(thresh: int):
    for length in range(48, 140, 7):
        for crop, step in ((48, 24), (48, 48), (40, 16), (33, 10)):
            assert positions(length, crop, step, thresh) == basicsr_space(length, crop, step, thresh), (length, crop)
    assert positions(47, 48, 24) == []  # smaller than the crop: none (BasicSR: IndexError)


def test_subimages_cover_every_pixel_with_the_stated_overlap(tmp_path: Path):
    """Reassembled from the folder output, every pixel equals the source; neighbours overlap by
    size - step, except the border crop, which overlaps more."""
    (src,) = photos(tmp_path / "src", [(101, 139)])
    out = tmp_path / "sub"
    res = run("-i", tmp_path / "src", "--subimages", 48, "--step", 20, "--output-hr", out)
    assert res.exit_code == 0, res.output
    ys, xs = basicsr_space(101, 48, 20, 0), basicsr_space(139, 48, 20, 0)
    files = sorted(out.iterdir())
    assert [f.name for f in files] == [f"im0_s{k:03d}.png" for k in range(1, len(ys) * len(xs) + 1)]
    canvas, hits = np.zeros_like(src), np.zeros(src.shape[:2], int)
    for k, (y, x) in enumerate((y, x) for y in ys for x in xs):  # row-major, 1-based names
        sub = cv2.imread(str(out / f"im0_s{k + 1:03d}.png"), cv2.IMREAD_UNCHANGED)
        assert sub.shape == (48, 48, 3)
        canvas[y : y + 48, x : x + 48] = sub
        hits[y : y + 48, x : x + 48] += 1
    np.testing.assert_array_equal(canvas, src)
    assert hits.min() >= 1
    assert np.diff(ys)[:-1].tolist() == [20] * (len(ys) - 2) and 0 < np.diff(ys)[-1] <= 20
    assert hits[0, 0] == 1 and hits[0, 20] == 2  # the first two columns share 48 - 20 = 28 pixels
    assert ys[-1] == 101 - 48 and xs[-1] == 139 - 48  # border crops end at the border


def test_thresh_size_leaves_small_border_remainders_out():
    plan = plan_subimages([], SubimageOptions(48, 24, 10))
    assert plan.total == 0
    assert positions(80, 48, 24, 10) == [0, 24]  # remainder 8 <= 10: skipped, as BasicSR does
    assert positions(90, 48, 24, 10) == [0, 24, 42]


def test_basicsr_lmdb_is_read_back_exactly(tmp_path: Path, srcore_manager):
    rng = np.random.default_rng(1)
    hr = {f"0001_s{k:03d}": rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for k in range(1, 4)}
    hr["gray_s001"] = rng.integers(0, 256, (32, 40), dtype=np.uint8)
    lr = {k: v[::4, ::4].copy() for k, v in hr.items()}
    (tmp_path / "hr.lmdb").mkdir()
    (tmp_path / "lr.lmdb").mkdir()
    basicsr_lmdb(tmp_path / "hr.lmdb", hr)
    basicsr_lmdb(tmp_path / "lr.lmdb", lr, level=3)
    store = LmdbImages(tmp_path / "hr.lmdb")
    assert store.keys == list(hr)
    for k, v in hr.items():
        np.testing.assert_array_equal(store.read(k), v)
    info = ModelInfo(scales=(4,))
    cfg = TrainDataConfig(hr=str(tmp_path / "hr.lmdb"), lr=str(tmp_path / "lr.lmdb"), patch_size=32,
                          flip=False, rot90=False)
    ds = make_train_dataset(cfg, scale=4, info=info, registries=srcore_manager.registries, root=None)
    assert len(ds) == 4
    for i, k in enumerate(hr):
        bgr = hr[k] if hr[k].ndim == 3 else np.repeat(hr[k][:, :, None], 3, axis=2)
        want = bgr[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255
        sample = ds[i]  # a 32x32 crop of 32x40: the columns [left, left + 32)
        got = sample["hr"].numpy()
        left = [x for x in range(9) if np.array_equal(got, want[:, :, x : x + 32])]
        assert left and left[0] % 4 == 0, k  # exactly a crop, on the LR grid
        lr_bgr = lr[k] if lr[k].ndim == 3 else np.repeat(lr[k][:, :, None], 3, axis=2)
        lr_want = lr_bgr[:, :, ::-1].transpose(2, 0, 1).astype(np.float32) / 255
        np.testing.assert_array_equal(sample["lr"].numpy(), lr_want[:, :, left[0] // 4 : left[0] // 4 + 8])
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers: no LMDB handle crosses processes
    assert clone[0]["hr"].shape == (3, 32, 32)
    from torch.utils.data import DataLoader  # a forked worker inherits the open database: reopened there

    assert next(iter(DataLoader(ds, batch_size=4, num_workers=1)))["hr"].shape == (4, 3, 32, 32)
    ds_deg = make_train_dataset(TrainDataConfig(hr=str(tmp_path / "hr.lmdb"), patch_size=32), scale=4, info=info,
                                registries=srcore_manager.registries, root=None)
    assert ds_deg[0]["lr"].shape == (3, 8, 8)  # no LR given: the degradation makes it on the fly


META_LINE = re.compile(r"^(?P<key>[^ ]+)\.png \((?P<h>\d+),(?P<w>\d+),(?P<c>\d+)\) (?P<level>\S+)$")


@pytest.mark.parametrize("raw", [False, True])
def test_srcore_lmdb_is_readable_the_basicsr_way(tmp_path: Path, raw: bool):
    srcs = photos(tmp_path / "src", [(64, 80), (50, 50)])
    lrs = [cv2.resize(a, (a.shape[1] // 2, a.shape[0] // 2), interpolation=cv2.INTER_AREA) for a in srcs]
    (tmp_path / "lr").mkdir()
    for i, a in enumerate(lrs):
        cv2.imwrite(str(tmp_path / "lr" / f"im{i}x2.png"), a)
    out, out_lr = tmp_path / "hr.lmdb", tmp_path / "lr.lmdb"
    res = run("-i", tmp_path / "src", "--subimages", 32, "--step", 16, "--scale", 2, "--lr-dir", tmp_path / "lr",
              "-o", out, "--output-lr", out_lr, *(["--raw"] if raw else ["-j", 2]))  # PNG: 2 encoding processes
    assert res.exit_code == 0, res.output
    for db, images, crop in ((out, srcs, 32), (out_lr, lrs, 16)):
        lines = (db / "meta_info.txt").read_text().splitlines()
        keys = [f"im{i}_s{k:03d}" for i, a in enumerate(srcs)
                for k in range(1, len(basicsr_space(a.shape[0], 32, 16, 0)) * len(basicsr_space(a.shape[1], 32, 16, 0))
                               + 1)]
        assert [META_LINE.match(line)["key"] for line in lines] == keys
        assert {META_LINE.match(line)["level"] for line in lines} == {"raw" if raw else "1"}
        env = lmdb.open(str(db), readonly=True, lock=False, readahead=False, meminit=False)
        with env.begin() as txn:
            for i, img in enumerate(images):
                step = crop // 2
                corners = [(y, x) for y in basicsr_space(img.shape[0], crop, step, 0)
                           for x in basicsr_space(img.shape[1], crop, step, 0)]
                for k, (y, x) in enumerate(corners, 1):
                    value = txn.get(f"im{i}_s{k:03d}".encode("ascii"))
                    if raw:
                        arr = np.frombuffer(value, np.uint8).reshape(crop, crop, 3)
                    else:
                        arr = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                    np.testing.assert_array_equal(arr, img[y : y + crop, x : x + crop])
        env.close()


def test_sharded_prepare_equals_single_file(tmp_path: Path):
    srcs = photos(tmp_path / "src", [(64, 80), (48, 112), (80, 48)])
    (tmp_path / "lr").mkdir()
    for i, a in enumerate(srcs):
        cv2.imwrite(str(tmp_path / "lr" / f"im{i}.png"), a[::4, ::4])
    common = ["-i", tmp_path / "src", "--subimages", 32, "--step", 16, "--scale", 4, "--lr-dir", tmp_path / "lr"]
    assert run(*common, "-o", tmp_path / "one.h5").exit_code == 0
    res = run(*common, "-o", tmp_path / "s.h5", "--shards", 7, "-j", 2)
    assert res.exit_code == 0, res.output
    shard_dir = tmp_path / "s.h5.shards"
    index = json.loads((shard_dir / "index.json").read_text())
    with h5py.File(tmp_path / "one.h5") as f:
        one = {k: f[k][:] for k in ("hr", "lr", "keys")}
    n = len(one["hr"])
    assert index["format"] == "srcore-h5-shards" and index["version"] == 1 and index["patches"] == n
    assert [s["patches"] for s in index["shards"]] == [7] * (n // 7) + ([n % 7] if n % 7 else [])
    parts = []
    for s in index["shards"]:
        with h5py.File(shard_dir / s["file"]) as f:
            parts.append({k: f[k][:] for k in ("hr", "lr", "keys")})
    for k in ("hr", "lr", "keys"):
        np.testing.assert_array_equal(np.concatenate([p[k] for p in parts]), one[k])
    from srcore.data.h5 import H5Patches, ShardedH5Patches  # the reader side of the shard contract

    single, sharded = H5Patches(tmp_path / "one.h5"), ShardedH5Patches(shard_dir)
    assert len(sharded) == n
    for i in (0, 6, 7, n - 1):
        assert all(a.equal(b) for a, b in zip(sharded[i], single[i]))
    # and the single file holds what it says: sub-image 2 of im0 and the LR under it
    np.testing.assert_array_equal(one["hr"][1], srcs[0][0:32, 16:48, ::-1])
    np.testing.assert_array_equal(one["lr"][1], srcs[0][::4, ::4][0:8, 4:12, ::-1])


def test_refuses_to_overwrite_and_replaces_with_overwrite(tmp_path: Path):
    photos(tmp_path / "src", [(64, 64)])
    out = tmp_path / "x.lmdb"
    assert run("-i", tmp_path / "src", "--subimages", 32, "--step", 32, "-o", out).exit_code == 0
    before = (out / "meta_info.txt").read_text()
    res = run("-i", tmp_path / "src", "--subimages", 16, "--step", 16, "-o", out)
    assert res.exit_code == 2 and "exists already" in res.output and "--overwrite" in res.output
    assert (out / "meta_info.txt").read_text() == before
    assert run("-i", tmp_path / "src", "--subimages", 16, "--step", 16, "-o", out, "--overwrite").exit_code == 0
    assert len((out / "meta_info.txt").read_text().splitlines()) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src", "x.lmdb"]  # no temporary left
    folder = tmp_path / "F"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    res = run("-i", tmp_path / "src", "--subimages", 32, "--output-hr", folder, "--overwrite")
    assert res.exit_code == 2 and f"output folder {folder} exists and is not empty" in res.output
    assert [p.name for p in folder.iterdir()] == ["mine.txt"]  # PNG folders are never replaced


def test_interrupted_write_leaves_nothing(tmp_path: Path):
    from srcore.data.lmdb_store import write_lmdb
    from srcore.data.prepare import write_shards
    from srcore.data.subimages import write_h5_file

    photos(tmp_path / "src", [(64, 64), (64, 64)])
    plan = plan_subimages(sorted((tmp_path / "src").iterdir()), SubimageOptions(32, 16, 0, 2), make_lr=True)

    def boom(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_lmdb(plan, tmp_path / "a.lmdb", tmp_path / "b.lmdb", progress=boom)
    hr_only = plan_subimages(plan.files, SubimageOptions(32, 16))
    with pytest.raises(KeyboardInterrupt):
        write_lmdb(hr_only, tmp_path / "a.lmdb", None, progress=boom, jobs=2)  # the encoding pool is stopped
    with pytest.raises(KeyboardInterrupt):
        write_h5_file(plan, tmp_path / "src", tmp_path / "c.h5", shards=3, progress=boom)
    with pytest.raises(KeyboardInterrupt):
        write_shards(tmp_path / "d.shards", 10, 3, lambda p, a, b, progress=None: boom(0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--subimages", 80, "-o", "x.lmdb"], "1 image(s) smaller than --subimages 80: im0.png (64x72)"),
        (["--subimages", 32, "-o", "x.h5"], "need --scale"),
        (["--subimages", 32, "--step", 40, "-o", "x.lmdb"], "--step 40 is larger than --subimages 32"),
        (["--subimages", 32, "--scale", 3, "-o", "x.h5"], "must be multiples of --scale 3"),
        (["--subimages", 32, "--raw", "-o", "x.h5", "--scale", 2], "--raw stores raw pixels in an LMDB"),
        (["--subimages", 32, "-o", "x.lmdb", "--shards", 2], "--shards writes HDF5 shards: only with --output X.h5"),
        (["-o", "x.h5", "-j", 2, "-W", 32, "-H", 32, "--stride", 32], "--jobs: patches are written in parallel only"),
        (["--subimages", 32, "-o", "x.lmdb", "-W", 20], "--width: not with --subimages"),
        (["--subimages", 32, "-o", "x.png"], "use a .lmdb or .h5 name"),
        (["--step", 16, "-o", "x.h5"], "--step: only with --subimages"),
        (["-o", "x.h5", "--shards", 10, "-W", 32, "-H", 32, "--stride", 32], "--shards needs --no-shuffle"),
    ],
)
def test_bad_inputs_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list, message: str):
    photos(tmp_path / "src", [(64, 72)])
    monkeypatch.chdir(tmp_path)
    res = run("-i", tmp_path / "src", *args)
    assert res.exit_code == 2, res.output
    assert message in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_lr_size_mismatch_is_refused_before_writing(tmp_path: Path):
    photos(tmp_path / "src", [(64, 64)])
    photos(tmp_path / "lr", [(15, 16)])
    res = run("-i", tmp_path / "src", "--subimages", 32, "--scale", 4, "--lr-dir", tmp_path / "lr",
              "-o", tmp_path / "x.h5")
    assert res.exit_code == 2 and "1 LR image(s) are not 1/4 of their HR: im0.png 64x64 / im0.png 15x16" in res.output
    assert not (tmp_path / "x.h5").exists()


@pytest.mark.parametrize(("sig", "out_name", "extra"), [
    (signal.SIGINT, "k.lmdb", []),  # Ctrl-C while 2 processes encode PNGs
    (signal.SIGTERM, "k.h5", ["--scale", 2, "--shards", 500]),  # kill while 2 processes write shards
])
def test_killed_parallel_prepare_leaves_nothing(tmp_path: Path, sig: signal.Signals, out_name: str, extra: list):
    photos(tmp_path / "src", [(512, 512)] * 16)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "srcore", "data", "prepare", "-i", str(tmp_path / "src"),
                             "--subimages", "32", "--step", "16", "-j", "2", "-o", str(out / out_name),
                             *map(str, extra)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(out.glob(".*.incomplete-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    assert f"interrupted by {sig.name}; nothing was written" in err
    time.sleep(0.5)  # the workers are gone: nothing appears afterwards
    assert list(out.iterdir()) == []


def test_full_disk_removes_the_partial_lmdb(tmp_path: Path, tmpfs):
    """A real 256 kB tmpfs (the CLI's free-space check would refuse this run up front). LMDB says
    so at its last commit; the files must be closed for the space to come back. (HDF5 outputs
    share prepare.write_h5, whose full-disk path tests/test_safe_outputs.py covers.)"""
    from srcore.data.lmdb_store import write_lmdb
    from srcore.errors import SrcoreError

    photos(tmp_path / "src", [(128, 128)] * 3)
    small = tmpfs("small", "size=256k")
    plan = plan_subimages(sorted((tmp_path / "src").iterdir()), SubimageOptions(64, 32, 0, 2), make_lr=True)
    for _ in range(2):  # the second run finds the space of the first one free again
        with pytest.raises(SrcoreError) as info:
            write_lmdb(plan, small / "x.lmdb", small / "x_lr.lmdb", raw=True)  # 27 x (12 + 3) kB
        assert str(info.value) == f"no space left on device writing {small / 'x.lmdb'}"
        assert list(small.iterdir()) == []


def test_announced_size_holds_and_a_too_small_disk_is_refused(tmp_path: Path, tmpfs):
    from srcore.data.subimages import estimate_bytes

    photos(tmp_path / "src", [(96, 128), (64, 64)])
    plan = plan_subimages(sorted((tmp_path / "src").iterdir()), SubimageOptions(32, 16, 0, 2), make_lr=True)
    cases = [("lmdb", ["-o", "r.lmdb", "--output-lr", "r_lr.lmdb", "--raw"], ["r.lmdb", "r_lr.lmdb"]),
             ("lmdb", ["-o", "p.lmdb", "--output-lr", "p_lr.lmdb"], ["p.lmdb", "p_lr.lmdb"]),
             ("h5", ["-o", "s.h5", "--shards", 10], ["s.h5.shards"]),
             ("folder", ["--output-hr", "F", "--output-lr", "L"], ["F", "L"])]
    for kind, args, outputs in cases:
        res = run("-i", tmp_path / "src", "--subimages", 32, "--step", 16, "--scale", 2,
                  *[tmp_path / a if a in outputs or a == "s.h5" else a for a in args])
        assert res.exit_code == 0, res.output
        on_disk = sum(f.stat().st_blocks * 512 for o in outputs for f in (tmp_path / o).rglob("*") if f.is_file())
        assert 0 < on_disk <= estimate_bytes(plan, kind, 10 if kind == "h5" else None), (outputs, on_disk)
    small = tmpfs("small", "size=64k")
    res = run("-i", tmp_path / "src", "--subimages", 32, "--step", 16, "-o", small / "x.lmdb", "--raw")
    assert res.exit_code == 2 and f"not enough free space for {small / 'x.lmdb'}" in res.output, res.output
    assert list(small.iterdir()) == []


def test_paired_lmdbs_must_share_keys(tmp_path: Path, srcore_manager):
    from srcore.errors import SrcoreError

    img = np.zeros((16, 16, 3), np.uint8)
    for name, keys in (("hr", ["a_s001", "a_s002"]), ("lr", ["a_s001"])):
        (tmp_path / f"{name}.lmdb").mkdir()
        basicsr_lmdb(tmp_path / f"{name}.lmdb", {k: img if name == "hr" else img[::4, ::4].copy() for k in keys})
    cfg = TrainDataConfig(hr=str(tmp_path / "hr.lmdb"), lr=str(tmp_path / "lr.lmdb"), patch_size=16)
    with pytest.raises(SrcoreError, match=r"lacks 1 key\(s\) of data.train.hr .*hr.lmdb: a_s002"):
        make_train_dataset(cfg, scale=4, info=ModelInfo(scales=(4,)), registries=srcore_manager.registries, root=None)
