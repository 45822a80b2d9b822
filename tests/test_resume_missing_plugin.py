"""``srcore train --resume`` of a run whose plugin is not installed names what to pip install."""

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
