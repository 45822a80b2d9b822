"""End-to-end ``srcore eval --model bicubic`` against the same pipeline built from BasicSR 1.4.2.

    .venv/bin/python benchmarks/bench_eval.py                      # Set14 x4 and celeba_hq x4
    .venv/bin/python benchmarks/bench_eval.py --sets set14 --blocks 3 --phases

The pipeline: read the HR (mod-crop to the scale), LR = MATLAB bicubic 1/scale stored as 8 bits,
SR = MATLAB bicubic x scale of the LR stored as 8 bits, Y, border crop = scale, PSNR and SSIM.

srcore runs in-process through the CLI (``srcore eval ... --json``, plugin loading included,
the interpreter's start-up and the torch import excluded for both). The reference uses BasicSR's
own functions, imported as standalone files (its package ``__init__`` does not import with the
installed torchvision): ``cv2.imread``, ``matlab_functions.imresize`` and
``psnr_ssim.calculate_psnr/calculate_ssim``. Conventions aligned (the script asserts it):

* ``--y-convention matlab`` (srcore's default) is Y of the 8-bit image rounded to an integer.
  BasicSR's ``bgr2ycbcr`` on uint8 input is exactly that (checked on all 2^24 colours), so the
  reference measures that Y with ``test_y_channel=False``: values must agree to 1e-10.
* ``test_y_channel=True`` is BasicSR's float convention (unrounded Y, computed in float32):
  compared with ``srcore eval --y-convention float`` (float64), reported, not asserted to 1e-10.
* 8-bit storage rounds by srcore's rule (``quantize``) in both; BasicSR's imresize runs in
  float32 as shipped, so the reference runs the same code in float64 (``float64_imresize``) and
  the float32 one is reported beside it.

Timing: ABBA blocks (srcore, reference, reference, srcore) on a shared machine; medians of the
per-run times and of the per-block ratios.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import importlib.util
import json
import pstats
import statistics
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

SETS = {"set14": "set14", "celeba": "faces/celeba_hq"}


# -- BasicSR, imported file by file ------------------------------------------------------------

def _load(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_basicsr() -> tuple[types.ModuleType, types.ModuleType, types.ModuleType]:
    """(matlab_functions, psnr_ssim, color_util); only the imports psnr_ssim needs are stubbed."""
    import importlib.metadata

    dist = importlib.metadata.distribution("basicsr")
    root = Path(str(dist.locate_file("basicsr")))
    color = _load("basicsr.utils.color_util", root / "utils" / "color_util.py")
    utils = types.ModuleType("basicsr.utils")
    utils.bgr2ycbcr = color.bgr2ycbcr  # type: ignore[attr-defined]  # metric_util: from basicsr.utils import
    sys.modules["basicsr.utils"] = utils
    registry = types.ModuleType("basicsr.utils.registry")
    registry.METRIC_REGISTRY = types.SimpleNamespace(register=lambda: (lambda f: f))  # type: ignore[attr-defined]
    sys.modules["basicsr.utils.registry"] = registry
    _load("basicsr.metrics.metric_util", root / "metrics" / "metric_util.py")
    psnr_ssim = _load("basicsr.metrics.psnr_ssim", root / "metrics" / "psnr_ssim.py")
    matlab = _load("basicsr.utils.matlab_functions", root / "utils" / "matlab_functions.py")
    return matlab, psnr_ssim, color


def float64_imresize(matlab: types.ModuleType) -> Callable[[np.ndarray, float], np.ndarray]:
    """BasicSR's imresize computed in float64: the same code with its float32 buffers
    (``torch.FloatTensor``, ``torch.linspace``) made float64, on CHW tensors (its numpy path
    casts to float32 first)."""
    t64 = types.SimpleNamespace(**{k: getattr(torch, k) for k in dir(torch) if not k.startswith("__")})
    t64.FloatTensor = lambda *size: torch.empty(*size, dtype=torch.float64)
    t64.linspace = lambda *a, **k: torch.linspace(*a, **k, dtype=torch.float64)
    module = _load("basicsr_matlab_functions_float64", Path(str(matlab.__file__)))  # its own globals
    module.torch = t64  # type: ignore[attr-defined]

    def resize(img: np.ndarray, scale: float) -> np.ndarray:
        out = module.imresize(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))), scale)
        return out.numpy().transpose(1, 2, 0)

    return resize


def to_u8(x: np.ndarray) -> np.ndarray:
    """[0, 1] -> uint8 by srcore's 8-bit rounding rule (``srcore.data.color.quantize``): storage
    is a convention both pipelines must share, not what is compared (imresize, Y, PSNR, SSIM)."""
    from srcore.data.color import quantize

    levels = quantize(torch.from_numpy(np.asarray(x, dtype=np.float64))).mul_(255.0).round_()
    return levels.numpy().astype(np.uint8)


def reference(
    files: list[Path], scale: int, convention: str, bsr: tuple, precision: str = "float64"
) -> list[tuple[float, float]]:
    """The pipeline with BasicSR's functions; per-image (PSNR, SSIM). ``precision`` float32 is
    BasicSR's imresize as shipped; float64 the same code in float64 (see ``float64_imresize``)."""
    matlab, ps, color = bsr
    resize = float64_imresize(matlab) if precision == "float64" else matlab.imresize
    out = []
    for path in files:
        hr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        h, w = hr.shape[:2]
        hr = hr[: h - h % scale, : w - w % scale]
        lr = to_u8(resize(hr / 255.0, 1 / scale))
        sr = to_u8(resize(lr / 255.0, scale))
        if convention == "matlab":
            a, b, y = color.bgr2ycbcr(sr, y_only=True), color.bgr2ycbcr(hr, y_only=True), False
        else:
            a, b, y = sr, hr, True
        out.append((ps.calculate_psnr(a, b, scale, test_y_channel=y), ps.calculate_ssim(a, b, scale, test_y_channel=y)))
    return out


