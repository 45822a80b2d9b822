"""Results that are wrong must not look right: NaN validation, a diverging loss, which checkpoint a run is.

(NaN/inf weights refused by ``upscale``/``eval`` are in tests/test_bad_inputs.py.)
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from srcore.config import validate_run_config
from srcore.engine.checkpoint import CKPT_DIR, list_checkpoints, load_checkpoint
from srcore.engine.loop import NonFiniteMetric, train
from srcore.hookspecs import hookimpl
from srcore.testing import RandomPairs, TinyDiscriminatorPlugin, shared_data_dir

VAL = {"v": [{"name": "a", **RandomPairs()[0]}]}


class Flaky:
    """A metric that is finite for its first ``good`` calls, NaN afterwards."""

    higher_is_better = True

    def __init__(self, good: int) -> None:
        self.calls, self.good = 0, good

    def __call__(self, sr: torch.Tensor, hr: torch.Tensor) -> float:
        self.calls += 1
        return 20.0 + self.calls if self.calls <= self.good else math.nan




class TestPlugin:
    @hookimpl
    def srcore_register_metrics(self, register):
        register("flaky", lambda c: Flaky(good=2), description="finite twice (preflight, step 2), then NaN")



def cfg_of(manager, **over):
    data = {"model": {"id": "core:tiny", "params": {"channels": 4, "scale": 2}},
            "data": {"train": {"batch_size": 2, "patch_size": 16}},
            "stages": [{"steps": 6}], "train": {"save_every": 2, "keep_last": 5},
            "val": {"every": 2, "metrics": [{"id": "wr:flaky"}]}}
    data.update(over)
    return validate_run_config(data, manager.registries)


def test_nan_validation_stops_the_run_and_is_never_best(srcore_manager, srcore_plugin, tmp_path):
    srcore_plugin(TestPlugin(), "wr")
    run = tmp_path / "r"
    with pytest.raises(NonFiniteMetric, match=r"validation at step 4 gave NaN \(v/flaky = nan\)"):
        train(cfg_of(srcore_manager), srcore_manager, run_dir=run, dataset=RandomPairs(), eval_sets=VAL, device="cpu",
              progress=False)
    assert [p.name for p in list_checkpoints(run)] == ["step_0000002"]  # nothing saved after the NaN
    best = json.loads((run / CKPT_DIR / "best" / "meta.json").read_text())["best"]
    assert best == {"label": "v/flaky", "value": 22.0, "step": 2}


def test_a_run_folder_stands_for_what_its_recipe_selects(srcore_manager, srcore_plugin, tmp_path):
    srcore_plugin(TestPlugin(), "wr")
    srcore_plugin(TinyDiscriminatorPlugin(), "td")
    stages = [{"name": "psnr", "steps": 4},
              {"name": "gan", "steps": 4, "step": "adversarial", "discriminator": {"id": "td:tinyd"},
               "gan": {"weight": 0.1}}]
    val = {"every": 2, "metrics": [{"id": "core:psnr"}]}
    for select in ("last", "best"):
        cfg = cfg_of(srcore_manager, stages=stages, val={**val, "select": select})
        train(cfg, srcore_manager, run_dir=tmp_path / select, dataset=RandomPairs(), eval_sets=VAL, device="cpu",
              progress=False)
    last = load_checkpoint(tmp_path / "last", manager=srcore_manager)
    assert last.source == str(tmp_path / "last" / CKPT_DIR / "step_0000008")
    assert "the last checkpoint, step 8 (stage 'gan'), as the run's val.select = last" in last.notes[0]
    best = load_checkpoint(tmp_path / "best", manager=srcore_manager)
    meta = json.loads((tmp_path / "best" / CKPT_DIR / "best" / "meta.json").read_text())
    assert best.source.endswith("best") and meta["stage"] == 1 and meta["step"] > 4  # the GAN stage's own best
    assert best.notes[0].startswith(f"using {tmp_path / 'best' / CKPT_DIR / 'best'}: best by v/psnr")
    from click.testing import CliRunner

    from srcore.cli import main

    shown = CliRunner().invoke(main, ["runs", "show", str(tmp_path / "last")]).output
    assert f"uses       {tmp_path / 'last' / CKPT_DIR / 'step_0000008'} (the last checkpoint" in shown


DATA = shared_data_dir()


@pytest.mark.skipif(DATA is None or not (DATA / "Set14").is_dir(), reason="needs ../shared/data/Set14")
def test_an_exploding_loss_is_warned_about_on_the_console_and_in_the_log(tmp_path):
    """The issue's case: FSRCNN at lr 1 reaches 1e24 within five steps, all finite."""
    env = {**os.environ, "SRCORE_DATA_ROOT": str(DATA), "OMP_NUM_THREADS": "1"}
    res = subprocess.run([sys.executable, "-m", "srcore", "train", "-r", "srcnn:fsrcnn-x2", "-s", "data.train.hr=Set14",
                          "-s", "stages.0.optim.lr=1", "-s", "stages.0.steps=10", "-s", "val.sets=[]", "-s",
                          "train.log_every=5", "--run-dir", str(tmp_path / "r"), "--no-progress", "--device", "cpu"],
                         capture_output=True, text=True, env=env, timeout=180)
    assert res.returncode == 0, res.stderr
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: loss/")]
    assert warnings and "by step 5 (stage 'main'): the run is diverging; lower stages.0.optim.lr" in warnings[0]
    rows = [json.loads(ln) for ln in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert [r["message"] for r in rows if r["kind"] == "warning"] == warnings


@pytest.mark.skipif(DATA is None or not (DATA / "weights" / "vdsr_x234_twtygqyy.pth").is_file(),
                    reason="needs ../shared/data/weights/vdsr_x234_twtygqyy.pth")
def test_a_release_for_every_scale_says_which_scale_it_is_used_at():
    weights = DATA / "weights" / "vdsr_x234_twtygqyy.pth"
    chosen = load_checkpoint(weights)
    assert chosen.scale == 2
    assert ("srcnn:vdsr serves scales 2, 3, 4 and the file does not say which: using x2; -p scale=N chooses "
            "another (3, 4)") in chosen.notes
    asked = load_checkpoint(weights, params={"scale": 3})
    assert asked.scale == 3 and not any("serves scales" in n for n in asked.notes)
