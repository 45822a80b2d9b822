"""``srcore train`` / ``srcore runs``: config errors, overrides, torchrun relaunch, run summaries."""

from __future__ import annotations

import json

import yaml
from click.testing import CliRunner

from srcore.cli import main
from srcore.cli.train_cmd import torchrun_command


def test_config_errors_are_all_listed_with_exit_code_2(srcore_manager, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"id": "core:tiny", "params": {"scale": 9}},
                                   "stages": [{"steps": 0, "losses": [{"id": "core:l2"}]}]}))
    res = CliRunner().invoke(main, ["train", "-c", str(cfg), "-s", "train.amp=fp8", "--plugin", "core"])
    assert res.exit_code == 2
    for where in ("stages.0.steps", "train.amp"):
        assert where in res.output
    cfg.write_text(yaml.safe_dump({"model": {"id": "core:tiny", "params": {"scale": 9}},
                                   "stages": [{"losses": [{"id": "core:l2"}]}]}))
    res = CliRunner().invoke(main, ["train", "-c", str(cfg), "--plugin", "core"])
    assert res.exit_code == 2
    assert "model.params.scale" in res.output and "stages.0.losses.0.id" in res.output and "core:l1" in res.output


def test_nproc_relaunches_the_same_command_under_torchrun():
    cmd = torchrun_command(2, ["-c", "a.yaml", "--nproc", "2", "-s", "x=1", "--nproc=2"])
    assert cmd[1:] == ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "srcore", "train",
                       "-c", "a.yaml", "-s", "x=1"]


def test_train_then_runs_show(srcore_manager, tmp_path):
    import torch
    from skimage import data

    from srcore.data.io import write_image

    photos = tmp_path / "p"
    photos.mkdir()
    write_image(photos / "a.png", torch.from_numpy(data.astronaut()[:64, :64].copy()).permute(2, 0, 1) / 255)
    cfg = {"model": {"id": "core:tiny", "params": {"channels": 4}},
           "data": {"train": {"hr": str(photos), "patch_size": 16, "batch_size": 2}},
           "stages": [{"steps": 100}],
           "val": {"sets": [str(photos)], "every": 4}, "train": {"log_every": 2, "save_every": 4}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["train", "-c", str(tmp_path / "c.yaml"), "-s", "stages.0.steps=4",
                                    "--name", "r1", "-s", f"out_dir={tmp_path}", "--device", "cpu", "--no-progress",
                                    "--plugin", "core"])
    assert res.exit_code == 0, res.output
    assert "done: 4 steps" in res.output
    res = CliRunner().invoke(main, ["runs", "show", str(tmp_path / "r1"), "--json"])
    summary = json.loads(res.output)
    assert summary["steps_done"] == summary["steps_total"] == 4
    assert summary["checkpoints"] == ["step_0000004"] and summary["samples"] == ["step_0000004.png"]
    assert summary["best"]["label"] == "p/psnr" and summary["last_val"]["p/psnr"] == summary["best"]["value"]
    res = CliRunner().invoke(main, ["runs", "show", str(tmp_path / "r1")])
    assert "progress   4/4 steps" in res.output and "best       p/psnr" in res.output
