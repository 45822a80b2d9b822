"""Time srcore's PSNR+SSIM against numpy/OpenCV references on a benchmark set, at equal values.

    .venv/bin/python benchmarks/bench_metrics.py --data-root ../shared/data --set set14 --scale 4

SR images are the bicubic baseline (MATLAB imresize, 8-bit). Every implementation measures Y
(MATLAB rgb2ycbcr on uint8, rounded), border crop = scale. References:

* numpy-direct: the straightforward implementation of the tests (2-D Gaussian window applied to
  every 11x11 block with numpy);
* opencv: the usual SR-repository implementation (cv2.filter2D with the 11x11 window in
  float64, numpy PSNR), as BasicSR's ``calculate_psnr``/``calculate_ssim`` do.

Each implementation runs ``--repeat`` times over the set (the best time counts); values must
agree to 1e-6 dB / 1e-7.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view

from srcore.data.datasets import make_eval_dataset
from srcore.data.sets import default_data_root
from srcore.metrics.evaluate import bicubic_pairs
from srcore.metrics.fullref import PSNR, SSIM


def y_u8(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.int64) for i in range(3))
    return ((65481 * r + 128553 * g + 24966 * b + 127500) // 255000 + 16).astype(np.float64)


def window() -> np.ndarray:
    ax = np.arange(11) - 5.0
    w = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.5**2))
    return w / w.sum()


C1, C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2


def ssim_direct(a: np.ndarray, b: np.ndarray) -> float:
    w = window()
    pa, pb = sliding_window_view(a, (11, 11)), sliding_window_view(b, (11, 11))
    mu_a, mu_b = (pa * w).sum((-1, -2)), (pb * w).sum((-1, -2))
    va = (pa**2 * w).sum((-1, -2)) - mu_a**2
    vb = (pb**2 * w).sum((-1, -2)) - mu_b**2
    cov = (pa * pb * w).sum((-1, -2)) - mu_a * mu_b
    return float((((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (va + vb + C2))).mean())


def ssim_cv2(a: np.ndarray, b: np.ndarray) -> float:
    w = window()
    f = lambda x: cv2.filter2D(x, -1, w)[5:-5, 5:-5]  # noqa: E731
    mu_a, mu_b = f(a), f(b)
    va, vb, cov = f(a * a) - mu_a**2, f(b * b) - mu_b**2, f(a * b) - mu_a * mu_b
    return float((((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (va + vb + C2))).mean())


def psnr_np(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a - b) ** 2)))


def reference(pairs: list[tuple[np.ndarray, np.ndarray]], crop: int, ssim_fn) -> list[tuple[float, float]]:
    out = []
    for sr, hr in pairs:
        ys, yh = y_u8(sr)[crop:-crop, crop:-crop], y_u8(hr)[crop:-crop, crop:-crop]
        out.append((psnr_np(ys, yh), ssim_fn(ys, yh)))
    return out


def ours(pairs: list[tuple[torch.Tensor, torch.Tensor]], crop: int) -> list[tuple[float, float]]:
    p, s = PSNR(crop, True), SSIM(crop, True)
    return [(p.update(sr, hr).item(), s.update(sr, hr).item()) for sr, hr in pairs]


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--set", default="set14")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-direct", action="store_true", help="Skip the slow numpy-direct reference.")
    args = ap.parse_args()
    root = Path(args.data_root) if args.data_root else default_data_root()
    ds = make_eval_dataset(args.set, scale=args.scale, root=root)
    tensors, arrays = [], []
    for _, sr, hr in bicubic_pairs(ds):
        sr8 = torch.floor(sr.clamp(0, 1) * 255 + 0.5)
        hr8 = torch.floor(hr.clamp(0, 1) * 255 + 0.5)
        tensors.append(((sr8 / 255).unsqueeze(0).double(), (hr8 / 255).unsqueeze(0).double()))
        arrays.append((sr8.permute(1, 2, 0).numpy().astype(np.uint8), hr8.permute(1, 2, 0).numpy().astype(np.uint8)))
    crop = args.scale
    pixels = sum(a.shape[0] * a.shape[1] for a, _ in arrays)
    threads = torch.get_num_threads()
    print(f"{ds.name} x{args.scale}: {len(arrays)} images, {pixels / 1e6:.2f} Mpixel, torch threads {threads}")
    t_ours, v_ours = best_time(lambda: ours(tensors, crop), args.repeat)
    rows = [("srcore (torch, float64)", t_ours, v_ours)]
    t_cv, v_cv = best_time(lambda: reference(arrays, crop, ssim_cv2), args.repeat)
    rows.append(("opencv filter2D (BasicSR-style)", t_cv, v_cv))
    if not args.skip_direct:
        t_np, v_np = best_time(lambda: reference(arrays, crop, ssim_direct), 1)
        rows.append(("numpy direct (tests' reference)", t_np, v_np))
    print(f"{'implementation':34} {'time (s)':>9} {'vs srcore':>10} {'max |dPSNR|':>12} {'max |dSSIM|':>12}")
    for name, t, vals in rows:
        dp = max(abs(a[0] - b[0]) for a, b in zip(vals, v_ours))  # type: ignore[arg-type]
        ds_ = max(abs(a[1] - b[1]) for a, b in zip(vals, v_ours))  # type: ignore[arg-type]
        print(f"{name:34} {t:9.3f} {t / t_ours:9.2f}x {dp:12.2e} {ds_:12.2e}")
        assert dp < 1e-6 and ds_ < 1e-7, f"{name} disagrees with srcore"
    mean_p = np.mean([v[0] for v in v_ours])
    mean_s = np.mean([v[1] for v in v_ours])
    print(f"mean PSNR {mean_p:.4f} dB, mean SSIM {mean_s:.5f}")


if __name__ == "__main__":
    main()
