"""A short CPU run of ``gflmser:gflmser-faces-x4`` on the shared faces, then PSNR against bicubic.

Prepares the authors' geometry once (HR faces 64x64 from celeba_hq, real LR faces 16x16 from
real_lq, held-out ffhq10 at 64x64 for validation), trains the three phases with few steps and
evaluates the SR model and bicubic upsampling on ffhq10 (LR = MATLAB bicubic of the 64x64 HR,
PSNR on float Y without crop, as the authors). Usage:

    OMP_NUM_THREADS=1 .venv/bin/python plugins/gflmser/benchmarks/faces_short_run.py OUT_DIR \
        [--steps 100,100,400] [--batch 8]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import cv2

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "faces"


def prepare(src: Path, dst: Path, size: int) -> str:
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        img = cv2.imread(str(f), cv2.IMREAD_COLOR)
        if img is not None:
            cv2.imwrite(str(dst / f"{f.stem}.png"), cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA))
    return str(dst)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--steps", default="100,100,400")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    hr = prepare(DATA / "celeba_hq", args.out / "data" / "hr64", 64)
    real = prepare(DATA / "real_lq", args.out / "data" / "real16", 16)
    val = prepare(DATA / "ffhq10", args.out / "data" / "ffhq64", 64)
    s = args.steps.split(",")
    srcore = [sys.executable, "-m", "srcore"]
    psnr = "{id: core:psnr, params: {y_channel: true, crop_border: 0, y_convention: float}}"
    run = args.out / "run"
    subprocess.run([*srcore, "train", "-r", "gflmser:gflmser-faces-x4", "--run-dir", str(run), "--device", "cpu",
                    "--no-progress", "-s", f"data.train.hr={hr}", "-s", f"data.train.lr_real={real}",
                    "-s", "data.train.patch_size=64", "-s", f"data.train.batch_size={args.batch}",
                    "-s", f"data.train.repeat={max(1, args.batch * 4 // 56)}",
                    "-s", f"val.sets=[{val}]", "-s", "val.every=100",
                    "-s", f"val.metrics=[{psnr}]",
                    "-s", f"stages.0.steps={s[0]}", "-s", f"stages.1.steps={s[1]}", "-s", f"stages.2.steps={s[2]}"],
                   check=True)
    common = ["--data", val, "--scale", "4", "--metrics", "psnr", "--crop-border", "0", "--y-convention", "float"]
    subprocess.run([*srcore, "eval", "--model", "bicubic", *common], check=True)
    subprocess.run([*srcore, "eval", "-c", str(run / "last"), *common], check=True)


if __name__ == "__main__":
    main()
