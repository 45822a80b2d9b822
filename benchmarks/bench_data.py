"""Training-data throughput and memory (issue #18); every ratio is measured within one run.

    .venv/bin/python benchmarks/bench_data.py            # all sections, 10M-patch file in /tmp
    .venv/bin/python benchmarks/bench_data.py --quick    # 1M-patch big file, fewer blocks
    .venv/bin/python benchmarks/bench_data.py --only batched workers

Sections (``SECTIONS`` below; each is a function ``(args, files) -> None`` that prints its lines):

* ``batched``: HDF5 patches (40x40 Y HR, 20x20 LR, flips and rot90, batch 125, main process,
  one torch thread) through the engine's loader, batched path (``get_batch``: one read per
  batch, augmentation on the batch) vs the per-sample path (``SeededItems.__getitem__`` per key +
  ``default_collate``), the same micro-batches in both (asserted equal). ABBA blocks; the
  median of the per-block ratios of samples/s. Then reading alone: the same random batches as
  one h5py fancy read (sorted indices) vs the ``preadv`` runs the batched path uses.
* ``memory``: RSS of one DataLoader worker (batched path) after reading the same number of
  batches from the 100k-patch file and from the big file (10M patches; 1M with --quick), each in
  a fresh interpreter so both start from the same parent.
* ``workers``: samples/s the main process receives with num_workers 0, 1, 2 (batched path).
* ``lmdb``: LMDB vs image folder (helper E's section, when present).

The patch files are cut from the shared photographs (faces/celeba_hq, 1024x1024: Y of each,
HR patches at stride 2, LR = PIL bicubic half-size Y at stride 1), written with one big write per
photograph into /tmp, and deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

HR, SCALE, STRIDE, BATCH = 40, 2, 2, 125


@dataclass
class Files:
    small: Path  # 100k patches
    big: Path  # 10M (1M with --quick)
    n_small: int
    n_big: int


# -- patch files -----------------------------------------------------------------------------------

def photographs() -> list[Path]:
    from srcore.testing import shared_data_dir

    folder = shared_data_dir() / "faces" / "celeba_hq"
    files = sorted(folder.glob("*.jpg"))
    if not files:
        sys.exit(f"bench_data: no photographs in {folder} (set SRCORE_SHARED_DATA)")
    return files


def patch_blocks(files: list[Path]) -> Any:
    """(lr, hr) uint8 patch arrays, one block per photograph (Y, HR stride 2), cycling over the files."""
    from PIL import Image

    from srcore.data.prepare import y_uint8

    lr_size = HR // SCALE
    while True:
        for path in files:
            with Image.open(path) as im:
                y = y_uint8(np.asarray(im.convert("RGB")))
            h, w = (s - s % SCALE for s in y.shape)
            y = y[:h, :w]
            lr = np.asarray(Image.fromarray(y).resize((w // SCALE, h // SCALE), Image.Resampling.BICUBIC))
            win_hr = np.lib.stride_tricks.sliding_window_view(y, (HR, HR))[::STRIDE, ::STRIDE]
            win_lr = np.lib.stride_tricks.sliding_window_view(lr, (lr_size, lr_size))[:: STRIDE // SCALE,
                                                                                      :: STRIDE // SCALE]
            rows, cols = min(win_hr.shape[0], win_lr.shape[0]), min(win_hr.shape[1], win_lr.shape[1])
            yield (win_lr[:rows, :cols].reshape(-1, lr_size, lr_size), win_hr[:rows, :cols].reshape(-1, HR, HR))


def write_patch_file(path: Path, n: int, files: list[Path]) -> float:
    """An ``n``-patch file in the ``data prepare`` layout (contiguous uint8); seconds taken."""
    import h5py

    t0 = time.perf_counter()
    with h5py.File(path, "w") as f:
        d_lr = f.create_dataset("lr", (n, HR // SCALE, HR // SCALE), np.uint8)
        d_hr = f.create_dataset("hr", (n, HR, HR), np.uint8)
        done = 0
        for lr, hr in patch_blocks(files):
            take = min(len(hr), n - done)
            d_lr[done : done + take], d_hr[done : done + take] = lr[:take], hr[:take]
            done += take
            if done == n:
                break
    return time.perf_counter() - t0


def make_files(args: argparse.Namespace, tmp: Path, need_big: bool) -> Files:
    files = photographs()
    n_small, n_big = 100_000, 1_000_000 if args.quick else 10_000_000
    small, big = tmp / "patches_100k.h5", tmp / f"patches_{n_big // 1_000_000}M.h5"
    sec = write_patch_file(small, n_small, files)
    print(f"wrote {small.name}: {n_small} patches, {small.stat().st_size / 2**20:.0f} MiB in {sec:.1f} s")
    if need_big:
        sec = write_patch_file(big, n_big, files)
        print(f"wrote {big.name}: {n_big} patches, {big.stat().st_size / 2**30:.1f} GiB in {sec:.1f} s")
    return Files(small, big, n_small, n_big)


# -- shared measuring helpers ---------------------------------------------------------------------

def h5_dataset(path: Path) -> Any:
    from srcore.data.datasets import H5PatchDataset
    from srcore.registry import ModelInfo

    info = ModelInfo(scales=(SCALE,), in_channels=1, out_channels=1)
    return H5PatchDataset(path, scale=SCALE, info=info, patch_size=HR, flip=True, rot90=True)


def loader(ds: Any, *, batched: bool, start: int = 0, workers: int = 0) -> Any:
    from srcore.engine.sampling import make_loader

    return make_loader(ds, BATCH, 0, 0, 1, start, workers, batched=batched)


def timed(it: Any, n: int) -> tuple[float, list[Any]]:
    t0 = time.perf_counter()
    out = [next(it) for _ in range(n)]
    return time.perf_counter() - t0, out


def vm_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- sections ----------------------------------------------------------------------------------------

def bench_batched(args: argparse.Namespace, files: Files) -> None:
    """HDF5 batched vs per-sample path, same micro-batches, samples/s per core."""
    import torch

    torch.set_num_threads(1)
    ds = h5_dataset(files.small)
    n_ref, n_new = (4, 20) if args.quick else (8, 40)  # batches per block: ~equal wall time
    ratios, rates = [], {"per-sample": [], "batched": []}
    order = ["per-sample", "batched", "batched", "per-sample"] * (args.blocks // 2)
    for b, kind in enumerate(order):
        start = (b // 2) * 1000  # both kinds of a pair read the same micro-batches
        it = iter(loader(ds, batched=kind == "batched", start=start))
        next(it)  # the loader's first batch pays one-off costs (permutation, file open)
        sec, out = timed(it, n_ref if kind == "per-sample" else n_new)
        rates[kind].append(len(out) * BATCH / sec)
        if b % 2 == 0:
            first = out[:n_ref]
        else:
            for x, y in zip(first, out[:n_ref]):  # same samples, bit for bit
                assert all(torch.equal(x[k], y[k]) for k in ("lr", "hr")), "batched and per-sample batches differ"
            ratios.append(rates["batched"][-1] / rates["per-sample"][-1])
    print(f"batched: per-sample {statistics.median(rates['per-sample']):.0f} samples/s, batched "
          f"{statistics.median(rates['batched']):.0f} samples/s (medians of {len(order) // 2} blocks each)")
    print(f"batched: ratio batched / per-sample = {statistics.median(ratios):.1f}x (median of {len(ratios)} "
          f"ABBA block ratios, min {min(ratios):.1f}x, max {max(ratios):.1f}x); identical batches checked")
    bench_raw_read(args, files)


def bench_raw_read(args: argparse.Namespace, files: Files) -> None:
    """Reading alone: one batch of random indices as one h5py fancy read (sorted) vs ``preadv`` runs."""
    from srcore.data.h5 import H5Patches

    direct = H5Patches(files.small)
    fancy = H5Patches(files.small)
    fancy._direct = {"lr": None, "hr": None}  # the h5py path of chunked files
    rng = np.random.default_rng(0)
    batches = [rng.integers(0, files.n_small, BATCH) for _ in range(40 if args.quick else 160)]
    rates: dict[str, list[float]] = {"h5py": [], "preadv": []}
    for kind in ("h5py", "preadv", "preadv", "h5py") * 2:
        p = fancy if kind == "h5py" else direct
        t0 = time.perf_counter()
        for idx in batches:
            p.read(idx)
        rates[kind].append(len(batches) * BATCH / (time.perf_counter() - t0))
    a, b = statistics.median(rates["h5py"]), statistics.median(rates["preadv"])
    print(f"batched: raw reads of lr+hr, batch {BATCH}: h5py sorted fancy index {a:.0f} samples/s, preadv {b:.0f} "
          f"samples/s ({b / a:.1f}x)")


def rss_child(path: str, batches: int) -> None:
    """(in a fresh interpreter) read ``batches`` batches through one worker; print the worker's RSS."""
    ds = h5_dataset(Path(path))
    it = iter(loader(ds, batched=True, workers=1))
    pid = it._workers[0].pid  # the worker process
    next(it)
    before = vm_rss_mb(pid)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    sec = time.perf_counter() - t0
    print(f"{before:.1f} {vm_rss_mb(pid):.1f} {vm_rss_mb(os.getpid()):.1f} {batches * BATCH / sec:.0f}")


