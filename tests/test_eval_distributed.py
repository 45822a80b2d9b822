"""``srcore eval --nproc N``: the images are sharded over ranks and merged on rank 0 in image
order, and every number (per-image values, set means, FID) equals the single-process one.

FID runs on randomly initialised Inception weights of the right architecture (the real ones
cannot be downloaded here), with 64-dimensional features to keep it fast.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from srcore.cli import main
from srcore.data.io import write_image
from srcore.errors import SrcoreError
from srcore.metrics import evaluate as ev
from srcore.metrics.base import SetMetric
from srcore.metrics.distributed import ShardedSet, check_distributable, combine, measure_share
from srcore.testing import shared_data_dir

FID = "pt_inception-2015-12-05-6726825d.pth"


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A torch hub cache holding random FID Inception weights, as TORCH_HOME for the module."""
    import torchvision

    home = tmp_path_factory.mktemp("torch")
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.manual_seed(0)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(net.state_dict(), home / "hub" / "checkpoints" / FID)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(home))
        yield home


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Five HR images of different sizes (a mix of gradient and noise, so PSNR/SSIM/FID vary)."""
    d = tmp_path_factory.mktemp("synth", numbered=False)
    g = torch.Generator().manual_seed(5)
    for i in range(5):
        h, w = 36 + 4 * i, 44 - 2 * i
        ramp = torch.linspace(0, 1, w).expand(3, h, w) * torch.rand(3, 1, 1, generator=g)
        write_image(d / f"im{i}.png", (0.7 * ramp + 0.3 * torch.rand(3, h, w, generator=g)).clamp(0, 1))
    return d


class ChannelFID(SetMetric):
    """FID's running statistics and distance on cheap features (channel means and deviations)."""

    name = "chfid"
    higher_is_better = False

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        from srcore.metrics.perceptual import RunningStats

        self.fake, self.real = RunningStats(), RunningStats()

    def measure(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        assert hr is not None
        return tuple(torch.cat([x.mean((2, 3)), x.std((2, 3))], 1).cpu() for x in (sr, hr))

    def add(self, stats: tuple[torch.Tensor, torch.Tensor]) -> None:
        self.fake.update(stats[0])
        self.real.update(stats[1])

    def compute(self) -> float:
        from srcore.metrics.perceptual import frechet_distance

        return frechet_distance(*self.fake.mean_cov(), *self.real.mean_cov())


def test_shards_merged_in_image_order_equal_one_process(srcore_manager, synth: Path) -> None:
    from srcore.config import ComponentRef
    from srcore.data.datasets import build_degradation, make_eval_dataset

    regs = srcore_manager.registries
    deg = ev.ExactInput(build_degradation(ComponentRef(id="core:bicubic"), 2, regs))
    ds = make_eval_dataset(str(synth), scale=2, root=None, degradation=deg)
    specs = ev.build_metrics(["psnr", "ssim"], regs, crop_border=2, y_channel=True, y_convention="matlab")
    specs.append(ev.MetricSpec("chfid", ChannelFID(), False))
    kw = {"model": "bicubic", "set_name": "synth", "scale": 2, "workers": 1}
    single = ev.evaluate(ev.bicubic_jobs(ds), specs, **kw)
    names = [f"im{i}" for i in range(5)]
    assert [r["image"] for r in single.images] == names
    total = 0.0  # the set mean is the plain mean of the per-image values, summed in image order
    for r in single.images:
        total += r["psnr"]
    assert single.metrics["psnr"] == total / 5
    assert single.metrics["chfid"] > 0
    for world in (2, 3, 7):  # 7 > 5 images: two ranks have none
        shares = [ShardedSet(ds, r, world) for r in range(world)]
        parts = [measure_share(ev.bicubic_jobs(s), len(s), specs, **kw) for s in shares]
        for r, (rows, stats) in enumerate(parts):
            assert [row["image"] for row in rows] == names[r::world]
            assert len(stats["chfid"]) == len(rows)
        merged = combine(parts, specs, model="bicubic", set_name="synth", scale=2)
        assert merged.images == single.images, world  # bit-identical per-image values, in image order
        assert merged.metrics == single.metrics, world  # set means and the set-level value exactly equal


def test_set_metric_without_measure_is_refused_across_processes() -> None:
    class OnlyUpdate(SetMetric):
        def update(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> None: ...

    with pytest.raises(SrcoreError, match=r"set-level metric\(s\) only.*--nproc 1"):
        check_distributable([ev.MetricSpec("only", OnlyUpdate(), True)])


def test_bad_nproc_is_one_line_and_too_many_are_clamped(srcore_manager, synth: Path, tmp_path: Path) -> None:
    base = ["eval", "--model", "bicubic", "--scale", "2", "--metrics", "psnr"]
    for bad in ("0", "-2"):
        res = CliRunner().invoke(main, [*base, "--data", str(synth), "--nproc", bad])
        assert res.exit_code == 2 and res.output.strip().count("\n") == 0, res.output
        assert f"--nproc {bad}: give 1 or more processes" in res.output
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.png").write_bytes((synth / "im0.png").read_bytes())
    res = CliRunner().invoke(main, [*base, "--data", str(one), "--nproc", "4"])  # 1 image: 1 process, no launch
    assert res.exit_code == 0, res.output
    assert "--nproc 4: the largest set has 1 image(s); running 1 process(es)" in res.output
    assert "launching" not in res.output and any(line.startswith("bicubic  one") for line in res.output.splitlines())


def test_two_ranks_equal_one_process(srcore_manager, torch_home: Path, synth: Path, tmp_path: Path) -> None:
    """The real launch: 2 gloo ranks under torchrun, PSNR, SSIM and FID (real code, random weights)."""
    data, root = str(synth), []
    shared = shared_data_dir()
    if (shared / "Set5" / "HR").is_dir():  # Set5 where the shared data is, else the synthetic set
        data, root = "set5", ["--data-root", str(shared)]
    args = ["eval", "--model", "bicubic", "--data", data, *root, "--scale", "2", "--metrics", "psnr,ssim,fid",
            "--metric-param", "fid.dims=64", "--workers", "1"]
    env = {**os.environ, "TORCH_HOME": str(torch_home), "OMP_NUM_THREADS": "1"}  # one thread as below
    two = tmp_path / "two.json"
    proc = subprocess.run([sys.executable, "-m", "srcore", *args, "--nproc", "2", "--json", str(two)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "launching 2 processes: torchrun --standalone --nproc-per-node=2" in proc.stderr
    assert proc.stdout.count("bicubic ") == 1 and proc.stdout.count(f"wrote {two}") == 1  # rank 0 alone
    one = tmp_path / "one.json"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # float32 Inception features depend on the thread count
    try:
        res = CliRunner().invoke(main, [*args, "--json", str(one)])
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output
    got, want = json.loads(two.read_text()), json.loads(one.read_text())
    sets = [r["set"] for r in got["results"]]
    assert sets == [r["set"] for r in want["results"]] == (["Set5"] if root else ["synth"])
    assert [r["n_images"] for r in got["results"]] == [5]
    for g, w in zip(got["results"], want["results"]):
        assert g["images"] == w["images"]  # every per-image value, bit for bit, in image order
        assert g["metrics"] == w["metrics"]  # PSNR/SSIM means and FID exactly
    assert got == want
