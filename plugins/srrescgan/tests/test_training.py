"""Recipes and steps: values of the original, short CPU runs through the engine, DSGAN -> SR by config.

VGG19 and AlexNet ImageNet weights are unavailable offline: the perceptual term runs with a
random VGG19 (``weights: random``) and LPIPS with AlexNet weights the test creates.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from sr_plugin_srrescgan import plugin
from srcore.config import resolve_run_config


@pytest.fixture
def registries(srcore_plugin):
    return srcore_plugin(plugin, "srrescgan")


def _log_values(run_dir, prefix: str = "loss/") -> list[dict[str, float]]:
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k.startswith(prefix)} for r in rows if r.get("kind") == "train"]


def test_sr_recipe_holds_the_original_settings(registries) -> None:
    cfg = resolve_run_config(registries, recipe="srrescgan-x4")
    st = cfg.stages[0]
    assert st.step == "srrescgan:sr" and st.steps == 51000
    terms = [(t.id, t.weight) for t in st.losses]
    assert terms == [("core:l1", 10.0), ("core:perceptual", 1.0), ("srrescgan:tv_diff", 1.0)]
    assert st.losses[1].params["layers"] == {"conv5_4": 1.0} and st.losses[1].params["input_range"] == 1.0
    assert (st.gan.type, st.gan.weight) == ("ragan", 1.0) and st.discriminator.id == "core:vgg128"
    assert st.optim.lr == 1e-4 and st.schedule.milestones == [5000, 10000, 20000, 30000] and st.schedule.gamma == 0.5
    assert cfg.data.train.patch_size == 128 and cfg.data.train.batch_size == 16
    assert cfg.data.train.degradation.id == "srrescgan:dsgan"
    assert all(m.params == {"crop_border": 0, "y_channel": False} for m in cfg.val.metrics)


def test_mixup_mixes_hr_and_lr_with_the_same_pairs() -> None:
    from sr_plugin_srrescgan.steps import mixup

    gen = torch.Generator().manual_seed(3)
    hr = torch.rand(6, 3, 8, 8, generator=gen)
    lr = nn.functional.avg_pool2d(hr, 2)  # a linear degradation commutes with the mixing
    lams = []
    for _ in range(200):
        mhr, mlr, lam = mixup(hr, lr, 1.2, gen)
        lams.append(lam)
    assert torch.allclose(nn.functional.avg_pool2d(mhr, 2), mlr, atol=1e-6)
    assert torch.allclose(mhr.mean(0), hr.mean(0), atol=1e-6)  # weights sum to one over the batch
    mean = sum(lams) / len(lams)
    var = sum((v - mean) ** 2 for v in lams) / len(lams)
    assert abs(mean - 0.5) < 0.05 and abs(var - 1 / (4 * 3.4)) < 0.02  # Beta(1.2, 1.2): var 1/(4(2a+1))


def _alexnet(path) -> str:
    convs = {0: (64, 3, 11), 3: (192, 64, 5), 6: (384, 192, 3), 8: (256, 384, 3), 10: (256, 256, 3)}
    state = {}
    for i, (cout, cin, k) in convs.items():
        conv = nn.Conv2d(cin, cout, k)
        state[f"features.{i}.weight"], state[f"features.{i}.bias"] = conv.weight.detach(), conv.bias.detach()
    torch.save(state, path)
    return str(path)


def test_dsgan_run_then_sr_run_using_it_as_degradation(
    registries, srcore_manager, data_root, weights, tmp_path
) -> None:
    """Short CPU runs of both recipes; the SR run gets its LR from the DSGAN run by config only."""
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.engine.loop import train

    torch.set_num_threads(1)
    real = data_root / "realworld_lr"
    dsgan_cfg = resolve_run_config(
        registries,
        recipe="srrescgan-dsgan",
        overrides=[
            f"data.train.hr={data_root / 'Set5' / 'HR'}",
            f"data.train.lr_real={real}",
            "data.train.patch_size=128",
            "data.train.batch_size=2",
            "model.params.n_res_blocks=1",
            "stages.0.steps=2",
            f"stages.0.losses.1.params.backbone_weights={_alexnet(tmp_path / 'alex.pth')}",
            "train.device=cpu",
        ],
    )
    result = train(dsgan_cfg, srcore_manager, run_dir=tmp_path / "dsgan", progress=False)
    assert result.step == 2
    rows = _log_values(tmp_path / "dsgan")
    assert rows and {"loss/color", "loss/perceptual", "loss/texture", "loss/d"} <= set(rows[-1])
    assert all(math.isfinite(v) for r in rows for v in r.values())
    trained = load_checkpoint(tmp_path / "dsgan", manager=srcore_manager)
    assert trained.component.id == "srrescgan:dsgan_g"

    sr_cfg = resolve_run_config(
        registries,
        recipe="srrescgan-x4",
        overrides=[
            f"data.train.hr={data_root / 'Set5' / 'HR'}",
            f"data.train.degradation.params.checkpoint={tmp_path / 'dsgan'}",
            "data.train.patch_size=32",
            "data.train.batch_size=2",
            "stages.0.steps=2",
            "stages.0.step_params.mixup_prob=1.0",
            f"stages.0.step_params.init_generator={weights('srrescgan_x4_RaoUmer.pth')}",
            "stages.0.losses.1.params.weights=random",
            "stages.0.discriminator.params.input_size=32",
            "stages.0.discriminator.params.nf=8",
            "train.device=cpu",
        ],
    )
    result = train(sr_cfg, srcore_manager, run_dir=tmp_path / "sr", progress=False)
    assert result.step == 2
    rows = _log_values(tmp_path / "sr")
    assert {"loss/pixel", "loss/vgg54", "loss/tv", "loss/g_gan", "loss/d"} <= set(rows[-1])
    assert all(math.isfinite(v) for r in rows for v in r.values())
    assert rows[-1]["loss/pixel"] > 1.0  # L1 in 0..255 units, as the original
    model = load_checkpoint(tmp_path / "sr", manager=srcore_manager)
    assert model.component.id == "srrescgan:srrescgan"
    released = torch.load(weights("srrescgan_x4_RaoUmer.pth"), weights_only=True)
    moved = (model.module.state_dict()["model.conv1.weight_v"] - released["model.conv1.weight_v"]).abs().max()
    assert 0 < moved < 0.05  # started from the released weights, then trained two steps
