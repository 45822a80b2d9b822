"""``train.wandb``: the run's values, grids and warnings go to Weights & Biases (offline here)."""

from __future__ import annotations

import sys
import types

import pytest

from srcore.config import validate_run_config
from srcore.engine.loop import train
from srcore.engine.preflight import PreflightError
from srcore.testing import RandomPairs

VAL = {"v": [{"name": "a", **RandomPairs()[0]}]}


def cfg_of(manager, mode="offline", steps=4):
    return validate_run_config({"model": {"id": "core:tiny", "params": {"channels": 4, "scale": 2}},
                                "data": {"train": {"batch_size": 2, "patch_size": 16}},
                                "stages": [{"steps": steps}], "val": {"every": 2},
                                "train": {"log_every": 2, "samples": 1, "wandb": {"project": "srcore-test",
                                                                                  "mode": mode}}},
                               manager.registries)


class FakeRun:
    def __init__(self, kw):
        self.kw, self.logged, self.finished = kw, [], False

    def log(self, values, step):
        self.logged.append((step, dict(values)))

    def finish(self):
        self.finished = True


@pytest.fixture
def fake_wandb(monkeypatch):
    mod = types.ModuleType("wandb")
    mod.runs = []

    def init(**kw):
        mod.runs.append(FakeRun(kw))
        return mod.runs[-1]

    mod.init = init
    mod.Image = lambda path: ("image", path)
    monkeypatch.setitem(sys.modules, "wandb", mod)
    return mod


def test_values_grids_and_resume_go_to_one_wandb_run(srcore_manager, tmp_path, fake_wandb):
    run = tmp_path / "r"
    train(cfg_of(srcore_manager), srcore_manager, run_dir=run, dataset=RandomPairs(), eval_sets=VAL, device="cpu",
          progress=False)
    first = fake_wandb.runs[0]
    assert first.kw["project"] == "srcore-test" and first.kw["name"] == "r" and first.kw["mode"] == "offline"
    assert first.kw["config"]["model"]["id"] == "core:tiny" and first.finished
    steps: dict[int, dict] = {}
    for step, values in first.logged:
        steps.setdefault(step, {}).update(values)
    assert "loss/total" in steps[2] and "lr/generator" in steps[2] and "val/v/psnr" in steps[4]
    assert steps[4]["samples"] == ("image", str(run / "samples" / "step_0000004.png"))
    train(cfg_of(srcore_manager, steps=6), srcore_manager, run_dir=run, resume=True, dataset=RandomPairs(),
          eval_sets=VAL, device="cpu", progress=False)
    assert fake_wandb.runs[1].kw["id"] == first.kw["id"] == (run / "wandb_id").read_text().strip()


def test_missing_wandb_is_a_preflight_problem(srcore_manager, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import fails
    with pytest.raises(PreflightError, match=r"train.wandb: wandb is not installed; pip install 'srcore\[wandb\]'"):
        train(cfg_of(srcore_manager), srcore_manager, run_dir=tmp_path / "r", dataset=RandomPairs(), device="cpu",
              progress=False)
    assert not (tmp_path / "r").exists()


def test_real_wandb_offline_run_is_written(srcore_manager, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason="wandb is an optional extra (pip install 'srcore[wandb]')")
    monkeypatch.setenv("WANDB_SILENT", "true")
    train(cfg_of(srcore_manager), srcore_manager, run_dir=tmp_path / "r", dataset=RandomPairs(), eval_sets=VAL,
          device="cpu", progress=False)
    run_id = (tmp_path / "r" / "wandb_id").read_text().strip()
    assert list((tmp_path / "r" / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