def bench_memory(args: argparse.Namespace, files: Files) -> None:
    """RSS of one worker reading the big file vs the 100k-patch file."""
    batches = 200 if args.quick else 800
    res = {}
    for name, path in (("100k", files.small), (f"{files.n_big // 1_000_000}M", files.big)):
        out = subprocess.run([sys.executable, __file__, "--rss-child", str(path), str(batches)], check=True,
                             capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        first, last, main_rss, rate = (float(v) for v in out.stdout.split()[-4:])
        res[name] = last
        print(f"memory: {name}-patch file ({path.stat().st_size / 2**30:.2f} GiB): worker RSS {first:.0f} MiB after "
              f"1 batch, {last:.0f} MiB after {batches} more ({batches * BATCH} samples, {rate:.0f} samples/s); "
              f"main process {main_rss:.0f} MiB")
    a, b = res.values()
    print(f"memory: worker RSS big / small file = {b / a:.3f} ({(b / a - 1) * 100:+.1f} %)")


def bench_workers(args: argparse.Namespace, files: Files) -> None:
    """samples/s with 0, 1 and 2 DataLoader workers (batched path), two rounds, medians."""
    import torch

    torch.set_num_threads(1)
    ds = h5_dataset(files.small)
    n = 40 if args.quick else 160
    rates: dict[int, list[float]] = {0: [], 1: [], 2: []}
    for order in ((0, 1, 2), (2, 1, 0)):
        for w in order:
            it = iter(loader(ds, batched=True, workers=w))
            for _ in range(2 * max(w, 1)):  # workers started and their first batches out
                next(it)
            sec, _ = timed(it, n)
            rates[w].append(n * BATCH / sec)
            del it
    base = statistics.median(rates[0])
    print("workers: " + ", ".join(f"{w} -> {statistics.median(r):.0f} samples/s ({statistics.median(r) / base:.2f}x)"
                                  for w, r in rates.items()) + f" on {os.cpu_count()} cores")


# -- lmdb (helper E): sub-image stores vs whole-image folders ----------------------------------------

LMDB_PATCH, LMDB_SCALE, LMDB_BATCH, SUB, SUB_STEP = 128, 4, 16, 480, 240


def bench_lmdb(args: argparse.Namespace, files: Files | None) -> None:
    """samples/s of ESRGAN's training batches (16 x 128 px, x4) from sub-images vs whole photographs.

    The photographs (faces/celeba_hq, 56 1024x1024 JPEGs) are cut into 480x480 sub-images, step
    240 (BasicSR's DIV2K preparation: 16 per photograph) and stored as an LMDB of PNG (level 1,
    BasicSR's), an LMDB of raw pixels (--raw) and an HDF5 file (with its x4 MATLAB-bicubic LR).
    Baselines: the JPEG folder and faces/ffhq10 (10 1024x1024 PNGs, as DIV2K is PNG), both with
    the decoded-image cache off (SRCORE_IMAGE_CACHE_MB=0), so every sample decodes a whole photo.
    Batches come from the engine's loader (``make_loader``: HDF5 through ``get_batch``, the others
    per sample) in the main process with one torch thread; folders and LMDBs crop 128 px and make
    the LR on the fly (core:bicubic), HDF5 crops its stored LR. Every store is read once first
    (page cache). Blocks in ABBA order; each store's ratio to a baseline is taken within a round
    and the median printed."""
    import torch

    from srcore.config import TrainDataConfig
    from srcore.data.datasets import make_train_dataset
    from srcore.data.lmdb_store import write_lmdb
    from srcore.data.subimages import SubimageOptions, plan_subimages, write_h5_file
    from srcore.engine.sampling import make_loader
    from srcore.plugins import PluginManager
    from srcore.registry import ModelInfo
    from srcore.testing import shared_data_dir

    torch.set_num_threads(1)
    os.environ["SRCORE_IMAGE_CACHE_MB"] = "0"
    photos = photographs()
    pngs = sorted((shared_data_dir() / "faces" / "ffhq10").glob("*.png"))
    tmp = Path(tempfile.mkdtemp(prefix="srcore-bench-lmdb-", dir=args.tmp))
    try:
        stores: dict[str, Path] = {"folder-jpg": photos[0].parent}
        if pngs:
            stores["folder-png"] = pngs[0].parent
        opts = SubimageOptions(SUB, SUB_STEP, 0, LMDB_SCALE)
        plan = plan_subimages(photos, opts)
        for name, raw in (("lmdb-png", False), ("lmdb-raw", True)):
            out = tmp / f"{name}.lmdb"
            t0 = time.perf_counter()
            write_lmdb(plan, out, None, raw=raw, jobs=2)
            stores[name] = out
            print(f"lmdb: wrote {out.name}: {plan.total} sub-images of {SUB} px from {len(photos)} photographs, "
                  f"{sum(f.stat().st_size for f in out.iterdir()) / 2**20:.0f} MiB in "
                  f"{time.perf_counter() - t0:.1f} s (-j 2)")
        t0 = time.perf_counter()
        stores["h5"] = write_h5_file(plan_subimages(photos, opts, make_lr=True), photos[0].parent, tmp / "sub.h5",
                                     jobs=2)
        print(f"lmdb: wrote sub.h5 (HR + x4 LR): {stores['h5'].stat().st_size / 2**20:.0f} MiB in "
              f"{time.perf_counter() - t0:.1f} s (-j 2)")
        for path in [*photos, *pngs, *(stores[k] / "data.mdb" for k in ("lmdb-png", "lmdb-raw")), stores["h5"]]:
            with open(path, "rb") as f:  # every store starts in the page cache
                while f.read(1 << 24):
                    pass
        registries = PluginManager().load(only=["core"]).registries
        info = ModelInfo(scales=(LMDB_SCALE,))
        iters = {}
        for name, path in stores.items():
            ds = make_train_dataset(TrainDataConfig(hr=str(path), patch_size=LMDB_PATCH), scale=LMDB_SCALE, info=info,
                                    registries=registries, root=None)
            iters[name] = iter(make_loader(ds, LMDB_BATCH, 0, 0, 1, 0, 0))
            batch = next(iters[name])  # first-touch costs (handles, permutation)
            assert batch["hr"].shape == (LMDB_BATCH, 3, LMDB_PATCH, LMDB_PATCH), name
            assert batch["lr"].shape == (LMDB_BATCH, 3, LMDB_PATCH // LMDB_SCALE, LMDB_PATCH // LMDB_SCALE), name
        n = {name: (1 if args.quick else 2) if name.startswith("folder") else (6 if args.quick else 12)
             for name in stores}
        rates: dict[str, list[float]] = {k: [] for k in stores}
        names = list(stores)
        rounds = 1 if args.quick else 2
        for name in (names + names[::-1]) * rounds:
            sec, _ = timed(iters[name], n[name])
            rates[name].append(n[name] * LMDB_BATCH / sec)
        bases = [b for b in ("folder-jpg", "folder-png") if b in stores]
        for name in names:
            line = f"lmdb: {name:10s} {statistics.median(rates[name]):7.1f} samples/s"
            for base in bases:
                if name != base:
                    ratios = [r / b for r, b in zip(rates[name], rates[base])]  # each A..B..B..A half-round
                    line += (f"  {statistics.median(ratios):5.1f}x {base} (min {min(ratios):.1f}, "
                             f"max {max(ratios):.1f})")
            print(line)
        print(f"lmdb: batches of {LMDB_BATCH} x {LMDB_PATCH} px x{LMDB_SCALE}, {SUB}-px sub-images (step {SUB_STEP}) "
              f"vs whole 1024-px photographs (decode cache off); main process, 1 torch thread, "
              f"medians of {len(rates[names[0]])} blocks")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SECTIONS: dict[str, Callable[[argparse.Namespace, Any], None]] = {
    "batched": bench_batched,
    "memory": bench_memory,
    "workers": bench_workers,
    "lmdb": bench_lmdb,
}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--rss-child":
        rss_child(sys.argv[2], int(sys.argv[3]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1M-patch big file, fewer blocks and batches")
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS), help="run only these sections")
    ap.add_argument("--blocks", type=int, default=None, help="ABBA blocks of the batched section (multiple of 4)")
    ap.add_argument("--tmp", default=None, help="folder for the patch files (default: a new one in /tmp)")
    args = ap.parse_args()
    args.blocks = args.blocks or (4 if args.quick else 8)
    wanted = args.only or list(SECTIONS)
    tmp = Path(tempfile.mkdtemp(prefix="srcore-bench-data-", dir=args.tmp))
    try:
        files = make_files(args, tmp, need_big="memory" in wanted) if set(wanted) - {"lmdb"} else None
        for name in wanted:
            SECTIONS[name](args, files)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
