"""Engine overhead: one srcore training step vs a bare PyTorch loop, same model, batch and run.

The engine step is what the loop runs per optimizer step: per-step reseeding, the built-in
``core:supervised`` step through the ``Context`` (autocast, finite-loss check, accumulation
bookkeeping, gradient averaging hook, grad scaler, scheduler, zero_grad). The bare loop is
forward, L1 loss, backward, Adam step, zero_grad. Data loading is excluded from both (the same
batch is reused). Measurements alternate in blocks (A-B, then B-A); the median block ratio is reported.

    .venv/bin/python benchmarks/bench_engine_step.py [--channels 32] [--batch 16] [--size 32]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32, help="LR patch size")
    ap.add_argument("--blocks", type=int, default=15)
    ap.add_argument("--steps", type=int, default=20, help="steps per block")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from srcore.builtin.models import TinySR
    from srcore.config import validate_run_config
    from srcore.engine.api import StepSetup
    from srcore.engine.context import Context
    from srcore.engine.loop import _reseed
    from srcore.plugins import PluginManager

    manager = PluginManager().load(only=["core"])
    regs = manager.registries
    cfg = validate_run_config({"model": {"id": "core:tiny", "params": {"scale": 2, "channels": args.channels}},
                               "stages": [{"steps": 10**6, "losses": [{"id": "core:l1"}]}]}, regs)
    stage = cfg.stages[0]
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    hr = torch.rand(args.batch, 3, 2 * args.size, 2 * args.size, generator=g)
    batch = {"lr": lr, "hr": hr}

    torch.manual_seed(0)
    net_a = TinySR(2, args.channels)
    net_b = TinySR(2, args.channels)
    net_b.load_state_dict(net_a.state_dict())

    # srcore engine
    device = torch.device("cpu")
    setup = StepSetup(cfg, stage, regs.steps.get("core:supervised").parse_config({}), net_a, regs, device)
    step = regs.steps.get("core:supervised").builder(setup)
    rng = torch.Generator()
    ctx = Context(stage, device, "off", rng, net_a)
    ctx.register_optimizers(dict(step.optimizers), {"generator": stage.schedule})
    state = {"step": 0}

    def engine() -> None:
        _reseed(rng, 0, 0, state["step"])
        ctx.global_step = ctx.stage_step = state["step"]
        ctx.micro = 0
        step(batch, ctx)
        ctx.end_step()
        state["step"] += 1

    # bare PyTorch
    opt = torch.optim.Adam(net_b.parameters(), lr=stage.optim.lr)
    l1 = nn.L1Loss()

    def bare() -> None:
        loss = l1(net_b(lr), hr)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for fn in (engine, bare):  # warm-up
        for _ in range(5):
            fn()
    ratios, t_eng, t_bare = [], [], []
    for block in range(args.blocks):
        times = {}
        order = (("engine", engine), ("bare", bare))
        for name, fn in order if block % 2 == 0 else order[::-1]:  # ABBA: no first-runner bias
            t0 = time.perf_counter()
            for _ in range(args.steps):
                fn()
            times[name] = (time.perf_counter() - t0) / args.steps
        t_eng.append(times["engine"])
        t_bare.append(times["bare"])
        ratios.append(times["engine"] / times["bare"])
    med = statistics.median(ratios)
    print(f"model core:tiny(channels={args.channels}), batch {args.batch}x3x{args.size}x{args.size}, "
          f"{args.threads} thread(s), {args.blocks} blocks x {args.steps} steps")
    print(f"bare PyTorch step : {statistics.median(t_bare) * 1e3:8.3f} ms (median block)")
    print(f"srcore engine step: {statistics.median(t_eng) * 1e3:8.3f} ms (median block)")
    print(f"ratio engine/bare : {med:.4f}  -> overhead {100 * (med - 1):+.2f}%  "
          f"(quartiles {statistics.quantiles(ratios, n=4)[0]:.4f}..{statistics.quantiles(ratios, n=4)[2]:.4f})")


if __name__ == "__main__":
    main()
