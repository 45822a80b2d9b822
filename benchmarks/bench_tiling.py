"""Tiled inference: peak memory against image size, tiled vs untiled, and the tiling error.

Each measurement runs in a fresh process and reports its peak resident memory (ru_maxrss)
above the memory it had before the forward (model built, LR image in memory), so what is left
is activations and output buffers. The model is a 64-channel, 8-conv x2 network (the
activations of one layer are 64 x H x W floats, 16x the LR image in bytes).

    .venv/bin/python benchmarks/bench_tiling.py [--sizes 128,256,512,768] [--tile 128]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch
from torch import nn
from torch.nn import functional as F
torch.set_num_threads(1)
from srcore.infer import Upscaler, super_resolve
from srcore.registry import ModelInfo
size, tile = int(sys.argv[1]), (int(sys.argv[2]) or None)
torch.manual_seed(0)
layers = [nn.Conv2d(3, 64, 3, padding=1)]
for _ in range(6):
    layers += [nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)]
layers += [nn.ReLU(), nn.Conv2d(64, 12, 3, padding=1), nn.PixelShuffle(2)]
net = nn.Sequential(*layers).eval()
up = Upscaler(lambda x, c: net(x), ModelInfo(scales=(2,)), 2)
from skimage import data
img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255
lr = F.interpolate(img[None], size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
with torch.no_grad():
    super_resolve(up, lr[..., :16, :16])  # warm-up allocations of the code path
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
before = int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1])
t0 = time.perf_counter()
out = super_resolve(up, lr, tile=tile)
dt = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"size": size, "tile": tile, "extra_mb": (peak - max(base, before)) / 1024, "seconds": dt,
                  "out_mb": out.numel() * 4 / 2**20}))
if len(sys.argv) > 3:
    torch.save(out, sys.argv[3])
"""


def run(size: int, tile: int, save: str | None = None) -> dict:
    args = [sys.executable, "-c", CHILD, str(size), str(tile)] + ([save] if save else [])
    out = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="128,256,512,768")
    ap.add_argument("--tile", type=int, default=128)
    args = ap.parse_args()
    print(f"{'LR size':>8} {'HR out MB':>9} | {'untiled extra MB':>16} {'s':>6} | "
          f"{f'tiled({args.tile}) extra MB':>18} {'s':>6}")
    for size in (int(s) for s in args.sizes.split(",")):
        a, b = run(size, 0), run(size, args.tile)
        print(f"{size:>8} {a['out_mb']:>9.1f} | {a['extra_mb']:>16.1f} {a['seconds']:>6.2f} | "
              f"{b['extra_mb']:>18.1f} {b['seconds']:>6.2f}")
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as d:
        run(256, 0, f"{d}/a.pt")
        run(256, args.tile, f"{d}/b.pt")
        diff = (torch.load(f"{d}/a.pt") - torch.load(f"{d}/b.pt")).abs().max().item()
    print(f"tiled vs untiled on the astronaut photograph (LR 256): max |diff| = {diff * 255:.4f} / 255")


if __name__ == "__main__":
    main()
