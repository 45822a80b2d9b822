"""A run folder is owned by one run: lock, verified resume, stale temp files, config changes, full disk.

Every case drives the real ``srcore train`` in a subprocess on ``core:tiny``, as a user would.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from srcore.engine.checkpoint import list_checkpoints


@pytest.fixture
def run_config(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
    cfg = {"model": {"id": "core:tiny", "params": {"channels": 4, "scale": 2}},
           "data": {"train": {"hr": str(photos), "patch_size": 16, "batch_size": 2}},
           "stages": [{"steps": 8, "optim": {"lr": 0.01}}],
           "train": {"log_every": 1, "save_every": 4, "keep_last": 3, "device": "cpu"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def srcore(*args: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "srcore", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env, **kw)  # type: ignore[call-overload]


def train(cfg: Path, run: Path, *extra: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return srcore("train", "-c", cfg, "--run-dir", run, "--no-progress", "--plugin", "core", *extra, **kw)


def one_error_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == 2, res.stderr
    assert "Traceback" not in res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, res.stderr
    return errors[0]


def test_a_second_run_on_the_same_folder_is_refused_and_kill_9_leaves_no_stale_lock(run_config, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen([sys.executable, "-m", "srcore", "train", "-c", str(run_config), "--run-dir", str(run),
                              "--no-progress", "--plugin", "core", "-s", "stages.0.steps=100000"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 60
        while not list_checkpoints(run) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert list_checkpoints(run), "the first run wrote no checkpoint"
        second = train(run_config, run)
        line = one_error_line(second)
        assert f"run folder {run} is in use by another srcore run (PID {first.pid})" in line
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    step = int(list_checkpoints(run)[-1].name.split("_")[1])
    resumed = srcore("train", "--run-dir", run, "--resume", "-s", f"stages.0.steps={step + 2}", "--no-progress",
                     "--plugin", "core")  # the run's own config.json, and the lock is free again
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed from step {step}" in resumed.stderr
    assert f"note: resume applies the changed setting stages.0.steps: 100000 -> {step + 2}" in resumed.stderr
    assert f"done: {step + 2} steps" in resumed.stdout


def test_resume_skips_a_corrupt_newest_checkpoint_and_removes_stale_temp_folders(run_config, tmp_path):
    run = tmp_path / "run"
    assert train(run_config, run).returncode == 0
    newest = run / "checkpoints" / "step_0000008"
    state = newest / "training_state.pt"
    size = state.stat().st_size
    state.write_bytes(state.read_bytes()[: size // 2])  # a kill during a copy, a full disk ...
    stale = run / "checkpoints" / ".tmp_step_0000009_999999"
    stale.mkdir()
    (stale / "generator.safetensors").write_bytes(b"half")
    res = train(run_config, run, "--resume", "-s", "stages.0.steps=10")
    assert res.returncode == 0, res.stderr
    assert (f"warning: skipping checkpoint {newest}: training_state.pt has {size // 2} bytes, {size} were written"
            in res.stderr)
    assert f"resumed from step 4 (checkpoint {run / 'checkpoints' / 'step_0000004'})" in res.stderr
    assert "removed 1 temporary file(s) left by an interrupted run" in res.stderr
    assert not stale.exists()
    assert [p.name for p in list_checkpoints(run)][-1] == "step_0000010"


class Evil:
    def __reduce__(self):  # what a malicious training_state.pt would run on unpickling
        return (os.system, ("touch pwned",))


def test_malicious_or_unreadable_training_states_are_refused_in_one_line(run_config, tmp_path):
    run = tmp_path / "run"
    assert train(run_config, run).returncode == 0
    for ckpt in list_checkpoints(run):
        (ckpt / "manifest.json").unlink()  # as if written before manifests: the load itself must refuse
        (ckpt / "training_state.pt").write_bytes(pickle.dumps(Evil()))
    res = train(run_config, run, "--resume", cwd=tmp_path)
    line = one_error_line(res)
    assert f"--resume: no complete checkpoint in {run / 'checkpoints'}" in line
    assert res.stderr.count("warning: skipping checkpoint") == 2 and "cannot read" in res.stderr
    assert not (tmp_path / "pwned").exists()


def test_a_changed_learning_rate_is_applied_and_a_changed_model_refused(run_config, tmp_path):
    run = tmp_path / "run"
    assert train(run_config, run).returncode == 0
    res = train(run_config, run, "--resume", "-s", "stages.0.steps=12", "-s", "stages.0.optim.lr=0.001")
    assert res.returncode == 0, res.stderr
    assert "note: resume applies the changed setting stages.0.optim.lr: 0.01 -> 0.001" in res.stderr
    rows = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]
    lrs = {r["step"]: r["lr/generator"] for r in rows if r["kind"] == "train"}
    assert lrs[8] == 0.01 and lrs[9] == lrs[12] == pytest.approx(0.001)  # the new rate is the one used
    saved = json.loads((run / "config.json").read_text())
    assert saved["stages"][0]["optim"]["lr"] == 0.001
    res = train(run_config, run, "--resume", "-s", "stages.0.steps=14", "-s", "model.params.channels=8",
                "-s", "train.seed=5")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "the configuration differs from the one" in res.stderr
    assert "  - model.params.channels: 4 -> 8" in res.stderr and "  - train.seed: 0 -> 5" in res.stderr
    assert [p.name for p in list_checkpoints(run)][-1] == "step_0000012"  # nothing trained


def test_resume_reports_a_changed_world_size(srcore_manager, run_config, tmp_path, capsys):
    from srcore.config import resolve_run_config
    from srcore.engine.dist import DistInfo
    from srcore.engine.loop import _resume_point

    run = tmp_path / "run"
    assert train(run_config, run).returncode == 0
    cfg = resolve_run_config(srcore_manager.registries, files=[run / "config.json"])
    ckpt, state, _ = _resume_point(run, True, cfg, DistInfo(rank=0, world_size=2))
    assert ckpt == list_checkpoints(run)[-1] and state["world_size"] == 1
    err = capsys.readouterr().err
    assert "the checkpoint was written by 1 process(es), this run has 2" in err
    assert "the global batch changes from 2 to 4 samples per step" in err


def test_a_full_disk_during_training_is_one_line_and_leaves_no_temp_folder(run_config, tmp_path, tmpfs):
    small = tmpfs("small", "size=256k")
    (small / "filler").write_bytes(b"\0" * (256 * 1024 - 24 * 1024))
    run = small / "run"
    res = train(run_config, run, "-s", "stages.0.steps=40", "-s", "train.save_every=1")
    line = one_error_line(res)
    assert "no space left on device" in line and str(run) in line
    assert not list((run / "checkpoints").glob(".tmp_*")) if (run / "checkpoints").exists() else True
    for ckpt in list_checkpoints(run):  # what is there is complete
        from srcore.engine.checkpoint import verify_checkpoint

        assert verify_checkpoint(ckpt) is None
