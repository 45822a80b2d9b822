"""Preflight: the errors that used to appear when a later stage started are caught before step 1.

Each case of the issue is run through the real CLI in a subprocess: exit 2, the problem named with
its config path, no traceback, no run folder, and in seconds. The in-process tests check that a
run with a preflight trains bit-identically to one without, and that all problems come at once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
import yaml
from click.testing import CliRunner

from srcore.cli import main
from srcore.engine.loop import train
from srcore.engine.preflight import PreflightError
from srcore.testing import shared_data_dir

DATA = shared_data_dir()
needs_data = pytest.mark.skipif(DATA is None or not (DATA / "Set14").is_dir(), reason="needs ../shared/data/Set14")


def _srcore(*args: str, cwd: str) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "SRCORE_DATA_ROOT": str(DATA)}
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "srcore", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=180)
    return res, time.perf_counter() - t0


CASES = {
    # recipe, overrides, what the problem line must say
    "fasrgan-unet-needs-128": ("fasrgan:fasrgan-x4", ["data.train.patch_size=64"],
                               ["stages.1 ('gan'", "patch_size=64", "U-Net discriminator needs 128x128"]),
    "fssrgan-width": ("fasrgan:fssrgan-x4", ["model.params.nf=16"],
                      ["stages.1 ('gan'", "to have 64 channels, but got 16"]),
    "srrescgan-vgg128": ("srrescgan:srrescgan-x4",
                         ["data.train.patch_size=64", "data.train.degradation.id=core:bicubic",
                          "data.train.degradation.params={}"],
                         ["stages.0 ('sr'", "patch_size=64", "128"]),
    "fxsr-gan-weight": ("fxsr:fxsr-pd-x4", ["stages.1.gan.weight=0.01"],
                        ["stages.1 ('gan'", "gan.weight", "step_params.weights.adv"]),
    "glean-x2": ("srcnn:glean-x8", ["model.params.scale=2"], ["model.params.scale=2", "supports scale(s) 8"]),
    "fsrcnn-scale-0": ("srcnn:fsrcnn-x2", ["model.params.scale=0"],
                       ["model.params.scale=0", "supports scale(s) 2, 3, 4"]),
    "patch-1000": ("srcnn:fsrcnn-x2", ["data.train.patch_size=1000"],
                   ["data.train.patch_size=1000", "14 of 14 training image(s) are smaller", "baboon.png (500x480)"]),
}


@needs_data
@pytest.mark.parametrize("case", list(CASES))
def test_preflight_catches_a_later_stage_error_before_step_1(case, tmp_path):
    recipe, overrides, expected = CASES[case]
    sets = [x for o in overrides for x in ("-s", o)]
    res, seconds = _srcore("train", "-r", recipe, *sets, "-s", "data.train.hr=Set14", "--run-dir", "run",
                           "--no-progress", "--device", "cpu", cwd=str(tmp_path))
    assert res.returncode == 2, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    for text in expected:
        assert text in res.stderr, (text, res.stderr[-2000:])
    assert not (tmp_path / "run").exists()  # nothing written: no folder, no checkpoint
    assert seconds < 20, f"{case}: preflight took {seconds:.1f} s"


class Photos(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        g = torch.Generator().manual_seed(i)
        hr = torch.rand(3, 16, 16, generator=g)
        return {"lr": torch.nn.functional.avg_pool2d(hr[None], 2)[0], "hr": hr}


def _cfg(srcore_manager, **train):
    from srcore.config import validate_run_config

    data = {"model": {"id": "core:tiny", "params": {"channels": 4, "scale": 2}},
            "data": {"train": {"batch_size": 2, "patch_size": 16}},
            "stages": [{"steps": 3, "optim": {"lr": 1e-2}}, {"name": "b", "steps": 2, "ema_decay": 0.9}],
            "train": {"save_every": 100, **train}}
    return validate_run_config(data, srcore_manager.registries)


def test_a_run_with_preflight_trains_bit_identically_to_one_without(srcore_manager, tmp_path):
    from srcore.engine.checkpoint import load_checkpoint

    weights = []
    for flag in (True, False):
        cfg = _cfg(srcore_manager, preflight=flag)
        train(cfg, srcore_manager, run_dir=tmp_path / str(flag), dataset=Photos(), device="cpu", progress=False)
        weights.append(load_checkpoint(tmp_path / str(flag), manager=srcore_manager).module.state_dict())
    assert weights[0].keys() == weights[1].keys()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_every_problem_is_listed_at_once(srcore_manager, tmp_path):
    cfg = _cfg(srcore_manager).model_dump(mode="json")
    cfg["stages"][1]["discriminator"] = {"id": "core:vgg128"}
    cfg["stages"][1]["step"] = "core:adversarial"
    cfg["val"] = {"sets": ["builtin:skimage"], "best_metric": "lpips", "max_images": 1}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["config", "check", "-c", str(tmp_path / "c.yaml"), "--plugin", "core",
                                    "--device", "cpu"])
    assert res.exit_code == 2
    assert "preflight found 2 problem(s)" in res.output
    assert "stages.1 ('b', step core:adversarial): one batch" in res.output and "128" in res.output
    assert ("val.best_metric 'lpips' is none of the validation values: builtin:skimage/psnr, builtin:skimage/ssim"
            in res.output)


def test_config_check_passes_a_good_run_and_writes_nothing(srcore_manager, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(srcore_manager).model_dump(mode="json")
    cfg["data"]["train"]["hr"] = "builtin:skimage"
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["config", "check", "-c", str(tmp_path / "c.yaml"), "--plugin", "core",
                                    "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "ok: preflight: training data, stage 'main', stage 'b' checked" in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_preflight_error_in_process_leaves_no_run_folder(srcore_manager, tmp_path):
    cfg = _cfg(srcore_manager).model_copy()
    data = cfg.model_dump(mode="json")
    data["data"]["train"]["patch_size"] = 15  # not a multiple of the scale
    from srcore.config import validate_run_config

    bad = validate_run_config(data, srcore_manager.registries)
    with pytest.raises(PreflightError, match="  - data.train.patch_size 15 is not a multiple of the scale 2"):
        train(bad, srcore_manager, run_dir=tmp_path / "r", device="cpu", progress=False)
    assert not (tmp_path / "r").exists()
