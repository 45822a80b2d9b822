"""Does t control the distortion/perception trade-off after training? (CPU, a few minutes)

Trains a small FxSR-PD (PSNR stage, then the conditional GAN stage with the PD preset) through
``srcore train --plugin fxsr`` on the core's built-in photographs, then measures Set5 x4 PSNR/SSIM
(Y, crop 4) at several t with ``evaluate_t_sweep``. Expected if the conditional objective works:
PSNR decreasing from t = 0 (pixel loss only) to t = 1 (mostly adversarial).

ImageNet VGG19 weights are not available offline, so the VGG54 term uses random weights
(``vgg_weights: random``): this checks the conditioning mechanism, not perceptual quality.

    python plugins/fxsr/benchmarks/t_tradeoff.py --out /tmp/fxsr_bench [--psnr-steps 400 --gan-steps 400]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CONFIG = """
model: {{id: fxsr:fxsr, params: {{scale: 4, nb: {nb}, nf: {nf}, gc: {gc}}}}}
data:
  train: {{hr: "builtin:skimage", patch_size: 64, batch_size: 8}}
stages:
  - name: psnr
    steps: {psnr_steps}
    step: fxsr:conditional
    step_params: {{weights: {{pixel: 1.0}}}}
    optim: {{lr: 2.0e-4, betas: [0.9, 0.99]}}
  - name: gan
    steps: {gan_steps}
    step: fxsr:conditional
    step_params: {{vgg_weights: random}}     # PD preset (default weights)
    optim: {{lr: 1.0e-4, betas: [0.9, 0.99]}}
    discriminator: {{id: core:vgg128, params: {{nf: 32, input_size: 64}}}}
    gan: {{type: ragan}}
    optim_d: {{lr: 1.0e-4, betas: [0.9, 0.99]}}
train: {{device: cpu, seed: 0, log_every: 50, save_every: 100000}}
val: {{sets: [], every: 100000}}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--psnr-steps", type=int, default=400)
    ap.add_argument("--gan-steps", type=int, default=400)
    ap.add_argument("--nb", type=int, default=2)
    ap.add_argument("--nf", type=int, default=32)
    ap.add_argument("--gc", type=int, default=16)
    ap.add_argument("--data-root", type=Path, default=Path(__file__).resolve().parents[3] / ".." / "shared" / "data")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cfg = args.out / "config.yaml"
    cfg.write_text(CONFIG.format(nb=args.nb, nf=args.nf, gc=args.gc, psnr_steps=args.psnr_steps,
                                 gan_steps=args.gan_steps))
    run = args.out / "run"
    srcore = str(Path(sys.executable).with_name("srcore"))
    start = time.time()
    subprocess.run([srcore, "train", "--plugin", "fxsr", "-c", str(cfg), "--run-dir", str(run), "--no-progress"],
                   check=True, env={**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")})
    train_s = time.time() - start

    from sr_plugin_fxsr.sweep import evaluate_t_sweep, format_table
    from srcore.plugins import PluginManager

    metrics = [{"id": "core:psnr", "params": {"y_channel": True, "crop_border": 4}},
               {"id": "core:ssim", "params": {"y_channel": True, "crop_border": 4}}]
    rows = evaluate_t_sweep(run, [0.0, 0.25, 0.5, 0.75, 1.0], sets=["set5"], metrics=metrics,
                            root=args.data_root, manager=PluginManager().load(only=["fxsr"]))
    table = format_table(rows)
    logs = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    summary = (
        f"FxSR-PD tiny (nb={args.nb}, nf={args.nf}, gc={args.gc}), {args.psnr_steps} PSNR + {args.gan_steps} GAN "
        f"steps on CPU in {train_s:.0f} s; random-weight VGG.\n\n{table}\n"
    )
    (args.out / "result.md").write_text(summary)
    (args.out / "rows.json").write_text(json.dumps([r.__dict__ for r in rows], indent=2))
    print(summary)
    print("last train log:", {k: v for k, v in logs[-1].items() if k.startswith("loss/")})


if __name__ == "__main__":
    main()
