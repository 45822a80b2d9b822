"""End to end through the CLI: a tiny FxSR trains both stages on CPU and upscales with --t-map."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

TINY = """
model: {id: fxsr:fxsr, params: {scale: 4, nb: 1, nf: 16, gc: 8}}
data:
  train: {hr: "builtin:skimage", patch_size: 32, batch_size: 4}
stages:
  - name: psnr
    steps: 30
    step: fxsr:conditional
    step_params: {weights: {pixel: 1.0}}
    optim: {lr: 1.0e-3}
  - name: gan
    steps: 4
    step: fxsr:conditional
    step_params:
      vgg_weights: random        # ImageNet VGG19 weights are not available offline
      weights: {pixel: [[0, 1], [1, 0.01]], vgg22: [[0, 0], [1, 1]], vgg54: [[0, 0], [1, 1]], adv: [[0, 0], [1, 0.005]]}
    discriminator: {id: core:vgg128, params: {nf: 8, input_size: 32}}
    gan: {type: ragan}
train: {device: cpu, seed: 0, log_every: 1, save_every: 1000}
val: {sets: [], every: 1000}
"""


def srcore(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny model: threads only add contention
    cmd = [str(Path(sys.executable).with_name("srcore")), *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def test_tiny_fxsr_trains_both_stages_and_upscales_with_a_t_map(tmp_path: Path) -> None:
    import cv2

    (tmp_path / "tiny.yaml").write_text(TINY)
    run = tmp_path / "run"
    res = srcore("train", "--plugin", "fxsr", "-c", str(tmp_path / "tiny.yaml"), "--run-dir", str(run), "--no-progress")
    assert res.returncode == 0, res.stderr[-3000:]
    logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    train = [e for e in logs if e.get("kind") == "train"]
    psnr, gan = train[:30], train[30:]
    assert len(psnr) == 30 and len(gan) == 4
    for e in train:
        assert all(np.isfinite(v) for k, v in e.items() if isinstance(v, float)), e
    first, last = (np.mean([e["loss/pixel"] for e in part]) for part in (psnr[:5], psnr[-5:]))
    assert last < 0.8 * first, f"pixel loss did not decrease: {first:.4f} -> {last:.4f}"
    assert all({f"loss/{k}" for k in ("pixel", "vgg22", "vgg54", "adv", "d")} <= set(e) for e in gan)

    # --t-map: a gray image, t = 0 left half, t = 1 right half, given at the LR size
    rng = np.random.default_rng(0)
    lr = (rng.random((12, 20, 3)) * 255).astype(np.uint8)
    tmap = np.zeros((12, 20), np.uint8)
    tmap[:, 10:] = 255
    cv2.imwrite(str(tmp_path / "lr.png"), lr)
    cv2.imwrite(str(tmp_path / "tmap.png"), tmap)
    res = srcore("upscale", "--plugin", "fxsr", str(run), str(tmp_path / "lr.png"), "-o", str(tmp_path / "out"),
                 "--t-map", str(tmp_path / "tmap.png"), "--device", "cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    out = cv2.imread(str(tmp_path / "out" / "lr.png"), cv2.IMREAD_COLOR)
    assert out.shape == (48, 80, 3)

    # the same map in-process, through the checkpoint loader: the CLI fed the map as given
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.plugins import PluginManager

    loaded = load_checkpoint(run, manager=PluginManager().load(only=["fxsr"]))
    x = torch.from_numpy(cv2.cvtColor(lr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1)[None].float() / 255
    t = torch.from_numpy(tmap)[None, None].float() / 255
    with torch.no_grad():
        ref = loaded.module(x, t).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
    got = cv2.cvtColor(out, cv2.COLOR_BGR2RGB).astype(np.float64)
    assert np.abs(got - ref).max() <= 0.5 + 1e-3  # PNG rounding only
    with torch.no_grad():
        uniform0 = loaded.module(x, torch.zeros_like(t)).clamp(0, 1)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(got - uniform0)[:, 40:].max() > 0.5  # the right half really saw t = 1

    # the perception-distortion table: one `srcore eval` call, one row per t, each equal to an
    # evaluation of the same checkpoint at that single t
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    for i in range(2):
        cv2.imwrite(str(hr_dir / f"im{i}.png"), (rng.random((32, 48, 3)) * 255).astype(np.uint8))
    table = tmp_path / "pd.json"
    res = srcore("eval", "--plugin", "fxsr", "-c", str(run), "--data", str(hr_dir), "--scale", "4",
                 "--t", "0,1", "--json", str(table))
    assert res.returncode == 0, res.stderr[-3000:]
    rows = json.loads(table.read_text())["results"]
    assert [r["model"].split()[-1] for r in rows] == ["t=0", "t=1"]
    single = tmp_path / "t1.json"
    assert srcore("eval", "--plugin", "fxsr", "-c", str(run), "--data", str(hr_dir), "--scale", "4",
                  "--t", "1", "--json", str(single)).returncode == 0
    assert json.loads(single.read_text())["results"][0]["metrics"] == rows[1]["metrics"]
    assert rows[0]["metrics"] != rows[1]["metrics"]
