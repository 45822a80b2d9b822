"""Resume edge cases: a run whose plugin is missing; an elastic restart that starts over."""

from __future__ import annotations

import json

from click.testing import CliRunner

from srcore.cli import main


def _fake_run(folder, plugins):
    """A run folder as `srcore train` leaves it, reduced to what config resolution reads."""
    folder.mkdir()
    cfg = {"model": {"id": "imdnx:imdn", "params": {"scale": 4}}, "stages": [{"steps": 10}]}
    (folder / "config.json").write_text(json.dumps(cfg))
    ckpt = folder / "checkpoints" / "step_0000004"
    ckpt.mkdir(parents=True)
    (ckpt / "meta.json").write_text(json.dumps({"step": 4, "model": "imdnx:imdn", "plugins": plugins}))


def test_resume_names_the_recorded_distribution_of_a_missing_plugin(srcore_manager, tmp_path):
    _fake_run(tmp_path / "run", {"imdnx": {"distribution": "sr-plugin-imdnx", "version": "0.3.1"},
                                 "core": {"distribution": "srcore", "version": "0.1.0"}})
    res = CliRunner().invoke(main, ["train", "--run-dir", str(tmp_path / "run"), "--resume", "--plugin", "core"])
    assert res.exit_code == 2, res.output
    assert "plugin imdnx, which is not installed" in res.output
    assert "sr-plugin-imdnx 0.3.1" in res.output and "pip install sr-plugin-imdnx==0.3.1" in res.output
    assert "step_0000004" in res.output and "Traceback" not in res.output


def test_resume_without_a_recorded_distribution_keeps_the_plain_error(srcore_manager, tmp_path):
    _fake_run(tmp_path / "run", {"core": {"distribution": "srcore", "version": "0.1.0"}})
    res = CliRunner().invoke(main, ["train", "--run-dir", str(tmp_path / "run"), "--resume", "--plugin", "core"])
    assert res.exit_code == 2, res.output
    assert "plugin imdnx, which is not installed" in res.output and "pip install" not in res.output


def test_elastic_restart_before_the_first_checkpoint_drops_the_failed_attempts_log_rows(
        srcore_manager, tmp_path, monkeypatch):
    import torch
    from skimage import data

    from srcore.data.io import write_image

    photos = tmp_path / "p"
    photos.mkdir()
    write_image(photos / "a.png", torch.from_numpy(data.astronaut()[:64, :64].copy()).permute(2, 0, 1) / 255)
    run = tmp_path / "run"
    run.mkdir()
    stale = {"step": 7, "kind": "train", "loss/total": 123.0, "time": 0.0}
    (run / "log.jsonl").write_text(json.dumps(stale) + "\n")  # the attempt that died at step 7, unsaved
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    cfg = {"model": {"id": "core:tiny", "params": {"channels": 4}},
           "data": {"train": {"hr": str(photos), "patch_size": 16, "batch_size": 2}},
           "stages": [{"steps": 2}], "train": {"log_every": 1, "save_every": 100, "preflight": False}}
    (tmp_path / "c.yaml").write_text(json.dumps(cfg))
    res = CliRunner().invoke(main, ["train", "-c", str(tmp_path / "c.yaml"), "--run-dir", str(run),
                                    "--device", "cpu", "--no-progress", "--plugin", "core"])
    assert res.exit_code == 0, res.output
    assert "no checkpoint yet, starting over" in res.output
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in rows if r["kind"] == "train"]
    assert train_steps == [1, 2], rows