def srcore_eval(spec: str, root: Path, scale: int, convention: str, workers: int | None) -> list[tuple[float, float]]:
    """``srcore eval --model bicubic`` in-process; per-image (PSNR, SSIM) from its JSON."""
    from click.testing import CliRunner

    from srcore.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        args = ["eval", "--model", "bicubic", "--data", spec, "--data-root", str(root), "--scale", str(scale),
                "--metrics", "psnr,ssim", "--y-convention", convention, "--no-progress", "--json", str(out)]
        if workers:
            args += ["--workers", str(workers)]
        res = CliRunner().invoke(main, args, catch_exceptions=False)
        assert res.exit_code == 0, res.output
        images = json.loads(out.read_text())["results"][0]["images"]
    return [(r["psnr"], r["ssim"]) for r in images]


# -- timing ------------------------------------------------------------------------------------

def abba(a: Callable[[], Any], b: Callable[[], Any], blocks: int) -> tuple[list[float], list[float], Any, Any]:
    """Times of a and b in ``blocks`` ABBA blocks, and their last results."""
    ta: list[float] = []
    tb: list[float] = []
    ra = rb = None
    for _ in range(blocks):
        for fn, times in ((a, ta), (b, tb), (b, tb), (a, ta)):
            t = time.perf_counter()
            r = fn()
            times.append(time.perf_counter() - t)
            if fn is a:
                ra = r
            else:
                rb = r
    return ta, tb, ra, rb


def block_ratios(ta: list[float], tb: list[float]) -> list[float]:
    return [(tb[i] + tb[i + 1]) / (ta[i] + ta[i + 1]) for i in range(0, len(ta), 2)]


def max_diff(x: list[tuple[float, float]], y: list[tuple[float, float]]) -> tuple[float, float]:
    assert len(x) == len(y)
    return max(abs(p[0] - q[0]) for p, q in zip(x, y)), max(abs(p[1] - q[1]) for p, q in zip(x, y))


# -- where the time goes -----------------------------------------------------------------------

def phases_reference(files: list[Path], scale: int, bsr: tuple) -> dict[str, float]:
    """CPU time per phase of the reference (float64 imresize), sequential."""
    matlab, ps, color = bsr
    resize = float64_imresize(matlab)
    t = dict.fromkeys(["decode", "resize", "colour", "psnr", "ssim"], 0.0)
    for path in files:
        t0 = time.thread_time()
        hr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        h, w = hr.shape[:2]
        hr = hr[: h - h % scale, : w - w % scale]
        t1 = time.thread_time()
        sr = to_u8(resize(to_u8(resize(hr / 255.0, 1 / scale)) / 255.0, scale))
        t2 = time.thread_time()
        a, b = color.bgr2ycbcr(sr, y_only=True), color.bgr2ycbcr(hr, y_only=True)
        t3 = time.thread_time()
        ps.calculate_psnr(a, b, scale)
        t4 = time.thread_time()
        ps.calculate_ssim(a, b, scale)
        t5 = time.thread_time()
        for k, d in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            t[k] += d
    return t


