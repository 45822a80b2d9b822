"""DDP vs the flat all-reduce it replaced, and vs one process: RRDBNet (nb=6) x4, CPU, gloo.

Three measurements, each a real engine step (``core:supervised`` through ``StepSetup`` and the
``Context``; L1 loss, Adam; the same batch reused, so data loading is excluded):

1. 2 ranks x batch 4 (HR 64x64, LR 16x16), one torchrun launch, alternating in mirrored
   blocks (A B C C B A, C being 2. below):
   A = the generator in ``DistributedDataParallel`` (``setup.wrap``: bucketed all-reduce
   overlapping the backward); B = the bare generator, with the old arithmetic at the optimizer
   step (one flat all-reduce of every gradient, a copy of the removed
   ``srcore.engine.context.average_gradients`` kept here only for this comparison).
   Median step time of each, and the median of the per-block ratios.
2. C = 1 process x batch 8 (the same global batch), rank 0 alone while rank 1 waits at a
   barrier, on ``--single-threads`` threads (default 1; 2 would match the 2 ranks' cores).
3. Peak memory (max RSS) per rank: a fresh launch per variant, so one cannot inflate the other.

    .venv/bin/python benchmarks/bench_ddp.py [--nb 6] [--blocks 3] [--steps 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

HR = 64
SCALE = 4


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """The removed flat all-reduce (srcore before DDP), verbatim: the B side of the comparison."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return
    params = list(params)
    if not params:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= dist.get_world_size()
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(g).clone()
        offset += n


def build(nb: int, batch: int, distributed: bool, flat: bool) -> tuple[Any, Any, dict[str, torch.Tensor]]:
    """(step, context, batch) of the engine's supervised step on RRDBNet; ``flat``: the old averaging."""
    from srcore.config import validate_run_config
    from srcore.engine.api import StepSetup
    from srcore.engine.context import Context
    from srcore.plugins import PluginManager

    class FlatContext(Context):
        def optimizer_step(self, optimizer: str) -> None:
            if self.micro == self.accumulate - 1:
                opt = self.optimizers[optimizer]
                average_gradients(p for g in opt.param_groups for p in g["params"] if p.requires_grad)
            super().optimizer_step(optimizer)

    regs = PluginManager().load(only=["core"]).registries
    cfg = validate_run_config({"model": {"id": "core:rrdbnet", "params": {"scale": SCALE, "nb": nb}},
                               "stages": [{"steps": 10**6, "losses": [{"id": "core:l1"}]}]}, regs)
    stage, cpu = cfg.stages[0], torch.device("cpu")
    torch.manual_seed(0)
    gen = regs.build("model", cfg.model.id, cfg.model.params)
    comp = regs.steps.get("core:supervised")
    setup = StepSetup(cfg, stage, comp.parse_config({}), gen, regs, cpu, distributed=distributed and not flat)
    step = comp.builder(setup)
    ctx = (FlatContext if flat else Context)(stage, cpu, "off", torch.Generator(), gen)
    ctx.register_optimizers(dict(step.optimizers), {})
    g = torch.Generator().manual_seed(dist.get_rank() if dist.is_initialized() else 0)
    hr = torch.rand(batch, 3, HR, HR, generator=g)
    return step, ctx, {"hr": hr, "lr": nn.functional.avg_pool2d(hr, SCALE)}


def timed(step: Any, ctx: Any, batch: dict[str, torch.Tensor], n: int, sync: bool = True) -> list[float]:
    """Wall time of ``n`` steps, each started together on every rank when ``sync`` (barrier excluded)."""
    out = []
    for _ in range(n):
        if sync and dist.is_initialized():
            dist.barrier()
        t0 = time.perf_counter()
        step(batch, ctx)
        ctx.end_step()
        out.append(time.perf_counter() - t0)
    return out


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def single_segment(variant: Any, n: int, threads: int) -> list[float]:
    """Rank 0 alone, batch 8 on ``threads`` threads, while rank 1 waits at a barrier."""
    out: list[float] = []
    if dist.get_rank() == 0:
        torch.set_num_threads(threads)
        out = timed(*variant, n=n, sync=False)
        torch.set_num_threads(1)
    dist.barrier()
    return out


