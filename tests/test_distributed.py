"""Acceptance: a 2-process gloo run trains and validates; killing one rank ends the other fast."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
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


def _config(tmp_path: Path, steps: int, **train: object) -> Path:
    cfg = {
        "model": {"id": "core:tiny", "params": {"scale": 2, "channels": 4}},
        "data": {"train": {"hr": str(photo_folder(tmp_path / "photos")), "patch_size": 16, "batch_size": 2}},
        "stages": [{"steps": steps, "optim": {"lr": 5e-3}, "ema_decay": 0.9, "accumulate": 2}],
        "train": {"log_every": 1, "seed": 3, **train},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _launch(cfg: Path, run: Path, *extra: str, nproc: int = 2) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SRCORE_DIST_TIMEOUT": "30"}
    return subprocess.Popen(
        [sys.executable, "-m", "srcore", "train", "-c", str(cfg), "--run-dir", str(run), "--nproc", str(nproc),
         "--device", "cpu", "--plugin", "core", "--no-progress", *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )


def _wait_for(cond, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, proc.stdout.read().decode()[-3000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _agent(launcher: int) -> int:
    """The torchrun process that the srcore launcher started."""
    return next(p for p in children(launcher) if b"torch.distributed.run" in Path(f"/proc/{p}/cmdline").read_bytes())


def _logged_steps(run: Path) -> int:
    log = run / "log.jsonl"
    return len(log.read_text().splitlines()) if log.is_file() else 0


@pytest.mark.parametrize("level", ["launcher", "agent", "rank"])
def test_no_orphans_when_any_process_level_is_killed(tmp_path, level):
    """kill -9 of the srcore launcher, the torchrun agent or a rank: nothing of the run is left after 15 s."""
    proc = _launch(_config(tmp_path, 100000, save_every=100000), tmp_path / "run")
    try:
        _wait_for(lambda: _logged_steps(tmp_path / "run") >= 2, proc)
        tree = [proc.pid, *children(proc.pid)]
        agent = _agent(proc.pid)
        ranks = {rank_of(p): p for p in children(agent)}
        assert {0, 1} <= set(ranks), ranks
        os.kill({"launcher": proc.pid, "agent": agent, "rank": ranks[0]}[level], signal.SIGKILL)
        t0 = time.monotonic()
        left = tree
        while time.monotonic() - t0 < 15 and left:
            proc.poll()  # reap the launcher when it has exited
            left = [p for p in tree if alive(p)]
            time.sleep(0.1)
        assert not left, f"still running {time.monotonic() - t0:.1f} s after kill -9 of the {level}: {left}"
        print(f"kill -9 of the {level}: every process gone after {time.monotonic() - t0:.1f} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_killed_rank_is_restarted_and_the_run_ends_as_an_uninterrupted_one(tmp_path):
    """--max-restarts 1: a rank killed after a checkpoint comes back, resumes, and the weights are bit-identical."""
    from safetensors.torch import load_file

    from srcore.engine.checkpoint import list_checkpoints

    steps = 16
    cfg = _config(tmp_path, steps, save_every=4)
    full = _launch(cfg, tmp_path / "full")
    killed = _launch(cfg, tmp_path / "killed", "--max-restarts", "1")
    try:
        _wait_for(lambda: bool(list_checkpoints(tmp_path / "killed")), killed)
        agent = _agent(killed.pid)
        ranks = {rank_of(p): p for p in children(agent)}
        os.kill(ranks[1], signal.SIGKILL)
        at_kill = int(list_checkpoints(tmp_path / "killed")[-1].name.split("_")[1])
        out_k, _ = killed.communicate(timeout=120)
        out_f, _ = full.communicate(timeout=120)
        assert killed.returncode == 0, out_k.decode()[-3000:]
        assert full.returncode == 0, out_f.decode()[-3000:]
        assert at_kill < steps, "the run finished before the kill; the test proves nothing"
        assert b"restart 1 after a failed worker: resuming" in out_k and b"resumed from step" in out_k
        a, b = list_checkpoints(tmp_path / "full")[-1], list_checkpoints(tmp_path / "killed")[-1]
        assert a.name == b.name == f"step_{steps:07d}"
        for name in ("generator.safetensors", "generator_ema.safetensors"):
            wa, wb = load_file(str(a / name)), load_file(str(b / name))
            for k in wa:
                assert torch.equal(wa[k], wb[k]), f"{name}:{k} differs after the restart from step {at_kill}"
    finally:
        for p in (full, killed):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_nodes_with_c10d_rendezvous_train_as_one_node_with_two_processes(tmp_path):
    """2 "nodes" x 1 process on 127.0.0.1 (c10d rendezvous) give the weights of 1 node x 2 processes, bit for bit."""
    from safetensors.torch import load_file

    from srcore.engine.checkpoint import list_checkpoints

    steps = 6
    cfg = _config(tmp_path, steps, save_every=100)
    one = _launch(cfg, tmp_path / "one")
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [_launch(cfg, tmp_path / "two", "--nnodes", "2", "--node-rank", str(r), "--rdzv-endpoint", endpoint,
                     "--rdzv-id", "nodes-test", nproc=1) for r in (0, 1)]
    try:
        for p in (one, *nodes):
            out, _ = p.communicate(timeout=150)
            assert p.returncode == 0, out.decode()[-3000:]
        assert b"--rdzv-backend=c10d --rdzv-endpoint=" + endpoint.encode() in out
        a, b = list_checkpoints(tmp_path / "one")[-1], list_checkpoints(tmp_path / "two")[-1]
        assert a.name == b.name == f"step_{steps:07d}"
        wa, wb = load_file(str(a / "generator.safetensors")), load_file(str(b / "generator.safetensors"))
        for k in wa:
            assert torch.equal(wa[k], wb[k]), k
    finally:
        for p in (one, *nodes):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
