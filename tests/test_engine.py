"""The training loop in-process: schedules, accumulation, EMA, stages, GAN step, NaN stop, validation."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from srcore.config import ScheduleConfig, validate_run_config
from srcore.engine.checkpoint import list_checkpoints
from srcore.engine.context import EMA, NonFiniteLoss, schedule_factor
from srcore.engine.loop import train
from srcore.engine.preflight import PreflightError
from srcore.hookspecs import hookimpl


class Patches:
    """HR patches of a real-looking smooth pattern; LR by 2x2 average pooling (a fixed degradation)."""

    def __init__(self, n: int = 16, size: int = 16) -> None:
        g = torch.Generator().manual_seed(0)
        base = torch.rand(n, 3, size // 4, size // 4, generator=g)
        self.hr = nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        hr = self.hr[i].flip(-1) if torch.rand(()) < 0.5 else self.hr[i]
        return {"lr": nn.functional.avg_pool2d(hr[None], 2)[0], "hr": hr}


def run_cfg(manager, **over):
    data = {
        "model": {"id": "core:tiny", "params": {"scale": 2, "channels": 4}},
        "stages": [{"steps": 12, "losses": [{"id": "core:l1"}], "optim": {"lr": 1e-2}}],
        "data": {"train": {"batch_size": 4}},
        "train": {"save_every": 6, "log_every": 3, "seed": 3, "keep_last": 1},
    }
    data.update(over)
    return validate_run_config(data, manager.registries)


def test_schedules_follow_their_formulas():
    cos = schedule_factor(ScheduleConfig(type="cosine", warmup_steps=10, min_lr=1e-5), total=110, base_lr=1e-4)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(60) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert cos(110) == pytest.approx(0.1)
    ms = schedule_factor(ScheduleConfig(type="multistep", milestones=[5, 8], gamma=0.5), total=10, base_lr=1.0)
    assert [ms(t) for t in (4, 5, 7, 8, 9)] == [1.0, 0.5, 0.5, 0.25, 0.25]


def test_ema_is_the_exponential_average():
    net = nn.Linear(2, 1)
    ema = EMA(net, 0.9)
    start = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    torch.testing.assert_close(ema.module.weight, 0.9 * start + 0.1 * (start + 1.0))


def test_training_writes_checkpoints_logs_and_reduces_the_loss(srcore_manager, tmp_path):
    cfg = run_cfg(srcore_manager, stages=[
        {"name": "a", "steps": 24, "losses": [{"id": "core:l1"}], "optim": {"lr": 1e-2}, "ema_decay": 0.5},
        {"name": "b", "steps": 6, "losses": [{"id": "core:mse"}], "optim": {"type": "adamw", "lr": 1e-3},
         "ema_decay": 0.5,
         "schedule": {"type": "cosine", "warmup_steps": 2}},
    ])
    result = train(cfg, srcore_manager, run_dir=tmp_path / "r", dataset=Patches(), device="cpu", progress=False)
    assert result.step == 30
    rows = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    l1 = [r["loss/l1"] for r in rows if "loss/l1" in r]
    assert l1[-1] < l1[0]
    assert "loss/mse" in rows[-1] and rows[-1]["step"] == 30
    ckpts = list_checkpoints(tmp_path / "r")
    assert [p.name for p in ckpts] == ["step_0000030"]  # keep_last=1
    names = sorted(p.name for p in ckpts[0].iterdir())
    assert names == ["generator.safetensors", "generator_ema.safetensors", "manifest.json", "meta.json",
                     "training_state.pt"]
    meta = json.loads((ckpts[0] / "meta.json").read_text())
    assert meta["step"] == 30 and meta["stage"] == 1 and meta["plugins"]["core"]["distribution"] == "srcore"
    assert meta["config"]["model"]["id"] == "core:tiny"
    assert (tmp_path / "r" / "curves.png").stat().st_size > 1000


def test_accumulation_matches_one_big_batch(srcore_manager, tmp_path):
    """accumulate=2 of batch 2 takes the same optimizer steps as batch 4 (mean losses)."""

    class Fixed(Patches):
        def __getitem__(self, i):
            hr = self.hr[i]
            return {"lr": nn.functional.avg_pool2d(hr[None], 2)[0], "hr": hr}

    outs = []
    for batch, acc in ((4, 1), (2, 2)):
        cfg = run_cfg(srcore_manager, stages=[{"steps": 3, "accumulate": acc, "optim": {"lr": 1e-2}}],
                      data={"train": {"batch_size": batch}})
        train(cfg, srcore_manager, run_dir=tmp_path / f"b{batch}", dataset=Fixed(), device="cpu", progress=False)
        from srcore.engine.checkpoint import load_checkpoint

        outs.append(load_checkpoint(tmp_path / f"b{batch}", manager=srcore_manager).module.state_dict())
    for k in outs[0]:
        torch.testing.assert_close(outs[0][k], outs[1][k], rtol=1e-5, atol=1e-6)


class NaNLoss(nn.Module):
    def forward(self, sr, hr):
        return (sr - hr).abs().mean() / 0.0 * 0.0  # nan


class NanPlugin:
    @hookimpl
    def srcore_register_losses(self, register):
        register("nan_after", lambda c: NaNLoss(), description="always NaN")


def test_non_finite_loss_stops_and_keeps_the_last_checkpoint(srcore_manager, srcore_plugin, tmp_path):
    srcore_plugin(NanPlugin(), "nanp")
    good = run_cfg(srcore_manager, stages=[{"steps": 6}])
    run = tmp_path / "r"
    train(good, srcore_manager, run_dir=run, dataset=Patches(), device="cpu", progress=False)
    before = {p.name: p.read_bytes() for p in list_checkpoints(run)[-1].iterdir()}
    nan_stage = {"name": "nan", "steps": 6, "losses": [{"id": "nanp:nan_after"}]}
    bad = run_cfg(srcore_manager, stages=[{"steps": 6}, nan_stage])
    with pytest.raises(PreflightError, match=r"stages.1 \('nan'.* non-finite loss"):  # caught before step 7 ...
        train(bad, srcore_manager, run_dir=run, resume=True, dataset=Patches(), device="cpu", progress=False)
    unchecked = bad.model_copy(update={"train": bad.train.model_copy(update={"preflight": False})})
    with pytest.raises(NonFiniteLoss, match="non-finite loss .* step 7"):  # ... and by the step itself without it
        train(unchecked, srcore_manager, run_dir=run, resume=True, dataset=Patches(), device="cpu", progress=False)
    last = list_checkpoints(run)[-1]
    assert last.name == "step_0000006"
    assert {p.name: p.read_bytes() for p in last.iterdir()} == before


class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3, 2, 1))

    def forward(self, x):
        return self.body(x).mean((1, 2, 3))


class DPlugin:
    @hookimpl
    def srcore_register_discriminators(self, register):
        register("tinyd", lambda c: TinyD(), description="test discriminator")


@pytest.mark.parametrize("gan", ["ragan", "hinge"])
def test_adversarial_stage_trains_both_networks_after_pretraining(srcore_manager, srcore_plugin, tmp_path, gan):
    srcore_plugin(DPlugin(), "dp")
    cfg = run_cfg(srcore_manager, stages=[
        {"name": "psnr", "steps": 3},
        {"name": "gan", "steps": 4, "step": "adversarial", "discriminator": {"id": "dp:tinyd"},
         "gan": {"type": gan, "weight": 0.1, "d_steps": 2, "d_start": 2}},
    ])
    train(cfg, srcore_manager, run_dir=tmp_path / "g", dataset=Patches(), device="cpu", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "g" / "log.jsonl").read_text().splitlines()]
    last = rows[-1]
    assert {"loss/d", "d/real", "d/fake", "loss/g_gan"} <= set(last)
    assert "loss/g_gan" not in next(r for r in rows if r["step"] == 3)  # generator did not see D before d_start
    ckpt = list_checkpoints(tmp_path / "g")[-1]
    assert (ckpt / "discriminator.safetensors").is_file()
    state = torch.load(ckpt / "training_state.pt", weights_only=True)
    assert set(state["context"]["optimizers"]) == {"generator", "discriminator"}
    # d_steps=2 over 4 steps: the discriminator's Adam has taken 8 steps, the generator's 4
    d_state = state["context"]["optimizers"]["discriminator"]["state"][0]
    g_state = state["context"]["optimizers"]["generator"]["state"][0]
    assert int(d_state["step"]) == 8 and int(g_state["step"]) == 4


def test_validation_reports_metrics_tracks_best_and_writes_samples(srcore_manager, tmp_path):
    from srcore.data.color import rgb_to_ycbcr  # noqa: F401 - needs the data package

    hr = Patches(n=3, size=32).hr
    items = [{"name": f"i{i}", "lr": nn.functional.avg_pool2d(h[None], 2)[0], "hr": h} for i, h in enumerate(hr)]
    sets = {"mini": items}
    cfg = run_cfg(srcore_manager, stages=[{"steps": 8, "optim": {"lr": 1e-2}}],
                  val={"every": 4, "metrics": [{"id": "core:psnr", "params": {"crop_border": 2}}],
                       "best_metric": "psnr"},
                  train={"save_every": 100, "log_every": 4, "seed": 0, "samples": 2})
    res = train(cfg, srcore_manager, run_dir=tmp_path / "v", dataset=Patches(), eval_sets=sets, device="cpu",
                progress=False)
    vals = [json.loads(line) for line in (tmp_path / "v" / "log.jsonl").read_text().splitlines()]
    vals = [r for r in vals if r["kind"] == "val"]
    assert [r["step"] for r in vals] == [4, 8]
    assert res.best is not None and res.best["label"] == "mini/psnr"
    assert res.best["value"] == max(r["mini/psnr"] for r in vals)
    assert (tmp_path / "v" / "checkpoints" / "best" / "generator.safetensors").is_file()
    assert sorted(p.name for p in (tmp_path / "v" / "samples").iterdir()) == ["step_0000004.png", "step_0000008.png"]
