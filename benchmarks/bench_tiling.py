"""Inference in bounded memory: time and peak RSS against image size, untiled vs budget-tiled.

Every configuration runs in its own process; its peak resident memory is the child's own
``ru_maxrss`` from ``os.wait4`` (the whole process: torch, model, image, activations, output).
The output must equal the untiled one bit for bit (checked on the saved float tensors). The
machine is shared: each size runs as ABBA blocks (untiled, tiled, tiled, untiled) and reports
medians and the tiled/untiled time ratio of the same run.

``--model conv8``: a conv-only 64-channel, 8-conv x2 network declared tile-exact (receptive
field 8) on the astronaut photograph resized to each size. ``--model srrescgan``: the released
x4 SRResCGAN (shared/data/weights) through its exact ``tile_split``, on the same photograph and,
with ``--image``, on a given file (realworld_lr/0815.png). ``--max-memory`` takes what
``srcore upscale --max-memory`` takes (``auto``: its default limits, computed in the child).

Measured 2026-12-01, --max-memory auto (upscale's default), --threads 1, one ABBA block, on 2
heavily shared cores (wall time mostly waits for a core; the CPU time is the work):

    model      input      untiled wall/CPU s  peak MB   tiled wall/CPU s  peak MB   CPU ratio  bitwise
    conv8      256           4.0 /  0.6          726        2.9 /  0.6        695      1.02     True (untiled both)
    conv8      1024         37.5 /  8.8         1345       26.6 / 10.8        854      1.22     True
    conv8      2048        174.4 / 39.3         3686      196.7 / 37.9       1195      0.97     True
    srrescgan  256          93.8 / 17.8         2162       65.6 / 20.3       1035      1.15     True
    srrescgan  0815.png    170.4 / 44.4         4768      217.7 / 51.5       1440      1.16     True

    .venv/bin/python benchmarks/bench_tiling.py [--sizes 256,512,1024,2048] [--max-memory 256M] [--blocks 1]
    .venv/bin/python benchmarks/bench_tiling.py --model srrescgan --sizes 256 --max-memory auto \
        --image ../shared/data/realworld_lr/0815.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time, torch
from torch import nn
from torch.nn import functional as F
from srcore.cli.upscale_cmd import memory_limits
from srcore.infer import Upscaler, super_resolve
from srcore.registry import ModelInfo
model, image, budget, save, weights, threads = sys.argv[1:7]
if int(threads):
    torch.set_num_threads(int(threads))
if model == "conv8":
    torch.manual_seed(0)
    layers = [nn.Conv2d(3, 64, 3, padding=1)]
    for _ in range(6):
        layers += [nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)]
    layers += [nn.ReLU(), nn.Conv2d(64, 12, 3, padding=1), nn.PixelShuffle(2)]
    net = nn.Sequential(*layers).eval()
    up = Upscaler(lambda x, c: net(x), ModelInfo(scales=(2,), tile_exact=True, receptive_field=8), 2, "conv8", net)
else:
    from srcore.engine.checkpoint import load_checkpoint
    up = load_checkpoint(weights)
if image.isdigit():
    from skimage import data
    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
    size = int(image)
    lr = F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
else:
    from srcore.data.io import read_image
    lr = read_image(image)
limit, target = memory_limits(budget, torch.device("cpu"))
t0, c0 = time.perf_counter(), time.process_time()
out = super_resolve(up, lr, max_memory=limit, memory_target=target)
dt, cpu = time.perf_counter() - t0, time.process_time() - c0
torch.save(out, save)
print(json.dumps({"seconds": dt, "cpu": cpu}))
"""


def parse_size(text: str) -> int:
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    t = text.strip().upper()
    return int(float(t[:-1]) * units[t[-1]]) if t[-1] in units else int(t)


def run(model: str, image: str, budget: str, save: str, weights: str = "", threads: int = 0) -> dict:
    """One configuration in a fresh process: its seconds (wall, CPU) and its own peak RSS (MB)."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, model, image, budget, save, weights, str(threads)],
                                stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)  # reaps it with its own rusage (Popen.wait would not tell)
        proc.returncode = status
        if status:
            err.seek(0)
            raise RuntimeError(f"child failed for {model} on {image}: {err.read()[-2000:]}")
    return {**json.loads(out.strip().splitlines()[-1]), "rss_mb": usage.ru_maxrss / 1024}


def bitwise_equal(a: str, b: str) -> bool:
    import torch

    return torch.equal(torch.load(a), torch.load(b))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["conv8", "srrescgan"], default="conv8")
    ap.add_argument("--sizes", default="256,512,1024,2048", help="LR sides (the output is 2x / 4x).")
    ap.add_argument("--image", action="append", default=[], help="Also an image file (repeatable).")
    ap.add_argument("--max-memory", default="256M", help="Budget of the tiled runs, as upscale --max-memory.")
    ap.add_argument("--blocks", type=int, default=1, help="ABBA blocks per size.")
    ap.add_argument("--threads", type=int, default=0, help="torch threads of the children (0: default).")
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    args = ap.parse_args()
    weights = os.path.join(args.data, "weights", "srrescgan_x4_RaoUmer.pth") if args.model == "srrescgan" else ""
    print(f"{args.model}, tiled runs: --max-memory {args.max_memory}")
    print(f"{'input':>9} | {'untiled s':>9} {'cpu s':>7} {'peak MB':>8} | {'tiled s':>8} {'cpu s':>7} {'peak MB':>8} | "
          f"{'wall ratio':>10} {'cpu ratio':>9} {'bitwise':>7}")
    images = [s for s in args.sizes.split(",") if s] + args.image
    with tempfile.TemporaryDirectory() as d:
        for image in images:
            a, b = f"{d}/a.pt", f"{d}/b.pt"
            runs: dict[str, list[dict]] = {"u": [], "t": []}
            for _ in range(args.blocks):
                for kind in "uttu":
                    budget, save = ("off", a) if kind == "u" else (args.max_memory, b)
                    runs[kind].append(run(args.model, image, budget, save, weights, args.threads))
            same = bitwise_equal(a, b)
            med = {k: (statistics.median(r["seconds"] for r in v), statistics.median(r["cpu"] for r in v),
                       max(r["rss_mb"] for r in v)) for k, v in runs.items()}
            ratio = {key: statistics.median(t[key] / u[key] for u, t in zip(runs["u"], runs["t"]))
                     for key in ("seconds", "cpu")}
            name = image if image.isdigit() else os.path.basename(image)
            (uw, uc, um), (tw, tc, tm) = med["u"], med["t"]
            print(f"{name:>9} | {uw:>9.1f} {uc:>7.1f} {um:>8.0f} | {tw:>8.1f} {tc:>7.1f} {tm:>8.0f} | "
                  f"{ratio['seconds']:>10.2f} {ratio['cpu']:>9.2f} {same!s:>7}", flush=True)


if __name__ == "__main__":
    main()
