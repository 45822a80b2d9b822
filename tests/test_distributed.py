"""Acceptance: a 2-process gloo run trains and validates; killing one rank ends the other fast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
import yaml


def photo_folder(dest: Path, size: int = 48) -> Path:
    import torch
    from skimage import data

    from srcore.data.io import write_image

    dest.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate((data.astronaut(), data.chelsea(), data.coffee(), data.rocket())):
        t = torch.from_numpy(img[100 : 100 + size, 120 : 120 + size].copy()).permute(2, 0, 1).float() / 255
        write_image(dest / f"p{i}.png", t)
    return dest


def children(pid: int) -> list[int]:
    """All descendants of ``pid`` (from /proc)."""
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


def rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_two_rank_gloo_run_trains_validates_and_dies_with_a_rank(tmp_path, srcore_manager):
    photos = photo_folder(tmp_path / "photos")
    cfg = {
        "model": {"id": "core:tiny", "params": {"scale": 2, "channels": 4}},
        "data": {"train": {"hr": str(photos), "patch_size": 16, "batch_size": 2}},
        "stages": [{"steps": 100000, "optim": {"lr": 5e-3}}],
        "val": {"sets": [str(photos)], "every": 3, "metrics": [{"id": "core:psnr", "params": {"y_channel": True}}]},
        "train": {"save_every": 3, "log_every": 1, "seed": 1},
    }
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    from srcore.engine.checkpoint import latest_checkpoint, load_training_state

    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SRCORE_DIST_TIMEOUT": "30"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "srcore", "train", "-c", str(tmp_path / "cfg.yaml"), "--run-dir", str(run),
         "--nproc", "2", "--device", "cpu", "--plugin", "core", "--no-progress"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        rows: list[dict] = []
        while time.monotonic() < deadline and proc.poll() is None:
            log = run / "log.jsonl"
            rows = [json.loads(x) for x in log.read_text().splitlines()] if log.is_file() else []
            # wait for a *complete* checkpoint: the folder appears before its first one is renamed in
            if any(r["kind"] == "val" for r in rows) and latest_checkpoint(run) is not None:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
        val = [r for r in rows if r["kind"] == "val"]
        assert val and val[0]["step"] == 3 and val[0]["photos/psnr"] > 20
        ckpt = latest_checkpoint(run)
        assert ckpt is not None and load_training_state(ckpt)["world_size"] == 2

        # gradient averaging: 2 ranks x batch 2 took the same steps as 1 process x batch 4
        from safetensors.torch import load_file

        from srcore.config import validate_run_config
        from srcore.engine.loop import train

        step = int(ckpt.name.split("_")[1])
        ddp = load_file(str(ckpt / "generator.safetensors"))
        single = {**cfg, "stages": [{"steps": step, "optim": {"lr": 5e-3}}], "val": {"sets": []},
                  "data": {"train": {**cfg["data"]["train"], "batch_size": 4}}}
        train(validate_run_config(single, srcore_manager.registries), srcore_manager, run_dir=tmp_path / "one",
              device="cpu", progress=False)
        one = load_file(str(tmp_path / "one" / "checkpoints" / f"step_{step:07d}" / "generator.safetensors"))
        for k in one:
            torch.testing.assert_close(ddp[k], one[k], rtol=1e-4, atol=1e-6)

        ranks = {rank_of(p): p for p in children(proc.pid)}
        assert {0, 1} <= set(ranks), ranks
        os.kill(ranks[1], signal.SIGKILL)
        t0 = time.monotonic()
        proc.wait(timeout=60)
        elapsed = time.monotonic() - t0
        assert proc.returncode != 0
        assert elapsed < 60
        print(f"torchrun exited {proc.returncode} {elapsed:.1f} s after rank 1 was killed")
        for _ in range(50):  # the surviving rank is gone too, not left hanging
            if not alive(ranks[0]):
                break
            time.sleep(0.1)
        assert not alive(ranks[0])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
