"""Batched HDF5 reading (issue #18): the same batches as the per-sample path, direct reads equal to
h5py's, sharded files read by rank with every patch once per epoch, and ``srcore data bench``."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from srcore.data.datasets import H5PatchDataset
from srcore.data.h5 import H5Patches, ShardedH5Patches, is_h5_shards
from srcore.engine.sampling import make_loader, make_sampler
from srcore.errors import SrcoreError
from srcore.registry import ModelInfo

RGB = ModelInfo(scales=(2,), in_channels=3, out_channels=3)
Y = ModelInfo(scales=(2,), in_channels=1, out_channels=1)
Y_PRE = ModelInfo(scales=(2,), in_channels=1, out_channels=1, pre_upsampled=True)


def write_h5(path: Path, n: int, hr: int, lr: int, rgb: bool, seed: int = 0, **kw: object) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    tail = (3,) if rgb else ()
    arrays = rng.integers(0, 256, (n, lr, lr, *tail), dtype=np.uint8), rng.integers(0, 256, (n, hr, hr, *tail),
                                                                                     dtype=np.uint8)
    with h5py.File(path, "w") as f:
        f.create_dataset("lr", data=arrays[0], **kw)
        f.create_dataset("hr", data=arrays[1], **kw)
    return arrays


def write_shards(folder: Path, lr: np.ndarray, hr: np.ndarray, per: int) -> Path:
    """The layout of ``data prepare --shards per`` (the shared contract), written directly."""
    folder.mkdir()
    shards = []
    for k, a in enumerate(range(0, len(hr), per)):
        name = f"shard-{k:05d}.h5"
        with h5py.File(folder / name, "w") as f:
            f.create_dataset("lr", data=lr[a : a + per])
            f.create_dataset("hr", data=hr[a : a + per])
        shards.append({"file": name, "patches": len(hr[a : a + per])})
    index = {"format": "srcore-h5-shards", "version": 1, "patches": len(hr), "shards": shards}
    (folder / "index.json").write_text(json.dumps(index))
    return folder


def batches(ds: H5PatchDataset, batched: bool, n: int, start: int = 0, workers: int = 0, seed: int = 5) -> list:
    return list(islice(iter(make_loader(ds, 5, seed, 0, 1, start, workers, batched=batched)), n))


def assert_same(a: list, b: list) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys() == {"lr", "hr"}
        for k in x:
            assert x[k].dtype == y[k].dtype == torch.float32 and x[k].is_contiguous()
            assert torch.equal(x[k], y[k]), k


@pytest.mark.parametrize("case", ["y-lr-size", "rgb-cropped-to-y", "rgb-cropped", "pre-upsampled"])
def test_batched_and_per_sample_paths_give_identical_batches(tmp_path: Path, case: str):
    rgb = case != "y-lr-size"
    _, hr = write_h5(tmp_path / "p.h5", 13, 12, 6, rgb)
    info, patch = {"y-lr-size": (Y, 12), "rgb-cropped-to-y": (Y, 8), "rgb-cropped": (RGB, 8),
                   "pre-upsampled": (Y_PRE, 8)}[case]
    ds = H5PatchDataset(tmp_path / "p.h5", scale=2, info=info, patch_size=patch, flip=True, rot90=True, repeat=2)
    # 13 patches x 2 repeats in batches of 5: batches straddle epochs, indices repeat within a batch
    new, ref = batches(ds, True, 7), batches(ds, False, 7)
    assert_same(new, ref)
    assert new[0]["hr"].shape == (5, 1 if info.in_channels == 1 else 3, patch, patch)
    if case == "y-lr-size":  # independent of both paths: each HR sample is an orientation of its stored patch
        keys = next(iter(make_sampler(ds, 5, 5, 0, 1, 0)))
        for i, (_, _, index) in enumerate(keys):
            stored = hr[index % 13].astype(np.float32) / 255
            views = [np.rot90(v, r) for v in (stored, stored[::-1]) for r in range(4)]
            assert any(np.array_equal(new[0]["hr"][i, 0].numpy(), v) for v in views)
        assert len({tuple(b["hr"][:, 0, 0, 0].tolist()) for b in new}) == 7  # not one batch repeated


def test_stream_keys_are_those_of_the_per_sample_sampler():
    """The slice-per-epoch sampler against the stream definition, sample by sample (as before #18)."""
    from srcore.engine.sampling import StreamSampler, mix_seed

    n, batch, seed = 7, 5, 11
    for rank in (0, 1):
        got = list(islice(iter(StreamSampler(n, batch, seed, rank, 2, start=3)), 4))
        for k, keys in enumerate(got, start=3):
            want = []
            for sample in range((k * 2 + rank) * batch, (k * 2 + rank + 1) * batch):
                epoch, pos = divmod(sample, n)
                perm = torch.randperm(n, generator=torch.Generator().manual_seed(mix_seed(seed, epoch, 1)))
                want.append((epoch, pos, int(perm[pos])))
            assert keys == want


def test_resumed_stream_and_workers_give_the_same_batches(tmp_path: Path):
    write_h5(tmp_path / "p.h5", 30, 8, 4, rgb=False)
    ds = H5PatchDataset(tmp_path / "p.h5", scale=2, info=Y, patch_size=8, flip=True, rot90=True)
    run = batches(ds, True, 8)
    assert_same(batches(ds, True, 3, start=5), run[5:])  # a resume at micro-batch 5
    assert_same(batches(ds, True, 8, workers=2), run)  # two worker processes, the same stream
    assert_same(batches(ds, False, 8), run)


def test_direct_reads_equal_h5py_and_other_layouts_fall_back(tmp_path: Path):
    lr, hr = write_h5(tmp_path / "plain.h5", 50, 8, 4, rgb=True)
    write_h5(tmp_path / "chunked.h5", 50, 8, 4, rgb=True, chunks=(4, 4, 4, 3), compression="gzip")
    idx = np.array([7, 3, 3, 49, 0, 8, 9, 10, 7])  # unsorted, repeated, runs of neighbours
    plain, chunked = H5Patches(tmp_path / "plain.h5"), H5Patches(tmp_path / "chunked.h5")
    assert plain._direct["hr"] is not None and chunked._direct["hr"] is None
    for p in (plain, chunked):
        got_lr, got_hr = p.read(idx)
        assert np.array_equal(got_lr, lr[idx]) and np.array_equal(got_hr, hr[idx])
    with pytest.raises(IndexError):
        plain.read(np.array([50]))


def test_float_patches_with_max_value_batch_like_per_sample(tmp_path: Path):
    rng = np.random.default_rng(1)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        for name, size in (("lr", 4), ("hr", 8)):
            d = f.create_dataset(name, data=rng.random((9, size, size), dtype=np.float32))
            d.attrs["max_value"] = 1.0
    ds = H5PatchDataset(tmp_path / "f.h5", scale=2, info=Y, patch_size=6, flip=True, rot90=True)
    assert_same(batches(ds, True, 3), batches(ds, False, 3))


def test_sharded_reading_under_two_ranks_visits_every_patch_once_per_epoch(tmp_path: Path):
    lr, hr = write_h5(tmp_path / "one.h5", 23, 8, 4, rgb=False)
    folder = write_shards(tmp_path / "p.h5.shards", lr, hr, per=5)  # shards of 5, 5, 5, 5, 3
    assert is_h5_shards(folder) and not is_h5_shards(tmp_path / "one.h5")
    sharded = ShardedH5Patches(folder)
    assert len(sharded) == 23 and sharded.shard_ranges()[-1] == (20, 3)
    idx = np.array([22, 0, 5, 4, 21, 4])
    assert all(np.array_equal(a, b[idx]) for a, b in zip(sharded.read(idx), (lr, hr)))
    assert torch.equal(sharded[13][1], torch.from_numpy(hr[13]).float()[None] / 255)

    kw = {"scale": 2, "info": Y, "patch_size": 8, "flip": True, "rot90": True}
    ds = H5PatchDataset(folder, shard_by_rank=True, repeat=2, **kw)
    seen = {}
    for rank in (0, 1):
        sampler = make_sampler(ds, 4, 3, rank, 2, 0)
        own = sum(c for _, c in sharded.shard_ranges()[rank::2]) * 2  # its shards, twice (repeat)
        keys = [k for b in islice(iter(sampler), own // 4 + 1) for k in b][:own]  # one epoch of this rank
        assert {k[0] for k in keys} == {0}
        shards = {(i % 23) // 5 for _, _, i in keys}
        assert shards == ({0, 2, 4} if rank == 0 else {1, 3})  # only its own shards
        seen[rank] = [i for _, _, i in keys]
    everything = sorted(seen[0] + seen[1])
    assert everything == list(range(46))  # each patch of each repeat once, by one rank

    # a sharded set trains like the single file it was cut from, and the two ranks' batches differ
    single = H5PatchDataset(tmp_path / "one.h5", **kw)
    assert_same(batches(H5PatchDataset(folder, **kw), True, 4), batches(single, True, 4))
    r0, r1 = (next(iter(make_loader(ds, 4, 3, r, 2, 0, 0))) for r in (0, 1))
    assert not torch.equal(r0["hr"], r1["hr"])
    assert_same([r0], [default for default in islice(iter(make_loader(ds, 4, 3, 0, 2, 0, 0, batched=False)), 1)])


def test_shard_and_layout_errors_are_one_line(tmp_path: Path):
    lr, hr = write_h5(tmp_path / "one.h5", 6, 8, 4, rgb=False)
    kw = {"scale": 2, "info": Y, "patch_size": 8, "flip": True, "rot90": True}
    with pytest.raises(SrcoreError, match="shard_by_rank needs a shard directory"):
        H5PatchDataset(tmp_path / "one.h5", shard_by_rank=True, **kw)
    folder = write_shards(tmp_path / "s.shards", lr, hr, per=4)
    ds = H5PatchDataset(folder, shard_by_rank=True, **kw)
    with pytest.raises(SrcoreError, match="2 shard\\(s\\), fewer than the 3 processes need"):
        make_sampler(ds, 2, 0, 0, 3, 0)
    index = json.loads((folder / "index.json").read_text())
    index["shards"][1]["patches"] = 5
    (folder / "index.json").write_text(json.dumps(index))
    with pytest.raises(SrcoreError, match="shard-00001.h5 holds 2 patches, the index says 5"):
        ShardedH5Patches(folder)
    with h5py.File(tmp_path / "wide.h5", "w") as f:
        f.create_dataset("lr", data=np.zeros((2, 4, 6), np.uint8))
        f.create_dataset("hr", data=np.zeros((2, 8, 12), np.uint8))
    with pytest.raises(SrcoreError, match="rot90"):
        H5PatchDataset(tmp_path / "wide.h5", **{**kw, "patch_size": 12})


def test_data_bench_reports_rates_and_a_verdict(tmp_path: Path):
    import re

    import yaml
    from click.testing import CliRunner

    from srcore.cli import main

    write_h5(tmp_path / "p.h5", 40, 16, 8, rgb=True)
    cfg = {"model": {"id": "core:tiny", "params": {"scale": 2, "channels": 4}},
           "data": {"train": {"hr": str(tmp_path / "p.h5"), "patch_size": 16, "batch_size": 4}},
           "stages": [{"steps": 10, "losses": [{"id": "core:l1"}]}]}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    args = ["data", "bench", "-c", str(tmp_path / "run.yaml"), "--plugin", "core", "--steps", "4",
            "--model-steps", "2", "--device", "cpu", "--no-progress"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 3, res.output
    data = re.fullmatch(r"data: .*p\.h5 \(H5PatchDataset, 40 samples\), batch 4, 0 worker\(s\): (\d+) samples/s = "
                        r"([\d.]+) batches/s \(4 batches in ([\d.]+) s; .*", lines[0])
    assert data, lines[0]
    assert abs(int(data[1]) - 4 * float(data[2])) <= 0.01 * int(data[1]) + 1  # batches of 4 samples
    step = re.fullmatch(r"model: core:tiny, step supervised on cpu: ([\d.]+) ms/step .*", lines[1])
    assert step, lines[1]
    verdict = re.fullmatch(r"verdict: the data can feed ([\d.]+) steps/s; the model step takes ([\d.]+) ms => "
                           r"(data|compute)-bound.*", lines[2])
    assert verdict and float(verdict[1]) == pytest.approx(float(data[2]), abs=0.1)
    assert (verdict[3] == "data") == (float(verdict[1]) < 1000 / float(verdict[2]))

    missing = "data.train.hr=" + str(tmp_path / "missing.h5")
    bad = CliRunner().invoke(main, [*args[:4], "-s", missing, "--plugin", "core"])
    assert bad.exit_code == 2 and len(bad.output.strip().splitlines()) == 1 and "missing.h5" in bad.output


def test_a_node_may_hold_only_its_own_shards(tmp_path: Path):
    lr, hr = write_h5(tmp_path / "one.h5", 20, 8, 4, rgb=False)
    folder = write_shards(tmp_path / "p.h5.shards", lr, hr, per=5)  # shards 0..3
    (folder / "shard-00001.h5").unlink()  # rank 1 of 2 reads shards 1 and 3: they live on another node
    kw = {"scale": 2, "info": Y, "patch_size": 8, "flip": False, "rot90": False}
    with pytest.raises(SrcoreError, match="1 shard file\\(s\\) listed in index.json are missing: shard-00001.h5"):
        H5PatchDataset(folder, **kw)  # a single stream needs every shard
    ds = H5PatchDataset(folder, shard_by_rank=True, **kw)
    got = next(iter(make_loader(ds, 10, 0, 0, 2, 0, 0)))["hr"][:, 0]  # rank 0: shards 0 and 2, here
    stored = torch.from_numpy(hr).float() / 255
    assert all(any(torch.equal(g, stored[i]) for i in [*range(5), *range(10, 15)]) for g in got)
    with pytest.raises(SrcoreError, match="rank 1 of 2 reads shard\\(s\\) shard-00001.h5 .*not on this machine"):
        make_sampler(ds, 10, 0, 1, 2, 0)
    with pytest.raises(SrcoreError, match="rank 0 of 1 reads shard\\(s\\) shard-00001.h5"):
        make_sampler(ds, 10, 0, 0, 1, 0)
