"""Set14 x4 with the paper's sensor-noise corruption: bicubic vs SRResCGAN vs SRResCGAN+.

Usage: python set14_sensor_noise.py [SHARED_DATA] [--jpeg]
Protocol: HR cropped to a multiple of 4; LR = srrescgan:sensor_noise (MATLAB bicubic /4, Gaussian
noise sigma 8 in 0..255, seed 0, 8-bit) or srrescgan:jpeg (q30); PSNR/SSIM on RGB, no border crop
(the training script's convention). LPIPS is left out: it needs ImageNet AlexNet weights.
Uses only core APIs (make_eval_dataset, super_resolve, core:psnr/core:ssim), so `srcore eval`
must give the same numbers.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from srcore.data.datasets import make_eval_dataset
from srcore.data.resize import imresize
from srcore.engine.checkpoint import load_checkpoint
from srcore.infer import super_resolve
from srcore.plugins import load_plugins


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0]) if args else Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
    corruption = "srrescgan:jpeg" if "--jpeg" in sys.argv else "srrescgan:sensor_noise"
    regs = load_plugins().registries
    model = load_checkpoint(root / "weights" / "srrescgan_x4_RaoUmer.pth")
    deg = regs.build("degradation", corruption, {})
    data = make_eval_dataset("set14", scale=4, root=root, degradation=deg)
    metric = {"crop_border": 0, "y_channel": False}
    methods = {
        "bicubic": lambda lr: imresize(lr[None], 4).clamp(0, 1),
        "SRResCGAN": lambda lr: super_resolve(model, lr),
        "SRResCGAN+": lambda lr: super_resolve(model, lr, self_ensemble=True),
    }
    table = {
        name: (regs.build("metric", "core:psnr", metric), regs.build("metric", "core:ssim", metric)) for name in methods
    }
    for item in data:
        t = time.time()
        for name, fn in methods.items():
            sr = fn(item["lr"])
            for m in table[name]:
                m.update(sr, item["hr"][None])
        print(f"{item['name']}: {time.time() - t:.1f}s", flush=True)
    print(f"Set14 x4, {corruption}, RGB, no crop")
    for name, (p, s) in table.items():
        print(f"{name:12s} PSNR {p.compute():.2f}  SSIM {s.compute():.4f}")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
