"""The bidirectional step phase by phase, and a short CPU run of the recipe on real faces whose
H2L then serves as another model's degradation through configuration alone."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import sr_plugin_gflmser.plugin as gflmser_plugin
from srcore.config import resolve_run_config
from srcore.engine.api import StepSetup
from srcore.engine.context import Context
from srcore.errors import SrcoreError


def _snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def _changed(module: torch.nn.Module, before: list[torch.Tensor]) -> bool:
    return any(not torch.equal(p, b) for p, b in zip(module.parameters(), before))


def _run_phase(registries, cfg, stage_index, generator, extra, batch):
    stage = cfg.stages[stage_index]
    comp = registries.steps.get(stage.step)
    params = comp.parse_config(stage.step_params)
    setup = StepSetup(cfg, stage, params, generator, registries, torch.device("cpu"), extra)
    step = comp.builder(setup)
    ctx = Context(stage, torch.device("cpu"), "off", torch.Generator(), generator)
    ctx.register_optimizers(dict(step.optimizers), {})
    logs = step(batch, ctx)
    assert logs and all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    return step, logs


def test_each_phase_trains_only_its_networks(srcore_plugin, hr_faces, real_lr_faces):
    registries = srcore_plugin(gflmser_plugin, "gflmser")
    cfg = resolve_run_config(registries, "gflmser:gflmser-faces-x4", overrides=[
        "val.metrics=[]",
        "nets.d_hr={id: gflmser:d_hr, kind: discriminator}",
        "stages.2.step_params.hr_adv_weight=0.01",
    ])
    assert [s.step_params["phase"] for s in cfg.stages] == ["h2l", "h2l_adversarial", "l2h"]
    torch.manual_seed(0)
    gen = registries.build("model", "gflmser:gflmser", cfg.model.params)
    extra: dict[str, torch.nn.Module] = {}
    batch = {"hr": hr_faces[:2], "lr_real": real_lr_faces[:2]}  # no "lr": the step makes the bicubic LR

    h2l, l2h = _snapshot(gen.h2l), _snapshot(gen.l2h)
    _, logs = _run_phase(registries, cfg, 0, gen, extra, batch)
    assert set(logs) == {"loss/h2l_mse"}
    assert _changed(gen.h2l, h2l) and not _changed(gen.l2h, l2h)

    h2l = _snapshot(gen.h2l)
    step, logs = _run_phase(registries, cfg, 1, gen, extra, batch)
    assert {"loss/d", "loss/h2l_adv", "loss/h2l_mse"} <= set(logs)
    d_lr = step.networks["d_lr"]
    assert all(p.grad is None for p in d_lr.parameters())  # the H2L's adversarial term left no D grads
    assert _changed(gen.h2l, h2l) and not _changed(gen.l2h, l2h)

    h2l, d_before = _snapshot(gen.h2l), _snapshot(d_lr)
    step, logs = _run_phase(registries, cfg, 2, gen, extra, batch)
    assert {"loss/l2h_mse", "loss/l2h_adv", "loss/d"} <= set(logs)
    assert _changed(gen.l2h, l2h) and not _changed(gen.h2l, h2l) and not _changed(d_lr, d_before)
    assert "d_hr" in step.networks

    with pytest.raises(SrcoreError, match="lr_real"):
        _run_phase(registries, cfg, 1, gen, extra, {"hr": hr_faces[:2]})


def _write_faces(folder: Path, faces: torch.Tensor) -> str:
    folder.mkdir(parents=True)
    for i, img in enumerate(faces):
        arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[:, :, ::-1]
        cv2.imwrite(str(folder / f"{i:02d}.png"), arr)
    return str(folder)


def _losses(run_dir: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for line in (run_dir / "log.jsonl").read_text().splitlines():
        for k, v in json.loads(line).items():
            if k.startswith("loss/") or k.endswith("/psnr"):
                out.setdefault(k, []).append(v)
    return out


def test_recipe_trains_on_faces_and_its_h2l_degrades_for_another_model(faces, tmp_path):
    """Face folders at the authors' training geometry (64x64 HR, 16x16 real LR), a few CPU steps."""
    from srcore.cli import main

    hr = _write_faces(tmp_path / "hr", faces("celeba_hq", 6, 64))
    real = _write_faces(tmp_path / "real", faces("real_lq", 6, 16))
    val = _write_faces(tmp_path / "val", faces("ffhq10", 2, 64))
    run = tmp_path / "gfl"
    common = ["--plugin", "gflmser", "--no-progress", "--device", "cpu", "-s", "train.log_every=1"]
    res = CliRunner().invoke(main, [
        "train", "-r", "gflmser:gflmser-faces-x4", "--run-dir", str(run), *common,
        "-s", f"data.train.hr={hr}", "-s", f"data.train.lr_real={real}", "-s", "data.train.patch_size=64",
        "-s", "data.train.batch_size=2", "-s", f"val.sets=[{val}]",  # the recipe's metrics: PSNR + FID
        "-s", "stages.0.steps=2", "-s", "stages.1.steps=2", "-s", "stages.2.steps=2",
    ])
    assert res.exit_code == 0, res.output
    losses = _losses(run)
    for key in ("loss/h2l_mse", "loss/d", "loss/h2l_adv", "loss/l2h_mse"):
        assert losses.get(key) and all(np.isfinite(losses[key])), key
    assert len(losses["loss/l2h_mse"]) == 2 and len(losses["loss/d"]) == 2
    psnr = losses["val/psnr"]
    assert all(5 < p < 50 for p in psnr)
    if "FID" in res.output or "fid" in res.output:  # no Inception weights here: said, and PSNR still measured
        assert "left out" in res.output and "pt_inception" in res.output
    else:
        assert "val/fid" in (run / "log.jsonl").read_text()
    last = sorted((run / "checkpoints").glob("step_*"))[-1]
    assert {p.name for p in last.glob("*.safetensors")} == {"generator.safetensors", "d_lr.safetensors"}

    # srcore eval of the checkpoint: PSNR on Y without crop, and FID (or why it is missing)
    res = CliRunner().invoke(main, ["eval", "-c", str(run), "--data", val, "--scale", "4", "--metrics", "psnr,fid",
                                    "--crop-border", "0", "--y-convention", "float", "--plugin", "gflmser"])
    assert res.exit_code == 0, res.output
    assert "PSNR" in res.output and "crop border: 0" in res.output and "channel: Y" in res.output
    assert "FID" in res.output.split("(channel")[0] or "core:fid left out" in res.output

    # another model's training uses the trained H2L as its degradation, through config alone
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("model: {id: core:tiny, params: {scale: 4}}\nstages: [{steps: 2}]\n")
    res = CliRunner().invoke(main, [
        "train", "-c", str(tiny), "--run-dir", str(tmp_path / "tiny"), *common,
        "-s", f"data.train.hr={hr}", "-s", "data.train.patch_size=32", "-s", "data.train.batch_size=2",
        "-s", "data.train.degradation.id=gflmser:h2l", "-s", f"data.train.degradation.params.checkpoint={run}",
    ])
    assert res.exit_code == 0, res.output
    assert all(np.isfinite(_losses(tmp_path / "tiny")["loss/total"]))
    used = json.loads((tmp_path / "tiny" / "config.json").read_text())["data"]["train"]["degradation"]
    assert used == {"id": "gflmser:h2l", "params": {"checkpoint": str(run)}}
    # and that degradation is the H2L this run trained (its latest weights), not a fresh net
    from safetensors.torch import load_file

    from srcore.plugins import load_plugins

    deg = load_plugins(only=["gflmser"]).registries.build("degradation", "gflmser:h2l", used["params"])
    saved = load_file(str(last / "generator.safetensors"))
    assert all(torch.equal(v, saved[f"h2l.{k}"]) for k, v in deg.net.state_dict().items())