def phases_srcore(files: list[Path], scale: int) -> dict[str, float]:
    """CPU time per phase of what one of srcore eval's workers does per image (the steps
    of ``EvalSet.__getitem__``, ``_bicubic_pair``, ``_batch`` and the metrics, one by one)."""
    from srcore.data.color import quantize_uint8
    from srcore.data.degrade import BicubicMatlab
    from srcore.data.io import array_to_uint8, read_array
    from srcore.data.resize import imresize
    from srcore.data.transforms import mod_crop
    from srcore.metrics.fullref import PSNR, SSIM

    p, s, down = PSNR(scale, True), SSIM(scale, True), BicubicMatlab(scale)
    t = dict.fromkeys(["decode", "resize", "colour", "psnr", "ssim"], 0.0)
    for path in files:
        t0 = time.thread_time()
        hr8 = mod_crop(array_to_uint8(read_array(path), path), scale)
        hr8.float().div_(255.0)  # EvalSet's float32 "hr"
        t1 = time.thread_time()
        lr = down(hr8.unsqueeze(0).double().div_(255.0))  # exact k / 255 in, 8-bit levels out
        sr = quantize_uint8(imresize(lr, scale, size=tuple(hr8.shape[-2:])).clamp_(0, 1))
        t2 = time.thread_time()
        a, b = p.prep(sr), p.prep(hr8.unsqueeze(0))
        t3 = time.thread_time()
        p.from_measured(a, b)
        t4 = time.thread_time()
        s.from_measured(a, b)
        t5 = time.thread_time()
        for k, d in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            t[k] += d
    return t


def print_phases(name: str, t: dict[str, float]) -> None:
    total = sum(t.values())
    parts = ", ".join(f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in t.items())
    print(f"  {name:9} {total:6.2f} s CPU: {parts}")


def profile_srcore(spec: str, root: Path, scale: int) -> None:
    prof = cProfile.Profile()
    prof.enable()
    srcore_eval(spec, root, scale, "matlab", None)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(12)


# -- main --------------------------------------------------------------------------------------

def main() -> None:
    from srcore.data.datasets import hr_files_of
    from srcore.data.sets import default_data_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--sets", default="set14,celeba", help=f"comma-separated, of {', '.join(SETS)} or folders")
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--blocks", type=int, default=2, help="ABBA blocks per set")
    ap.add_argument("--workers", type=int, default=None, help="srcore eval --workers (default: its own)")
    ap.add_argument("--phases", action="store_true", help="Also time each phase (CPU time), sequentially, 1 thread.")
    ap.add_argument("--profile", action="store_true", help="cProfile one srcore run (top 12 by own time).")
    args = ap.parse_args()
    root = Path(args.data_root) if args.data_root else default_data_root()
    bsr = load_basicsr()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; OpenCV {cv2.__version__}; "
          f"scale x{args.scale}; {args.blocks} ABBA blocks")
    rows = []
    for key in args.sets.split(","):
        spec = SETS.get(key, key)
        files = hr_files_of(spec, root)
        mpix = sum(np.prod(cv2.imread(str(f), cv2.IMREAD_REDUCED_GRAYSCALE_2).shape) * 4 for f in files) / 1e6
        srcore_eval(spec, root, args.scale, "matlab", args.workers)  # warm-up (plugin import, caches)
        ta, tb, ours, ref = abba(functools.partial(srcore_eval, spec, root, args.scale, "matlab", args.workers),
                                 functools.partial(reference, files, args.scale, "matlab", bsr), args.blocks)
        dp, ds = max_diff(ours, ref)
        assert dp < 1e-10 and ds < 1e-10, f"{key}: srcore and BasicSR disagree: dPSNR {dp:.2e}, dSSIM {ds:.2e}"
        t = time.perf_counter()
        d32 = max_diff(ours, reference(files, args.scale, "matlab", bsr, precision="float32"))
        t32 = time.perf_counter() - t
        fp, fs = max_diff(srcore_eval(spec, root, args.scale, "float", args.workers),
                          reference(files, args.scale, "float", bsr))
        rows.append((key, len(files), mpix, statistics.median(ta), statistics.median(tb),
                     statistics.median(block_ratios(ta, tb)), dp, ds, fp, fs, t32, d32))
        print(f"{key}: srcore {[round(t, 2) for t in ta]} s, reference {[round(t, 2) for t in tb]} s; "
              f"BasicSR imresize as shipped (float32): {t32:.2f} s once, max dPSNR {d32[0]:.1e} dSSIM {d32[1]:.1e}")
        if args.phases:  # one thread each, as one of srcore eval's workers runs
            threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
            torch.set_num_threads(1)
            cv2.setNumThreads(0)
            print_phases("reference", phases_reference(files, args.scale, bsr))
            print_phases("srcore", phases_srcore(files, args.scale))
            torch.set_num_threads(threads)
            cv2.setNumThreads(cv_threads)
        if args.profile:
            profile_srcore(spec, root, args.scale)
    print()
    print("| set | images | Mpixel | srcore (s) | BasicSR fns (s) | speed-up (block median) "
          "| max dPSNR / dSSIM, matlab Y | float Y (BasicSR float32) |")
    print("|---|---|---|---|---|---|---|---|")
    for key, n, mpix, a, b, ratio, dp, ds, fp, fs, _, _ in rows:
        print(f"| {key} | {n} | {mpix:.1f} | {a:.2f} | {b:.2f} | {ratio:.1f}x | {dp:.1e} / {ds:.1e} | "
              f"{fp:.1e} / {fs:.1e} |")


if __name__ == "__main__":
    main()
