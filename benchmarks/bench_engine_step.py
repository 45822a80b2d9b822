"""Engine overhead: one srcore training step vs a bare PyTorch loop, same model, batch and run.

The engine step is what the loop runs per optimizer step: per-step reseeding, the batch moved
to the device, the DDP ``no_sync`` context, the built-in ``core:supervised`` step through the
``Context`` (autocast, kept loss for the NaN check, accumulation bookkeeping, grad scaler when
on, scheduler, zero_grad), and, every ``--log-every`` steps, the deferred NaN check and the
log values (losses to floats, learning rates). The bare loop is forward, L1 loss, backward,
Adam step, zero_grad. Data loading is excluded from both (the same batch is reused), and so is
writing the log (a file append every ``log_every`` steps) and the progress bar.

Both run in one process with the malloc setting ``train()`` applies
(``srcore.engine.loop.keep_freed_host_memory``); ``--default-malloc`` leaves glibc's default, under
which both loops fault their tensors in afresh each step and the engine a little more (it holds
the SR output through the backward). Measurements alternate in short blocks (A-B, then B-A);
the median block ratio is reported, for wall time and for this process's CPU time (less
disturbed by other processes on a shared machine), with minor page faults per step.
``--control`` times a second bare loop in place of the engine: the benchmark's own noise and bias.

    .venv/bin/python benchmarks/bench_engine_step.py [--channels 32] [--batch 16] [--size 32] [--blocks 41]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import torch
from torch import nn


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=32, help="LR patch size")
    ap.add_argument("--blocks", type=int, default=41)
    ap.add_argument("--steps", type=int, default=10, help="steps per block")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=10, help="train.log_every (its default)")
    ap.add_argument("--default-malloc", action="store_true", help="do not apply train()'s malloc setting")
    ap.add_argument("--control", action="store_true", help="bare loop vs bare loop (noise floor)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from srcore.builtin.models import TinySR
    from srcore.config import validate_run_config
    from srcore.engine import dist as D
    from srcore.engine.api import StepSetup
    from srcore.engine.context import Context
    from srcore.engine.loop import _reseed, keep_freed_host_memory
    from srcore.engine.monitor import to_floats
    from srcore.plugins import PluginManager

    tuned = False if args.default_malloc else keep_freed_host_memory()
    manager = PluginManager().load(only=["core"])
    regs = manager.registries
    cfg = validate_run_config({"model": {"id": "core:tiny", "params": {"scale": 2, "channels": args.channels}},
                               "stages": [{"steps": 10**6, "losses": [{"id": "core:l1"}]}]}, regs)
    stage = cfg.stages[0]
    g = torch.Generator().manual_seed(0)
    lr = torch.rand(args.batch, 3, args.size, args.size, generator=g)
    hr = torch.rand(args.batch, 3, 2 * args.size, 2 * args.size, generator=g)
    raw = {"lr": lr, "hr": hr}

    torch.manual_seed(0)
    net_a = TinySR(2, args.channels)
    net_b = TinySR(2, args.channels)
    net_b.load_state_dict(net_a.state_dict())

    # srcore engine: the body of the loop in srcore.engine.loop._train, one micro-batch per step
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
        batch = {k: v.to(device, non_blocking=True) for k, v in raw.items() if isinstance(v, torch.Tensor)}
        ctx.micro = 0
        with D.no_sync(setup.wrapped, skip=False):
            logs = step(batch, ctx)
        ctx.end_step()
        state["step"] += 1
        if state["step"] % args.log_every == 0:
            ctx.raise_if_nonfinite()
            values = to_floats(logs)
            values.update(ctx.lrs())

    def make_bare(net: nn.Module) -> object:
        opt = torch.optim.Adam(net.parameters(), lr=stage.optim.lr)
        l1 = nn.L1Loss()

        def bare() -> None:
            loss = l1(net(lr), hr)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        return bare

    bare = make_bare(net_b)
    if args.control:
        net_c = TinySR(2, args.channels)
        net_c.load_state_dict(net_a.state_dict())
        engine = make_bare(net_c)  # type: ignore[assignment]

    for fn in (engine, bare):  # warm-up
        for _ in range(2 * args.log_every):
            fn()  # type: ignore[operator]
    ratios: dict[str, list[float]] = {"wall": [], "cpu": []}
    per_step: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": [], "faults": []} for n in ("engine", "bare")}
    for block in range(args.blocks):
        order = (("engine", engine), ("bare", bare))
        for name, fn in order if block % 2 == 0 else order[::-1]:  # ABBA: no first-runner bias
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            c0, w0 = time.process_time(), time.perf_counter()
            for _ in range(args.steps):
                fn()  # type: ignore[operator]
            w, c = time.perf_counter() - w0, time.process_time() - c0
            f = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
            for key, v in (("wall", w), ("cpu", c), ("faults", f)):
                per_step[name][key].append(v / args.steps)
        for key in ratios:
            ratios[key].append(per_step["engine"][key][-1] / per_step["bare"][key][-1])

    label = "second bare loop (--control)" if args.control else "srcore engine step"
    print(f"model core:tiny(channels={args.channels}), batch {args.batch}x3x{args.size}x{args.size}, "
          f"{args.threads} thread(s), {args.blocks} blocks x {args.steps} steps, "
          f"malloc {'kept (train() setting)' if tuned else 'glibc default'}")
    for name, title in (("bare", "bare PyTorch step"), ("engine", label)):
        m = per_step[name]
        print(f"{title:30s}: wall {statistics.median(m['wall']) * 1e3:7.3f} ms, cpu "
              f"{statistics.median(m['cpu']) * 1e3:7.3f} ms, {statistics.median(m['faults']):7.1f} page faults "
              "(median block)")
    for key in ("wall", "cpu"):
        q = statistics.quantiles(ratios[key], n=4)
        med = statistics.median(ratios[key])
        print(f"ratio engine/bare ({key:4s}): {med:.4f}  -> overhead {100 * (med - 1):+.2f}%  "
              f"(quartiles {q[0]:.4f}..{q[2]:.4f})")


if __name__ == "__main__":
    main()