# -- the joint Lmser (Lmser/lmser_gate_main.py) -------------------------------------------------------


class _RecordingContext(Context):
    """The engine's context, keeping each optimizer's gradients as they were when it stepped."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.grads: dict[str, list[torch.Tensor]] = {}

    def optimizer_step(self, optimizer: str) -> None:
        params = [p for g in self.optimizers[optimizer].param_groups for p in g["params"]]
        self.grads[optimizer] = [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in params]
        super().optimizer_step(optimizer)


def _joint_step(registries, overrides, generator):
    cfg = resolve_run_config(registries, "gflmser:lmser-faces-x4", overrides=["val.metrics=[]", *overrides])
    stage = cfg.stages[0]
    comp = registries.steps.get(stage.step)
    setup = StepSetup(cfg, stage, comp.parse_config(stage.step_params), generator, registries, torch.device("cpu"), {})
    step = comp.builder(setup)
    ctx = _RecordingContext(stage, torch.device("cpu"), "off", torch.Generator().manual_seed(21), generator)
    ctx.register_optimizers(dict(step.optimizers), {})
    return step, ctx


def _authors_iteration(lmser, d, hr, real, z):
    """lmser_gate_main.py's iteration: four backward calls through one graph (D in [-1, 1] there)."""
    mse = torch.nn.MSELoss()
    ones, zeros = torch.ones(hr.shape[0]), torch.zeros(hr.shape[0])
    real_out = d((real + 1) / 2).squeeze()
    lr_img, hr_img, _ = lmser.joint(hr, z)
    fake_out = d((lr_img + 1) / 2).squeeze()
    d_loss = mse(real_out, ones) + mse(fake_out, zeros)
    g_loss = mse(fake_out, ones)
    l2_loss = mse(lr_img, torch.nn.AvgPool2d(kernel_size=3, stride=4, padding=1)(hr)) * 5
    lmser_loss = mse(hr_img, hr) * 0.1
    d_loss.backward(retain_graph=True)
    g_loss.backward(retain_graph=True)
    l2_loss.backward(retain_graph=True)
    lmser_loss.backward()
    return [p.grad for p in lmser.parameters()], [p.grad for p in d.parameters()]


