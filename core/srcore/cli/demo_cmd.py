"""``srcore demo``: train the srcnn plugin's demo recipe on CPU and compare it with bicubic.

It trains ``srcnn:demo-x3`` (a small x3 model on scikit-image's bundled photographs), then
evaluates the result on held-out photographs that training never saw (other scikit-image
photographs), Y-channel PSNR/SSIM with crop = scale, both for the model and for MATLAB bicubic,
and writes ``report.md`` with the table, the curves and side-by-side crops into the run folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from srcore.cli.common import handle_errors

RECIPE = "srcnn:demo-x3"
# scikit-image photographs that the training default (builtin:skimage) does not use.
HELDOUT = ("camera.png", "hubble_deep_field.jpg", "ihc.png", "coins.png", "moon.png")


def heldout_folder(dest: Path) -> Path:
    """Write the held-out photographs as RGB PNGs into ``dest`` (gray ones replicated to RGB)."""
    import skimage.data

    from srcore.data.io import read_image, write_image

    src = Path(skimage.data.__file__).parent
    dest.mkdir(parents=True, exist_ok=True)
    for name in HELDOUT:
        if (src / name).is_file():
            img = read_image(src / name)
            write_image(dest / f"{Path(name).stem}.png", img.expand(3, -1, -1) if img.shape[0] == 1 else img)
    return dest


def free_run_dir(base: Path) -> Path:
    if not base.exists():
        return base
    i = 2
    while (base.parent / f"{base.name}-{i}").exists():
        i += 1
    return base.parent / f"{base.name}-{i}"


def evaluate_vs_bicubic(loaded: Any, folder: Path, scale: int, manager: Any) -> list[dict[str, Any]]:
    """Per-image Y PSNR/SSIM (crop = scale) of the model and of bicubic, on 8-bit outputs."""
    from srcore.config import ComponentRef
    from srcore.data.color import quantize
    from srcore.data.datasets import make_eval_dataset
    from srcore.data.resize import imresize
    from srcore.engine.loop import build_metrics
    from srcore.infer import super_resolve

    refs = [ComponentRef(id=f"core:{m}", params={"y_channel": True}) for m in ("psnr", "ssim")]
    rows = []
    for item in make_eval_dataset(str(folder), scale=scale, root=None):
        lr, hr = item["lr"].unsqueeze(0), item["hr"].unsqueeze(0)
        outs = {"sr": quantize(super_resolve(loaded, lr)), "bicubic": quantize(imresize(lr, scale=scale).clamp(0, 1))}
        row: dict[str, Any] = {"name": item["name"], "size": f"{hr.shape[-1]}x{hr.shape[-2]}"}
        for key, out in outs.items():
            for label, metric in build_metrics(refs, manager.registries, out.device, scale):
                row[f"{key}_{label}"] = float(metric.update(out[..., : hr.shape[-2], : hr.shape[-1]], hr).mean())
        row["images"] = (outs["bicubic"][0], outs["sr"][0], hr[0])
        rows.append(row)
    return rows


def write_report(run_dir: Path, cfg: Any, rows: list[dict[str, Any]], seconds: float, scale: int, device: str) -> Path:
    import torch

    from srcore.engine.monitor import sample_grid

    grid = sample_grid([r["images"] for r in rows], run_dir / "samples" / "heldout.png", crop=160)
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("bicubic_psnr", "sr_psnr", "bicubic_ssim", "sr_ssim")}
    gain = mean["sr_psnr"] - mean["bicubic_psnr"]
    lines = [
        f"# srcore demo: {cfg.model.id} x{scale}",
        "",
        f"Recipe `{cfg.recipe}`, {sum(s.steps for s in cfg.stages)} steps on `{cfg.data.train.hr}` "
        f"in {seconds / 60:.1f} min on {device} ({torch.get_num_threads()} thread(s)).",
        "",
        "## Held-out photographs (never seen in training)",
        "",
        f"Y channel (BT.601, MATLAB), crop border = {scale}, outputs stored as 8-bit; LR made with MATLAB bicubic.",
        "",
        "| image | size | bicubic PSNR | model PSNR | gain (dB) | bicubic SSIM | model SSIM |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['name']} | {r['size']} | {r['bicubic_psnr']:.2f} | {r['sr_psnr']:.2f} | "
                     f"{r['sr_psnr'] - r['bicubic_psnr']:+.2f} | {r['bicubic_ssim']:.4f} | {r['sr_ssim']:.4f} |")
    lines += [
        f"| **mean** | | **{mean['bicubic_psnr']:.2f}** | **{mean['sr_psnr']:.2f}** | **{gain:+.2f}** | "
        f"{mean['bicubic_ssim']:.4f} | {mean['sr_ssim']:.4f} |",
        "",
        "## Pictures",
        "",
        f"Centre crops, bicubic | model | original: ![held-out crops](samples/{grid.name})",
        "",
        "Training loss and validation curves: ![curves](curves.png)",
        "",
        f"Inspect the run with `srcore runs show {run_dir}`; upscale your own photos with "
        f"`srcore upscale {run_dir} photo.png -o out/`.",
    ]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


@click.command(name="demo")
@click.option("--out-dir", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Folder the run folder goes into.")
@click.option("--name", default="demo", show_default=True, help="Run folder name (suffixed if it exists).")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a recipe value.")
@click.option("--device", default="cpu", show_default=True)
@click.option("--min-gain", type=float, default=0.3, show_default=True,
              help="Exit 1 unless the model beats bicubic by this many dB (mean Y PSNR).")
@click.option("--threads", type=int, default=1, show_default=True, help="torch intra-op threads.")
@click.option("--workers", type=int, default=1, show_default=True, help="Data loader worker processes.")
@handle_errors
def demo(out_dir: str, name: str, overrides: tuple[str, ...], device: str, min_gain: float, threads: int,
         workers: int) -> None:
    """Train a small x3 model for a few CPU minutes and compare it with bicubic."""
    import torch

    from srcore.cli.common import fail, get_manager
    from srcore.config import resolve_run_config
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.engine.loop import train

    # Small patches: one intra-op thread is faster than several (and far faster on a busy
    # machine); a data worker process decodes and degrades patches in parallel instead.
    torch.set_num_threads(threads)
    manager = get_manager()
    if RECIPE not in manager.registries.recipes:
        fail(f"the demo needs the recipe '{RECIPE}' from the srcnn plugin, which is not installed or failed to "
             "load (see `srcore plugins`; install it with `pip install -e plugins/srcnn`)")
    run_dir = free_run_dir(Path(out_dir) / name)
    heldout = heldout_folder(run_dir / "heldout_hr")
    base = [f"name={run_dir.name}", f"out_dir={run_dir.parent}", f"data.train.num_workers={workers}"]
    cfg = resolve_run_config(manager.registries, recipe=RECIPE, overrides=[*base, *overrides])
    if not cfg.val.sets:
        cfg = resolve_run_config(manager.registries, recipe=RECIPE,
                                 overrides=[*base, f"val.sets=[{heldout}]", *overrides])
    click.echo(f"training {cfg.model.id} ({RECIPE}) into {run_dir} ...")
    t0 = time.perf_counter()
    train(cfg, manager, run_dir=run_dir, device=device)
    seconds = time.perf_counter() - t0
    loaded = load_checkpoint(run_dir / "last", manager=manager)  # not `best`: no selection on held-out
    rows = evaluate_vs_bicubic(loaded, heldout, loaded.scale, manager)
    report = write_report(run_dir, cfg, rows, seconds, loaded.scale, device)
    gain = sum(r["sr_psnr"] - r["bicubic_psnr"] for r in rows) / len(rows)
    click.echo(f"held-out photographs: model beats bicubic by {gain:+.2f} dB (Y PSNR); report: {report}")
    if gain < min_gain:
        fail(f"the model beats bicubic by only {gain:+.2f} dB (< {min_gain} dB)", code=1)