def worker_abba(args: argparse.Namespace) -> dict[str, Any]:
    """DDP, flat and single-process segments, interleaved (ddp flat single single flat ddp per block)."""
    variants = {"ddp": build(args.nb, 4, True, False), "flat": build(args.nb, 4, True, True)}
    single = build(args.nb, 8, False, False)
    for v in variants.values():
        timed(*v, n=2)  # warm-up (DDP rebuilds its buckets after the first step)
    single_segment(single, 1, args.single_threads)
    times: dict[str, list[float]] = {"ddp": [], "flat": [], "single_b8": []}
    ratios: dict[str, list[float]] = {"ddp_over_flat": [], "ddp_over_single": []}
    for _ in range(args.blocks):
        block: dict[str, list[float]] = {k: [] for k in times}
        for name in ("ddp", "flat", "single_b8", "single_b8", "flat", "ddp"):
            n = args.steps
            if name == "single_b8":
                block[name] += single_segment(single, n, args.single_threads)
            else:
                block[name] += timed(*variants[name], n=n)
        if dist.get_rank() == 0:
            med = {k: statistics.median(v) for k, v in block.items()}
            ratios["ddp_over_flat"].append(med["ddp"] / med["flat"])
            ratios["ddp_over_single"].append(med["ddp"] / med["single_b8"])
        for k in times:
            times[k] += block[k]
    if dist.get_rank() != 0:
        return {}
    return ({k: statistics.median(v) for k, v in times.items()}
            | {f"ratio_{k}": statistics.median(v) for k, v in ratios.items()})


def worker_memory(args: argparse.Namespace) -> dict[str, Any]:
    variant = args.mode.removeprefix("mem-")
    v = build(args.nb, 8 if variant == "single" else 4, variant != "single", variant == "flat")
    timed(*v, n=3)
    return {"peak_mb": peak_mb()}


def worker(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    if "RANK" in os.environ:
        dist.init_process_group("gloo")
    fn = worker_abba if args.mode == "abba" else worker_memory
    result = fn(args)
    rank = dist.get_rank() if dist.is_initialized() else 0
    Path(args.out, f"{args.mode}.rank{rank}.json").write_text(json.dumps(result))
    if dist.is_initialized():
        dist.destroy_process_group()


def launch(args: argparse.Namespace, mode: str, out: str) -> list[dict[str, Any]]:
    ranks = 1 if mode.endswith("single") else 2
    threads = 2 if mode.endswith("single") else 1
    prefix = [sys.executable] if ranks == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                  "--nproc-per-node=2"]
    cmd = [*prefix, __file__, "--worker", "--mode", mode, "--out", out, "--threads", str(threads),
           "--nb", str(args.nb), "--blocks", str(args.blocks), "--steps", str(args.steps),
           "--single-threads", str(args.single_threads)]
    subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
    return [json.loads(Path(out, f"{mode}.rank{r}.json").read_text()) for r in range(ranks)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nb", type=int, default=6, help="RRDB blocks")
    ap.add_argument("--blocks", type=int, default=3, help="ABBA blocks")
    ap.add_argument("--steps", type=int, default=3, help="steps per A or B segment")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--single-threads", type=int, default=1,
                    help="threads of the 1-process run (2 = both cores; on a shared machine OpenMP then "
                         "waits for a busy core: 16 s a step instead of 0.8 s here)")
    ap.add_argument("--abba-only", action="store_true", help="only measurement 1 (DDP vs flat)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="abba", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker(args)
    with tempfile.TemporaryDirectory() as out:
        abba = launch(args, "abba", out)[0]
        if args.abba_only:
            print(json.dumps(abba))
            return
        memory = {m: [r["peak_mb"] for r in launch(args, f"mem-{m}", out)] for m in ("ddp", "flat", "single")}
    res = {**abba, "peak_mb_per_rank": memory,
           "samples_per_s": {"ddp_2x4": 8 / abba["ddp"], "flat_2x4": 8 / abba["flat"],
                             "single_1x8": 8 / abba["single_b8"]}}
    print(f"RRDBNet nb={args.nb} x{SCALE}, HR {HR}x{HR}, CPU gloo; median step time")
    print(f"  2 ranks x batch 4, DDP          {abba['ddp'] * 1e3:8.1f} ms")
    print(f"  2 ranks x batch 4, flat reduce  {abba['flat'] * 1e3:8.1f} ms")
    print(f"  DDP / flat (median of {args.blocks} ABBA block ratios) {abba['ratio_ddp_over_flat']:.3f}")
    print(f"  1 process x batch 8 ({args.single_threads} thr.)  {abba['single_b8'] * 1e3:8.1f} ms")
    print(f"  DDP / 1 process (median of block ratios) {abba['ratio_ddp_over_single']:.3f}")
    print("  peak RSS per rank (MB): " + ", ".join(f"{k} {', '.join(f'{v:.0f}' for v in vs)}"
                                                 for k, vs in memory.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