def test_joint_step_has_the_authors_gradients(srcore_plugin):
    import copy

    registries = srcore_plugin(gflmser_plugin, "gflmser")
    torch.manual_seed(0)
    gen = registries.build("model", "gflmser:lmser", {})
    data = torch.Generator().manual_seed(20)
    batch = {"hr": torch.rand(2, 3, 64, 64, generator=data), "lr_real": torch.rand(2, 3, 16, 16, generator=data)}
    step, ctx = _joint_step(registries, [], gen)
    lmser0, d0 = copy.deepcopy(gen), copy.deepcopy(step.d)
    logs = step(batch, ctx)
    assert {"loss/d", "loss/adv", "loss/lr_mse", "loss/hr_mse"} <= set(logs)
    z = torch.randn(2, 64, generator=torch.Generator().manual_seed(21))  # the step's first draw from ctx.rng
    g_ref, d_ref = _authors_iteration(lmser0, d0, batch["hr"] * 2 - 1, batch["lr_real"] * 2 - 1, z)
    for ours, theirs in ((ctx.grads["generator"], g_ref), (ctx.grads["discriminator"], d_ref)):
        assert len(ours) == len(theirs)
        assert max((a - b).abs().max().item() for a, b in zip(ours, theirs)) < 1e-6
    assert all(not torch.equal(p, q) for p, q in zip(gen.parameters(), lmser0.parameters()))

    step, ctx = _joint_step(registries, ["stages.0.step_params.authors_gradients=false"], gen)
    logs = step(batch, ctx)  # the usual alternation: D never sees the generator's adversarial term
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in logs.values())
    assert all(p.grad is None for p in step.d.parameters())
    with pytest.raises(SrcoreError, match="lr_real"):
        step({"hr": batch["hr"]}, ctx)


def test_lmser_recipe_trains_two_steps_through_the_cli(tmp_path):
    from srcore.cli import main

    gen = torch.Generator().manual_seed(30)
    hr = _write_faces(tmp_path / "hr", torch.rand(4, 3, 64, 64, generator=gen))
    real = _write_faces(tmp_path / "real", torch.rand(4, 3, 16, 16, generator=gen))
    val = _write_faces(tmp_path / "val", torch.rand(1, 3, 64, 64, generator=gen))
    run = tmp_path / "lmser"
    res = CliRunner().invoke(main, [
        "train", "-r", "gflmser:lmser-faces-x4", "--run-dir", str(run), "--plugin", "gflmser", "--no-progress",
        "--device", "cpu", "-s", "train.log_every=1", "-s", f"data.train.hr={hr}", "-s", f"data.train.lr_real={real}",
        "-s", "data.train.patch_size=64", "-s", "data.train.batch_size=2", "-s", "stages.0.steps=2",
        "-s", f"val.sets=[{val}]", "-s", "val.metrics=[{id: core:psnr, params: {y_channel: true, crop_border: 0}}]",
    ])
    assert res.exit_code == 0, res.output
    losses = _losses(run)
    for key in ("loss/d", "loss/adv", "loss/lr_mse", "loss/hr_mse"):
        assert len(losses.get(key, [])) == 2 and all(np.isfinite(losses[key])), key
    assert all(np.isfinite(losses["val/psnr"]))
    last = sorted((run / "checkpoints").glob("step_*"))[-1]
    assert {p.name for p in last.glob("*.safetensors")} == {"generator.safetensors", "d_lr.safetensors"}
