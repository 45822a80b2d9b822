"""DDP: every training step of the core and the plugins under 2 gloo ranks (one torchrun launch).

Each rank feeds its own batches, so gradients differ between ranks: if a step called a module
outside its DDP wrapper (``setup.wrap``), that gradient would not be averaged and the ranks'
weights would drift apart. After two optimizer steps every network must be bit-identical on
both ranks, every trained network must have moved, and DDP must not have raised (unused
parameters, a D frozen for the G update, several forwards before one backward).

Run as a script under torchrun, this file is the worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

VGG_RANDOM = "stages.{i}.losses.{j}.params.weights=random"
TINY_D = {"id": "core:vgg128", "params": {"nf": 4, "input_size": 32}}
CORE_RUN = {"model": {"id": "core:tiny", "params": {"scale": 2, "channels": 4}}, "val": {"metrics": []}}

# name -> (recipe or config, overrides, stage, scale, hr size, lr_real size or None)
CASES: dict[str, tuple[Any, list[str], int, int, int, int | None]] = {
    "core:supervised": ({**CORE_RUN, "stages": [{"steps": 2}]}, [], 0, 2, 16, None),
    "core:supervised accumulate 2": ({**CORE_RUN, "stages": [{"steps": 2, "accumulate": 2}]}, [], 0, 2, 16, None),
    "core:adversarial": ({**CORE_RUN, "stages": [{"steps": 2, "step": "core:adversarial", "discriminator": TINY_D,
                                                 "gan": {"d_steps": 2}}]}, [], 0, 2, 32, None),
    "fasrgan:fasrgan": ("fasrgan:fasrgan-x4", [
        "model.params.nb=1", "model.params.nf=8", "model.params.gc=4",
        "stages.1.discriminator.params.input_size=16", VGG_RANDOM.format(i=1, j=1),
        "stages.1.losses.1.params.layers={relu2_2: 1.0}"], 1, 4, 16, None),
    "fasrgan:fssrgan": ("fasrgan:fssrgan-x4", [
        "model.params.nb=1", "model.params.nf=8", "model.params.gc=4",
        "stages.1.discriminator.params.in_nc=8", "stages.1.discriminator.params.nf=4",
        "stages.1.discriminator.params.input_size=64", VGG_RANDOM.format(i=1, j=1),
        "stages.1.losses.1.params.layers={relu1_2: 1.0}"], 1, 4, 64, None),
    "fxsr:conditional": ("fxsr:fxsr-pd-x4", [
        "model.params.nb=1", "model.params.nf=8", "model.params.gc=4", "stages.1.step_params.vgg_weights=random",
        "stages.1.discriminator.params={nf: 4, input_size: 32}"], 1, 4, 32, None),
    "gflmser:bidirectional h2l": ("gflmser:gflmser-faces-x4", [], 0, 4, 16, 4),
    "gflmser:bidirectional h2l_adversarial": ("gflmser:gflmser-faces-x4", [], 1, 4, 16, 4),
    "gflmser:bidirectional l2h": ("gflmser:gflmser-faces-x4", [
        "nets.d_hr={id: gflmser:d_hr, kind: discriminator}", "stages.2.step_params.hr_adv_weight=0.01"], 2, 4, 16, 4),
    "gflmser:joint authors": ("gflmser:lmser-faces-x4", [], 0, 4, 64, 16),
    "gflmser:joint alternating": ("gflmser:lmser-faces-x4", ["stages.0.step_params.authors_gradients=false"],
                                  0, 4, 64, 16),
    "srrescgan:sr": ("srrescgan:srrescgan-x4", [
        "model.params.depth=1", "model.params.channels=8", VGG_RANDOM.format(i=0, j=1),
        "stages.0.losses.1.params.layers={relu1_2: 1.0}", "stages.0.step_params.mixup_prob=1.0",
        "stages.0.discriminator.params={nf: 4, input_size: 32}"], 0, 4, 32, None),
    "srcnn:classic deep supervision": ("srcnn:drcn-x2", [
        "model.params.channels=4", "model.params.recursions=2"], 0, 2, 16, None),
    "srcnn:classic lapsrn": ("srcnn:lapsrn-x4", ["model.params.depth=1", "model.params.channels=4"], 0, 4, 16, None),
}


def _config(registries: Any, spec: Any, overrides: list[str]) -> Any:
    from srcore.config import resolve_run_config, validate_run_config

    if isinstance(spec, str):
        return resolve_run_config(registries, recipe=spec, overrides=["val.metrics=[]", *overrides])
    return validate_run_config(spec, registries)


def _batch(scale: int, hr: int, lr_real: int | None, seed: int, info: Any) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    out = {"hr": F.avg_pool2d(torch.rand(2, info.in_channels, hr, hr, generator=g), 3, 1, 1)}
    out["lr"] = F.avg_pool2d(out["hr"], scale)
    if info.pre_upsampled:
        out["lr"] = F.interpolate(out["lr"], scale_factor=scale, mode="bicubic")
    if lr_real is not None:
        out["lr_real"] = torch.rand(2, 3, lr_real, lr_real, generator=g)
    return out


def _fingerprint(step: Any) -> dict[str, list[float]]:
    """Per network: float64 sum and sum of squares of every parameter (rank-comparable, exact enough)."""
    from srcore.engine.checkpoint import unwrap

    out = {}
    for name, net in step.networks.items():
        flat = torch.cat([p.detach().double().reshape(-1) for p in unwrap(net).parameters()])
        out[name] = [float(flat.sum()), float((flat * flat).sum())]
    return out


def _count_reduces(wrappers: list[Any]) -> list[int]:
    """A list that grows by one per bucket all-reduce of any wrapper (DDP's default hook, counted)."""
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    calls: list[int] = []

    def hook(state, bucket):  # type: ignore[no-untyped-def]  # DDP refuses any annotation but its own classes
        calls.append(bucket.index())
        return allreduce_hook(state, bucket)

    for w in wrappers:
        w.register_comm_hook(None, hook)
    return calls


def run_case(registries: Any, spec: Any, overrides: list[str], si: int, scale: int, hr: int,
             lr_real: int | None, rank: int, distributed: bool = True) -> dict[str, Any]:
    from srcore.engine import dist as D
    from srcore.engine.api import StepSetup
    from srcore.engine.context import Context

    cfg = _config(registries, spec, overrides)
    stage = cfg.stages[si]
    torch.manual_seed(0)
    gen = registries.build("model", cfg.model.id, cfg.model.params)
    comp = registries.steps.get(stage.step)
    setup = StepSetup(cfg, stage, comp.parse_config(stage.step_params), gen, registries, torch.device("cpu"), {},
                      distributed=distributed)
    info = registries.models.get(cfg.model.id).info
    step = comp.builder(setup)
    if distributed:
        D.check_wrapped(stage.step, step.optimizers, setup.wrapped)
    ctx = Context(stage, torch.device("cpu"), "off", torch.Generator().manual_seed(rank), gen)
    ctx.register_optimizers(dict(step.optimizers), {})
    reduces = _count_reduces(setup.wrapped)
    before = _fingerprint(step)
    for it in range(2):
        ctx.stage_step = ctx.global_step = it
        for m in range(stage.accumulate):
            ctx.micro = m
            with D.no_sync(setup.wrapped, skip=m < stage.accumulate - 1):
                step(_batch(scale, hr, lr_real, 100 * rank + 10 * it + m, info), ctx)
    after = _fingerprint(step)
    trained = sorted(k for k in after if after[k] != before[k])
    return {"after": after, "trained": trained, "wrapped": len(setup.wrapped), "reduces": len(reduces)}


def worker(out: Path) -> None:
    import torch.distributed as dist

    from srcore.plugins import PluginManager

    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    registries = PluginManager().load().registries
    results: dict[str, Any] = {"control": run_case(registries, *CASES["core:supervised"], rank=rank, distributed=False)}
    t0 = time.perf_counter()
    for name, case in CASES.items():
        try:
            results[name] = run_case(registries, *case, rank=rank)
            print(f"rank {rank}: {name} {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        except Exception as exc:  # a config error is the same on both ranks; a DDP one times out the other
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    (out / f"rank{rank}.json").write_text(json.dumps(results))
    from srcore.engine.dist import shutdown

    shutdown()


def test_every_step_keeps_ranks_identical_under_ddp(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SRCORE_DIST_TIMEOUT": "30"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert set(r0) == {"control", *CASES}
    assert r0["control"]["after"] != r1["control"]["after"], "the ranks' batches differ, so unaveraged weights do"
    # core:tiny fits one bucket: one all-reduce per optimizer step, the first micro-batch under no_sync()
    assert r0["core:supervised"]["reduces"] == r0["core:supervised accumulate 2"]["reduces"] == 2
    for name in CASES:
        assert r0[name]["wrapped"] >= 1, name
        assert r0[name]["after"] == r1[name]["after"], f"{name}: the ranks' weights differ"
        assert "generator" in r0[name]["trained"], f"{name}: nothing was trained"


def test_a_step_that_does_not_wrap_what_it_trains_is_refused():
    from srcore.engine.dist import UnwrappedParameters, check_wrapped

    net = torch.nn.Conv2d(3, 3, 3)
    opts = {"generator": torch.optim.Adam(net.parameters())}
    try:
        check_wrapped("stages.0 (step x:y)", opts, [net])
    except UnwrappedParameters as exc:
        assert str(exc).startswith("stages.0 (step x:y): under DDP the optimizer(s) 'generator' (84 values)")
        assert "setup.wrap(module)" in str(exc) and "\n" not in str(exc)
    else:
        raise AssertionError("not refused")


def test_launcher_options_build_the_torchrun_command():
    from srcore.cli.train_cmd import Launch, torchrun_command

    argv = ["-c", "a.yaml", "--nnodes", "2", "--node-rank=1", "--rdzv-endpoint", "h:29400", "--rdzv-id", "j7",
            "--max-restarts", "3", "--nproc", "8", "--resume"]
    cmd = torchrun_command(8, argv, Launch(2, 1, "h:29400", "j7", 3))
    assert cmd[1:] == ["-m", "torch.distributed.run", "--nnodes=2", "--rdzv-backend=c10d", "--rdzv-endpoint=h:29400",
                       "--rdzv-id=j7", "--max-restarts=3", "--nproc-per-node=8", "-m", "srcore", "train",
                       "-c", "a.yaml", "--resume"]
    assert torchrun_command(2, ["--max-restarts=1"], Launch(max_restarts=1))[3:6] == [
        "--standalone", "--max-restarts=1", "--nproc-per-node=2"]


def test_bad_launcher_options_are_one_line_errors():
    from click.testing import CliRunner

    from srcore.cli import main

    cases = {("--nnodes", "2"): "--nnodes 2: the nodes meet at a rendezvous: give --rdzv-endpoint HOST:PORT",
             ("--nnodes", "2", "--node-rank", "2", "--rdzv-endpoint", "h:1"): "--node-rank 2: must be in 0..1",
             ("--nnodes", "2", "--rdzv-endpoint", "nohost"): "--rdzv-endpoint 'nohost': expected HOST:PORT"}
    for args, message in cases.items():
        res = CliRunner().invoke(main, ["train", "-r", "srcnn:demo-x3", "--plugin", "core", *args])
        assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output, res.output


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
