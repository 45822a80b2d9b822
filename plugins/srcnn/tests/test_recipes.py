"""Recipes: every one validates, carries the collection's setup, and trains through the engine."""

from __future__ import annotations

import pytest
import torch

from srcore.config import resolve_run_config

EXPECTED = (
    [
        f"{m}-x{s}"
        for m in ("srcnn", "fsrcnn", "vdsr", "espcn", "drcn", "drrn", "rdn", "rcan", "wdsr_a", "wdsr_b")
        for s in (2, 3, 4)
    ]
    + [f"lapsrn-x{s}" for s in (2, 4, 8)]
    + [f"glean-x{s}" for s in (8, 16, 32)]
    + ["demo-x3"]
)


def test_every_recipe_validates(registries) -> None:
    names = sorted(c.name for c in registries.recipes if c.plugin == "srcnn")
    assert names == sorted(EXPECTED)
    for name in names:
        cfg = resolve_run_config(registries, recipe=f"srcnn:{name}")
        scale = cfg.model.params.get("scale")
        assert scale in registries.models.get(cfg.model.id).info.scales, name


def test_collection_setups(registries) -> None:
    get = lambda n: resolve_run_config(registries, recipe=n)  # noqa: E731
    vdsr = get("vdsr-x2")
    st = vdsr.stages[0]
    assert (vdsr.data.train.patch_size, vdsr.data.train.batch_size, st.optim.lr, st.grad_clip) == (42, 128, 0.1, 0.4)
    assert st.step_params["momentum"] == 0.9  # not the collection's 1e-4 (weight decay passed as momentum)
    assert st.schedule.gamma == 0.1 and len(st.schedule.milestones) == 3
    fsrcnn = {s: get(f"fsrcnn-x{s}") for s in (2, 3, 4)}
    assert [fsrcnn[s].data.train.patch_size for s in (2, 3, 4)] == [20, 21, 24]
    assert fsrcnn[3].stages[0].step_params["lr_mult"] == {"deconv": 0.1}
    lap = get("lapsrn-x4").stages[0]
    assert lap.losses[0].id == "core:charbonnier" and lap.step_params["deep_supervision"] is True
    drcn = get("drcn-x3").stages[0].step_params
    assert drcn["alpha"] == 1.0 and drcn["alpha_decay_steps"] > 0
    assert get("drrn-x2").stages[0].step_params["clip_theta"] == 0.01
    rdn = get("rdn-x3")
    assert rdn.stages[0].steps == 1_000_000 and rdn.stages[0].schedule.milestones == [
        200_000,
        400_000,
        600_000,
        800_000,
    ]
    assert rdn.data.train.patch_size == 144 and rdn.stages[0].losses[0].id == "core:l1"
    srcnn = get("srcnn-x3")
    assert srcnn.model.params == {"scale": 3, "variant": "9-5-5"} and srcnn.data.train.patch_size == 33
    assert get("demo-x3").model.id == "srcnn:fsrcnn" and get("demo-x3").data.train.hr == "builtin:skimage"


def test_patch_sizes_divide_by_the_scale(registries) -> None:
    """The collection's 41/33/31 patches rounded up to a multiple of the scale (LR cut from HR)."""
    sizes = {
        (m, s): resolve_run_config(registries, recipe=f"{m}-x{s}").data.train.patch_size
        for m in ("vdsr", "srcnn", "drrn")
        for s in (2, 3, 4)
    }
    assert sizes == {
        ("vdsr", 2): 42,
        ("vdsr", 3): 42,
        ("vdsr", 4): 44,
        ("srcnn", 2): 34,
        ("srcnn", 3): 33,
        ("srcnn", 4): 36,
        ("drrn", 2): 32,
        ("drrn", 3): 33,
        ("drrn", 4): 32,
    }


def test_overrides_reach_the_model(registries) -> None:
    cfg = resolve_run_config(registries, recipe="fsrcnn-x3", overrides=["model.params.m=2", "stages.0.steps=7"])
    assert cfg.model.params["m"] == 2 and cfg.stages[0].steps == 7


@pytest.mark.parametrize("recipe", ["lapsrn-x2", "drcn-x2"])
def test_deep_supervision_recipe_trains_through_the_engine(registries, tmp_path, recipe) -> None:
    """Two real optimizer steps on the built-in photographs with the plugin's step, small model."""
    from srcore.engine.loop import train
    from srcore.plugins import PluginManager

    small = {
        "lapsrn-x2": ["model.params.depth=1", "model.params.channels=8"],
        "drcn-x2": ["model.params.channels=8", "model.params.recursions=2"],
    }[recipe]
    manager = PluginManager().load(only=["srcnn"])
    cfg = resolve_run_config(
        manager.registries,
        recipe=recipe,
        overrides=[
            *small,
            "stages.0.steps=2",
            "data.train.batch_size=2",
            "data.train.patch_size=32",
            "val.sets=[]",
            "train.log_every=1",
            "train.device=cpu",
        ],
    )
    torch.manual_seed(0)
    result = train(cfg, manager, run_dir=tmp_path / "run", device="cpu", progress=False)
    assert result.step == 2
    import json

    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    train_rows = [r for r in rows if r.get("kind") == "train"]
    assert [r["step"] for r in train_rows] == [1, 2]
    assert all("loss/intermediate" in r and 0.99 < r["alpha"] <= 1.0 for r in train_rows)
