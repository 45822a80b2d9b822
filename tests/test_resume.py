"""Acceptance: kill -9 a CPU training run mid-way, resume it, and get bit-identical weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

STEPS = 60


def photo_folder(dest: Path, n: int = 4, size: int = 48) -> Path:
    """Crops of scikit-image's bundled photographs, written as PNGs (real training data)."""
    from skimage import data

    from srcore.data.io import write_image

    dest.mkdir(parents=True, exist_ok=True)
    import torch

    for i, img in enumerate((data.astronaut(), data.chelsea(), data.coffee(), data.rocket())[:n]):
        t = torch.from_numpy(img[100 : 100 + size, 120 : 120 + size].copy()).permute(2, 0, 1).float() / 255
        write_image(dest / f"p{i}.png", t)
    return dest


def write_config(tmp: Path, **train: object) -> Path:
    cfg = {
        "model": {"id": "core:tiny", "params": {"scale": 2, "channels": 4}},
        "data": {"train": {"hr": str(photo_folder(tmp / "photos")), "patch_size": 16, "batch_size": 4}},
        "stages": [
            {"name": "a", "steps": STEPS // 2, "optim": {"lr": 5e-3}, "ema_decay": 0.9},
            {"name": "b", "steps": STEPS // 2, "optim": {"lr": 2e-3}, "ema_decay": 0.8,
             "schedule": {"type": "cosine", "warmup_steps": 5}},
        ],
        "train": {"save_every": 10, "log_every": 10, "keep_last": 3, "seed": 7, **train},
    }
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def srcore(*args: str) -> list[str]:
    return [sys.executable, "-m", "srcore", *args]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "SRCORE_LOAD_PLUGINS": ""}


def test_killed_run_resumes_bit_identically(tmp_path):
    from safetensors.torch import load_file

    from srcore.engine.checkpoint import list_checkpoints

    cfg = write_config(tmp_path)
    common = ["train", "-c", str(cfg), "--device", "cpu", "--no-progress", "--plugin", "core"]
    full = subprocess.Popen(srcore(*common, "--run-dir", str(tmp_path / "full")), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = subprocess.Popen(srcore(*common, "--run-dir", str(tmp_path / "killed")), env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not list_checkpoints(tmp_path / "killed") and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    done = list_checkpoints(tmp_path / "killed")
    assert done, "the run was killed before its first checkpoint"
    step_at_kill = int(done[-1].name.split("_")[1])
    assert step_at_kill < STEPS, "the run finished before it could be killed; the test proves nothing"

    resumed = subprocess.run(srcore(*common, "--run-dir", str(tmp_path / "killed"), "--resume"), env=ENV,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    out, _ = full.communicate(timeout=120)
    assert full.returncode == 0, out[-2000:]

    a = list_checkpoints(tmp_path / "full")[-1]
    b = list_checkpoints(tmp_path / "killed")[-1]
    assert a.name == b.name == f"step_{STEPS:07d}"
    for name in ("generator.safetensors", "generator_ema.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        assert wa.keys() == wb.keys()
        for k in wa:
            assert (wa[k] == wb[k]).all(), f"{name}:{k} differs after resuming from step {step_at_kill}"
    # the log of the resumed run continues where the checkpoint was, without duplicate steps
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in (tmp_path / "killed" / "log.jsonl").open()]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    from click.testing import CliRunner

    from srcore.cli import main

    cfg = write_config(tmp_path)
    res = CliRunner().invoke(main, ["train", "-c", str(cfg), "--run-dir", str(tmp_path / "none"), "--resume",
                                    "--plugin", "core"])
    assert res.exit_code == 2
    assert "no complete checkpoint" in res.output


def test_existing_run_folder_is_not_overwritten(tmp_path):
    from click.testing import CliRunner

    from srcore.cli import main

    cfg = write_config(tmp_path)
    ckpt = tmp_path / "run" / "checkpoints" / "step_0000005"
    ckpt.mkdir(parents=True)
    (ckpt / "meta.json").write_text("{}")
    res = CliRunner().invoke(main, ["train", "-c", str(cfg), "--run-dir", str(tmp_path / "run"), "--plugin", "core"])
    assert res.exit_code == 2
    assert "already has checkpoints: pass --resume" in res.output
