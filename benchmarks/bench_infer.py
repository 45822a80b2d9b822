"""Inference backends on the CPU: PyTorch eager, torch.compile (inductor) and ONNX Runtime.

For FSRCNN (released x4 weights if present), RRDBNet nb=6 (random weights) and SRResCGAN
(released x4 weights if present) on a 512x512 photograph (scikit-image's astronaut), the bare
network (Y channel for FSRCNN) is timed per backend in the same process, in ABBA order
(eager, compile, ort, ort, compile, eager per block) after one untimed warm-up run of compile
and ort (compilation, ONNX Runtime's session and arena; eager's first timed run is its own
warm-up: a forward of 100+ s on this machine dwarfs oneDNN's set-up). Reported: the median
wall and CPU seconds (``time.process_time``, every thread of the process: on a machine shared by
other jobs the wall time also counts the time it waits for a core), the throughput ratio
eager/backend from those medians, and max |backend - eager| on the [0, 1] output (must stay
<= 1/255). ONNX graphs come from ``srcore.export.export_onnx``.

    .venv/bin/python benchmarks/bench_infer.py [--models fsrcnn,rrdb6,srrescgan] [--size 512] [--blocks 1]
        [--backends compile,ort] [--threads N]

Measured 2026-12-01 (2 shared cores, heavily loaded; --threads 1, one ABBA block):

    model       input    eager wall/CPU s   ort wall/CPU s   ort/eager wall  CPU   max|diff|
    FSRCNN      512x512     1.31 / 0.91      0.66 / 0.38        1.98     2.42   1.1e-6
    RRDB nb=6   512x512   135.7 / 59.7      62.1 / 27.4         2.18     2.18   1.1e-7
    SRResCGAN   512x512   353   / 70.2     224   / 39.1         1.58     1.80   (one pair; OOM-killed)
    SRResCGAN   512x512    86.3 / 85.5      38.6 / 38.6         2.24     2.22   5.04e-3 (> 1/255!)
                (the second 512 row: idle machine, full ABBA block, 20 GB free)
    SRResCGAN   256x256    33.9 / 16.3      17.6 /  8.8         1.93     1.86   1.35e-3
    torch.compile (FSRCNN only; inductor compiles in minutes here): 1.21 wall, 1.27 CPU, diff 0.
    FSRCNN at 2 threads: compile 1.36x, ort 2.37x eager.

``--threads`` sets both PyTorch's and ONNX Runtime's intra-op threads (default: PyTorch's
default, and ONNX Runtime's own); on a machine shared by many processes one thread each avoids
the spin-waits of oversubscribed thread pools.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
MODELS = {  # name: (model id, params, released weights in shared/data/weights)
    "fsrcnn": ("srcnn:fsrcnn", {"scale": 4}, "fsrcnn_x4_yjn870.pth"),
    "rrdb6": ("core:rrdbnet", {"scale": 4, "nb": 6}, None),
    "srrescgan": ("srrescgan:srrescgan", {"scale": 4}, "srrescgan_x4_RaoUmer.pth"),
}


def load(name: str, data: Path):
    from srcore.engine.checkpoint import LoadedModel, load_checkpoint
    from srcore.plugins import load_plugins

    cid, params, weights = MODELS[name]
    manager = load_plugins()
    if weights and (data / "weights" / weights).is_file():
        return load_checkpoint(data / "weights" / weights, manager=manager), "released"
    comp = manager.registries.models.get(cid)
    torch.manual_seed(0)
    return LoadedModel(comp.build(params).eval(), comp, comp.info, params), "random"


def backends(loaded, x: torch.Tensor, onnx_path: Path, only: list[str] | None,
             threads: int | None) -> dict[str, Callable[[], torch.Tensor]]:
    """name -> a callable returning the output; those that fail to build print why and are left out."""
    from srcore.export import export_onnx

    module = loaded.module.cpu().eval()
    out: dict[str, Callable[[], torch.Tensor]] = {"eager": lambda: module(x)}
    if only is None or "compile" in only:
        _add_compiled(out, module, x)
    if only is not None and "ort" not in only:
        return out
    try:
        import onnxruntime as ort

        export_onnx(loaded, onnx_path)
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        out["ort"] = lambda: torch.from_numpy(sess.run(["output"], feed)[0])
    except Exception as exc:
        print(f"  ONNX Runtime unavailable: {str(exc).splitlines()[0]}")
    return out


def _add_compiled(out: dict[str, Callable[[], torch.Tensor]], module: torch.nn.Module, x: torch.Tensor) -> None:
    try:
        compiled = torch.compile(module)
        out["compile"] = lambda: compiled(x)
    except Exception as exc:  # a benchmark reports, it does not fail
        print(f"  torch.compile unavailable: {str(exc).splitlines()[0]}")


def bench(name: str, size: int, blocks: int, data: Path, only: list[str] | None, threads: int | None) -> None:
    from srcore.export import network_input, sample_photo

    loaded, kind = load(name, data)
    x = network_input(loaded, sample_photo(size))
    print(f"{name} ({loaded.component.id}, {kind} weights), input {tuple(x.shape)}", flush=True)
    with tempfile.TemporaryDirectory() as d, torch.no_grad():
        runs = backends(loaded, x, Path(d) / f"{name}.onnx", only, threads)
        outputs: dict[str, torch.Tensor] = {}
        seconds: dict[str, list[float]] = {k: [] for k in runs}
        cpu: dict[str, list[float]] = {k: [] for k in runs}
        for k, fn in runs.items():  # warm-up (compilation, session arena), and the output compared
            if k == "eager":
                continue
            t0 = time.perf_counter()
            try:
                outputs[k] = fn().float()
            except Exception as exc:
                print(f"  {k} failed: {str(exc).splitlines()[0]}")
                continue
            print(f"  warm-up {k}: {time.perf_counter() - t0:.1f} s", flush=True)
        order = [k for k in runs if k in outputs or k == "eager"]
        for _ in range(blocks):
            for k in [*order, *reversed(order)]:
                t0, c0 = time.perf_counter(), time.process_time()
                y = runs[k]()
                seconds[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
                outputs.setdefault(k, y.float())
                del y
                print(f"  {k}: {seconds[k][-1]:.2f} s, CPU {cpu[k][-1]:.2f} s", flush=True)
        eager, eager_cpu = statistics.median(seconds["eager"]), statistics.median(cpu["eager"])
        print(f"  {'backend':>8} | {'wall s':>7} {'CPU s':>7} | {'throughput/eager wall':>21} {'CPU':>5} | "
              f"{'max |diff| vs eager':>19}")
        for k in order:
            med, med_cpu = statistics.median(seconds[k]), statistics.median(cpu[k])
            diff = (outputs[k] - outputs["eager"]).abs().max().item()
            ok = "ok" if diff <= 1 / 255 else "> 1/255!"
            print(f"  {k:>8} | {med:>7.2f} {med_cpu:>7.2f} | {eager / med:>21.2f} {eager_cpu / med_cpu:>5.2f} | "
                  f"{diff:>12.2e} {ok}", flush=True)
    del runs, outputs
    gc.collect()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="fsrcnn,rrdb6,srrescgan")
    ap.add_argument("--size", type=int, default=512, help="LR side of the input.")
    ap.add_argument("--blocks", type=int, default=1, help="ABBA blocks (each runs every backend twice).")
    ap.add_argument("--backends", help="Subset of compile,ort to time besides eager (default: all).")
    ap.add_argument("--threads", type=int, help="Intra-op threads of PyTorch and ONNX Runtime.")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("SRCORE_SHARED_DATA", DATA)))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    only = args.backends.split(",") if args.backends else None
    for name in args.models.split(","):
        bench(name, args.size, args.blocks, args.data, only, args.threads)


if __name__ == "__main__":
    main()
