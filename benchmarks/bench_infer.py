"""SRResCGAN (released x4 weights) on realworld_lr/0815.png: time and peak RSS, untiled vs tiled.

SRResCGAN is not tile-exact as shipped: its noise estimate (a median) and its L2-ball projection
span the whole image. ``PROTOTYPE`` is the ``tile_split`` method this benchmark proposes for
``sr_plugin_srrescgan.generator.SRResCGAN`` (owned by the plugin, so attached here at run time):
the conv part (ResCNet's encoder, blocks, decoder) runs per tile, the statistics on the whole
image. With it the model can be declared ``tile_exact=True, receptive_field=6`` and tiled under
``--max-memory`` with the untiled output bit for bit. Each configuration runs in its own process
(peak RSS of that child from ``os.wait4``), in ABBA order.

    .venv/bin/python benchmarks/bench_infer.py [--max-memory 768M] [--blocks 1] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

from bench_tiling import bitwise_equal, parse_size

PROTOTYPE = r"""
import types
from torch.nn import functional as F
from srcore.infer import TileSplit
from sr_plugin_srrescgan.generator import l2_ball_projection


def tile_split(self, x):
    up = F.interpolate(x * 255.0, scale_factor=self.scale, mode="bilinear", align_corners=False)
    sigma = self.noise_estimator(up) * 255.0

    def local(xt):
        ut = F.interpolate(xt * 255.0, scale_factor=self.scale, mode="bilinear", align_corners=False)
        m = self.model
        return m.conv_out(m.layer1(m.conv1(F.pad(ut, (2, 2, 2, 2), mode="reflect"))))

    def finish(r):
        out = up - l2_ball_projection(r, sigma, self.alpha)
        return (F.hardtanh(out, 0.0, 255.0) if self.clip else out) / 255.0

    return TileSplit(local, finish)
"""

CHILD = r"""
import json, sys, time, types, torch
from srcore.data.io import read_image
from srcore.engine.checkpoint import load_checkpoint
from srcore.infer import super_resolve
weights, image, budget, save, proto = sys.argv[1], sys.argv[2], int(sys.argv[3]) or None, sys.argv[4], sys.argv[5]
loaded = load_checkpoint(weights)
if budget:
    exec(proto)
    loaded.module.tile_split = types.MethodType(tile_split, loaded.module)
    loaded.info = loaded.info.model_copy(update={"tile_exact": True, "receptive_field": 6})
lr = read_image(image)
t0 = time.perf_counter()
out = super_resolve(loaded, lr, max_memory=budget)
dt = time.perf_counter() - t0
torch.save(out, save)
print(json.dumps({"seconds": dt}))
"""


def run(weights: str, image: str, budget: int, save: str) -> dict:
    """One configuration in a fresh process: its seconds and its own peak RSS (MB)."""
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, weights, image, str(budget), save, PROTOTYPE],
                                stdout=subprocess.PIPE, stderr=err, text=True)
        out = proc.stdout.read()  # type: ignore[union-attr]
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = status
        if status:
            err.seek(0)
            raise RuntimeError(f"child failed: {err.read()[-2000:]}")
    return {**json.loads(out.strip().splitlines()[-1]), "rss_mb": usage.ru_maxrss / 1024}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    ap.add_argument("--max-memory", default="768M")
    ap.add_argument("--blocks", type=int, default=1)
    args = ap.parse_args()
    weights = os.path.join(args.data, "weights", "srrescgan_x4_RaoUmer.pth")
    image = os.path.join(args.data, "realworld_lr", "0815.png")
    budget = parse_size(args.max_memory)
    runs: dict[str, list[dict]] = {"u": [], "t": []}
    with tempfile.TemporaryDirectory() as d:
        for _ in range(args.blocks):
            for kind in "uttu":
                r = run(weights, image, 0 if kind == "u" else budget, f"{d}/{kind}.pt")
                print(f"  {'untiled' if kind == 'u' else 'tiled'}: {r['seconds']:.1f} s, {r['rss_mb']:.0f} MB",
                      flush=True)
                runs[kind].append(r)
        same = bitwise_equal(f"{d}/u.pt", f"{d}/t.pt")
    ratios = [t["seconds"] / u["seconds"] for u, t in zip(runs["u"], runs["t"])]
    for kind, name in (("u", "untiled (today)"), ("t", f"tiled, --max-memory {args.max_memory}")):
        v = runs[kind]
        print(f"{name:>28}: median {statistics.median(r['seconds'] for r in v):.1f} s, "
              f"peak RSS {max(r['rss_mb'] for r in v):.0f} MB")
    print(f"time ratio tiled/untiled (median of pairs): {statistics.median(ratios):.2f}; bitwise equal: {same}")


if __name__ == "__main__":
    main()
