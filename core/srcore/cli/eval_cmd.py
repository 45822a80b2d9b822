"""``srcore eval``: measure a checkpoint, a folder of SR results, or the bicubic baseline.

Protocol defaults (stated in the output and the JSON): Y channel (BT.601 as MATLAB rgb2ycbcr),
``--y-convention matlab`` (8-bit RGB, integer Y), border crop = scale, LR = MATLAB bicubic of the
HR cropped to a multiple of the scale and stored as 8 bits, SR measured as an 8-bit image.

Speed: images are read, degraded, upsampled (bicubic/folder modes) and measured (PSNR, SSIM)
in ``--workers`` threads, in order; the numbers are those of a sequential run. Progress: a bar
per row with ETA on stderr when it is a terminal (``srcore.progress``), none otherwise or with
``--no-progress``; ``--progress`` forces it.

``--nproc N`` re-launches the command under torchrun (as ``srcore train --nproc``): rank r
measures the images i with i % N == r, rank 0 merges them in image order and alone prints and
writes the results, which are those of one process (``srcore.metrics.distributed``).
"""

from __future__ import annotations

import functools
import io
import os
import sys
from collections.abc import Callable, Iterable
from contextlib import nullcontext, redirect_stderr
from pathlib import Path
from typing import Any, TypeVar

import click

from srcore.atomic import write_atomic
from srcore.cli.common import error_message, get_manager, handle_errors, plugin_option
from srcore.errors import SrcoreError
from srcore.progress import progress_option

F = TypeVar("F", bound=Callable[..., Any])


def _csv_list(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _scales(value: str | None) -> list[int]:
    out = []
    for v in _csv_list(value):
        if not v.isdigit() or int(v) < 1:
            raise SrcoreError(f"--scale: '{v}' is not a positive integer (use e.g. --scale 2,3,4)")
        out.append(int(v))
    return out


def _progress(desc: str, total: int | None, enabled: bool | None) -> Any:
    from srcore.progress import bar

    def wrap(items: Iterable[Any]) -> Iterable[Any]:
        return bar(items, desc=desc, total=total, unit="img", enabled=enabled)

    return wrap


RANK_ERRORS = "SRCORE_RANK_ERRORS"  # folder where the ranks of ``_launch`` leave their one-line errors


def _errors_to_launcher(func: F) -> F:
    """In a rank of ``_launch``: a ``SrcoreError`` goes to the launcher, which says it once; an
    interrupt (the launcher stops its ranks) ends the rank quietly."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        folder = os.environ.get(RANK_ERRORS) if "RANK" in os.environ else None
        try:
            return func(*args, **kwargs)
        except SrcoreError as exc:
            if not folder:
                raise
            write_atomic(Path(folder) / f"rank{os.environ['RANK']}", error_message(exc), "rank error file")
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            if not folder:
                raise
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.command(name="eval")
@click.option("--checkpoint", "-c", type=click.Path(), help="(a) A checkpoint file, checkpoint folder or run folder.")
@click.option("--sr-dir", type=click.Path(), help="(b) Folder of SR results, matched to --hr-dir by file name.")
@click.option("--hr-dir", type=click.Path(), help="(b) Folder (or named set) of HR references.")
@click.option("--lr-dir", type=click.Path(),
              help="(a, c) The test set's own LR images for --hr-dir, paired by name (a/ax4/a_x4, a_HR/a_LR, "
              "a_SRF_4_HR/_LR), instead of --data degraded by --degradation.")
@click.option("--model", "-m", help="(c) 'bicubic' for the baseline; with --checkpoint, the model id to load into.")
@click.option("--param", "-p", "model_params", multiple=True, metavar="KEY=VALUE",
              help="(a) Model parameter for --model (repeatable), e.g. -p scale=4 -p face_size=null.")
@click.option("--data", "-d", "data", help="Named sets or folders, comma-separated (e.g. set5,set14).")
@click.option("--scale", "-s", "scale_text", help="Scale factor(s), comma-separated (e.g. 2,3,4).")
@click.option("--data-root", "data_root", multiple=True, type=click.Path(),
              help="Root of named sets, repeatable (searched in order) [env SRCORE_DATA_ROOT, else ../shared/data].")
@click.option("--metrics", "metric_text", default="psnr,ssim", show_default=True,
              help="Metric ids, comma-separated: psnr, ssim, ifc, lpips, fid, niqe (or plugin:name).")
@click.option("--metric-param", "metric_params", multiple=True, metavar="METRIC.KEY=VALUE",
              help="Option of one metric (repeatable), e.g. lpips.net=vgg or fid.weights=/path/inception.pth.")
@click.option("--crop-border", type=click.IntRange(min=0),
              help="Border pixels removed before measuring [default: the scale].")
@click.option("--rgb", "rgb", is_flag=True, help="Measure PSNR/SSIM on RGB instead of the Y channel.")
@click.option("--y-convention", type=click.Choice(["matlab", "float"]), default="matlab", show_default=True,
              help="matlab: Y of the 8-bit image rounded to integers (rgb2ycbcr); float: unrounded Y (BasicSR).")
@click.option("--degradation", default="core:bicubic", show_default=True, help="Degradation that makes the LR inputs.")
@click.option("--no-quantize", is_flag=True, help="Measure float SR outputs instead of 8-bit images.")
@click.option("--per-image", is_flag=True, help="Show per-image rows in the table.")
@click.option("--strict-metrics", is_flag=True,
              help="Fail (exit 2) when a metric's pretrained weights are missing; by default the metric is "
              "left out with a note naming the file, and the other metrics are reported.")
@click.option("--json", "json_path", type=click.Path(), help="Write results (per-image too) as JSON.")
@click.option("--csv", "csv_path", type=click.Path(), help="Write results (with per-image rows) as CSV.")
@click.option("--device", default="cpu", show_default=True, help="Device for the model and the metrics.")
@click.option("--tile", type=click.IntRange(min=8), help="(a) Tile size for large images.")
@click.option("--self-ensemble", is_flag=True, help="(a) x8 self-ensemble.")
@click.option("--with-bicubic", is_flag=True, help="(a) Add bicubic rows measured on the same LR inputs.")
@click.option("--with-self-ensemble", is_flag=True,
              help="(a) Add x8 self-ensemble rows beside the plain model (e.g. SRResCGAN and SRResCGAN+).")
@click.option("--cond", "--t", "cond_text",
              help="(a) Condition value(s) for conditional models, comma-separated (FxSR t: 0,0.5,1 gives one "
              "row per value, the perception-distortion table).")
@click.option("--workers", type=click.IntRange(min=1),
              help="Threads that read, resize and measure images [default: CPU cores, at most 4, shared by "
              "the --nproc processes].")
@click.option("--nproc", type=int, default=1, show_default=True,
              help="Processes (through torchrun: gloo on CPU, NCCL and one GPU each with --device cuda); each "
              "measures every N-th image and rank 0 reports the numbers one process gives.")
@progress_option
@plugin_option
@handle_errors
@_errors_to_launcher
def eval_cmd(
    checkpoint: str | None, sr_dir: str | None, hr_dir: str | None, lr_dir: str | None, model: str | None,
    model_params: tuple[str, ...], data: str | None, scale_text: str | None, data_root: tuple[str, ...],
    metric_text: str, crop_border: int | None, rgb: bool,
    y_convention: str, degradation: str, no_quantize: bool, per_image: bool, strict_metrics: bool,
    metric_params: tuple[str, ...], json_path: str | None,
    csv_path: str | None, device: str, tile: int | None, self_ensemble: bool, with_bicubic: bool,
    with_self_ensemble: bool, cond_text: str | None, workers: int | None, nproc: int, progress: bool | None,
    plugins: tuple[str, ...],
) -> None:
    """Evaluate (a) --checkpoint on --data at --scale, (b) --sr-dir against --hr-dir, or
    (c) --model bicubic on --data at --scale.

    \b
    Examples:
      srcore eval --model bicubic --data set5 --scale 2,3,4 --metrics psnr,ssim,ifc --json out.json
      srcore eval --checkpoint runs/vdsr/last --data set5,set14 --scale 2
      srcore eval --sr-dir results/Set5 --hr-dir set5 --scale 4 --per-image
      srcore eval --checkpoint fsrcnn_x3.pth --hr-dir test_HR --lr-dir test_LR --scale 3
      srcore eval --model bicubic --data set14 --scale 4 --metrics psnr,fid --nproc 2
    """
    from srcore.atomic import check_writable
    from srcore.data.sets import default_data_root
    from srcore.engine import dist as D
    from srcore.metrics import distributed as dist_eval
    from srcore.metrics import evaluate as ev

    under_torchrun = D.enter_rank()
    if nproc < 1:
        raise SrcoreError(f"--nproc {nproc}: give 1 or more processes")

    mode = _mode(checkpoint, sr_dir, hr_dir, model, lr_dir)
    if lr_dir:
        if data:
            raise SrcoreError("--lr-dir pairs with --hr-dir; drop --data")
        data = _PAIRED
    for option, path in (("--json", json_path), ("--csv", csv_path)):
        if path:
            check_writable(path, option)
    dev = D.device_for(device)
    if nproc > 1 and not under_torchrun:
        _check_devices(device, dev, nproc)
    scales = _scales(scale_text)
    root = list(data_root) if data_root else default_data_root()
    metric_names = _csv_list(metric_text)
    if not metric_names:
        raise SrcoreError("--metrics: give at least one metric (e.g. psnr,ssim)")
    if mode in ("checkpoint", "bicubic"):
        if not data:
            raise SrcoreError("--data is required with --checkpoint and --model bicubic (e.g. --data set5)")
        if not scales and mode == "bicubic":
            raise SrcoreError("--scale is required with --model bicubic (e.g. --scale 4)")
    elif data:
        raise SrcoreError("--data is not used with --sr-dir/--hr-dir")
    if mode == "folder" and not scales and crop_border is None:
        raise SrcoreError("with --sr-dir give --scale (the border crop defaults to it) or --crop-border")
    if mode == "folder" and len(scales) > 1:
        raise SrcoreError("--sr-dir holds results at one scale; give a single --scale")

    conds = _conds(cond_text)
    manager = get_manager(plugins)
    registries = manager.registries
    extra = _metric_params(metric_params, metric_names, registries)
    loaded = None
    if mode == "checkpoint":
        loaded = _load(checkpoint, model, manager, scales, model_params)
        scales = scales or [loaded.scale]
        bad = [s for s in scales if s not in _scales_of(loaded)]
        if bad:
            raise SrcoreError(
                f"the checkpoint's model works at x{loaded.scale}; --scale {scale_text} does not match"
            )
        if conds != [None] and not loaded.info.condition:
            raise SrcoreError(f"--cond: {loaded.component.id} takes no condition map")
    elif conds != [None]:
        raise SrcoreError("--cond applies to --checkpoint of a conditional model")
    if nproc > 1 and not under_torchrun:
        sizes = [total for scale in scales or [None]
                 for _, _, _, total in _sources(mode, data, scale, root, sr_dir, hr_dir, lr_dir, registries,
                                                degradation, None, tile, [(False, "")], None, dev, checked=True)]
        nproc = _launch_count(nproc, max(sizes))
        if nproc > 1:
            _launch(nproc)
            return
    if loaded is not None:
        loaded.module.to(dev)
    dinfo = D.init(dev, default_timeout=EVAL_TIMEOUT)  # a torchrun rank joins its group; DistInfo() alone
    try:
        results = []
        spec_list = []
        unavailable: dict[str, str] = {}
        sets: dict[tuple[str, int | None], Any] = {}  # one (cached) dataset per set and scale
        n_rows, row = _row_count(mode, data, scales, conds, with_self_ensemble and not self_ensemble, with_bicubic), 0
        if dinfo.enabled and workers is None:  # the ranks on a node share its cores
            workers = max(1, ev.default_workers() // int(os.environ.get("LOCAL_WORLD_SIZE", dinfo.world_size)))
        for scale in scales or [None]:
            crop = crop_border if crop_border is not None else (scale or 0)
            with nullcontext() if dinfo.is_main else redirect_stderr(io.StringIO()):
                specs = ev.build_metrics(metric_names, registries, crop_border=crop, y_channel=not rgb,
                                         y_convention=y_convention, extra=extra, skip_unavailable=not strict_metrics,
                                         unavailable=unavailable)  # rank 0 alone says what it leaves out
            if dinfo.enabled:
                dist_eval.check_distributable(specs)
            spec_list = specs
            at_scale = _at_scale(loaded, scale)
            for cond in conds:
                variants = [(self_ensemble, "")]
                if with_self_ensemble and not self_ensemble:
                    variants.append((True, " +x8"))
                for name, kind, pairs, total in _sources(mode, data, scale, root, sr_dir, hr_dir, lr_dir,
                                                          registries, degradation, at_scale, tile, variants, cond,
                                                          dev, with_bicubic, sets, dinfo):
                    label = "bicubic" if kind == "bicubic" else _model_label(mode, checkpoint, at_scale) + kind
                    label += f" t={cond:g}" if cond is not None and kind != "bicubic" else ""
                    row += 1
                    desc = f"[{row}/{n_rows}] {label} {name}" + (f" x{scale}" if scale else "")
                    kwargs = {"quantize": not no_quantize, "device": dev, "workers": workers}
                    if not dinfo.enabled:
                        results.append(ev.evaluate(pairs, specs, model=label, set_name=name, scale=scale,
                                                   progress=_progress(desc, total, progress), **kwargs))
                        continue
                    shown = _progress(f"{desc} (rank 0 of {dinfo.world_size})", total,
                                      progress if dinfo.is_main else False)  # the bar of rank 0's share
                    merged = dist_eval.evaluate_sharded(pairs, total, specs, model=label, set_name=name, scale=scale,
                                                        progress=shown, **kwargs)
                    if merged is not None:
                        results.append(merged)
    finally:
        D.shutdown()
    if not dinfo.is_main:
        return
    protocol = {
        "channel": "rgb" if rgb else "y", "y_convention": y_convention,
        "crop_border": crop_border if crop_border is not None else "scale",
        "lr": "paired folder" if mode == "folder" else f"the set's own LR ({lr_dir})" if lr_dir else
        f"{degradation} of the HR cropped to a multiple of the scale",
        "sr_quantized_8bit": not no_quantize, "metrics": metric_names, "unavailable_metrics": unavailable,
    }
    click.echo(ev.format_table(results, spec_list, per_image=per_image))
    crop_txt = crop_border if crop_border is not None else "scale"
    click.echo(f"\n(channel: {'RGB' if rgb else 'Y'}, y-convention: {y_convention}, crop border: {crop_txt})")
    for metric_id, reason in unavailable.items():
        click.echo(f"not measured: {metric_id}: {reason}")
    if json_path:
        ev.write_json(Path(json_path), results, protocol, what="--json")
        click.echo(f"wrote {json_path}")
    if csv_path:
        ev.write_csv(Path(csv_path), results, spec_list, per_image=True, what="--csv")
        click.echo(f"wrote {csv_path}")


EVAL_TIMEOUT = 3600.0  # seconds a rank may wait at the gather for the others [env SRCORE_DIST_TIMEOUT]


def _check_devices(requested: str, dev: Any, nproc: int) -> None:
    """--nproc on CUDA: one GPU per rank (cuda:LOCAL_RANK), so no fixed index and enough GPUs."""
    if dev.type != "cuda":
        return
    import torch

    if ":" in requested:
        raise SrcoreError(f"--device {requested} with --nproc {nproc}: each process takes its own GPU "
                          "(cuda:LOCAL_RANK); give --device cuda")
    if nproc > torch.cuda.device_count():
        raise SrcoreError(f"--nproc {nproc} with --device {requested}: this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s), one per process")


def _launch_count(nproc: int, images: int) -> int:
    """No more processes than the largest set has images (the others would measure nothing)."""
    if nproc > images:
        click.echo(f"note: --nproc {nproc}: the largest set has {images} image(s); running {images} "
                   f"process(es)", err=True)
    return min(nproc, images)


def _launch(nproc: int) -> None:
    """Run this command on ``nproc`` ranks: the torchrun launch of ``srcore train --nproc``, with
    this process as the torchrun agent, so that a rank's error ends the run as one line and exit 2
    (not torchrun's failure report) and no second interpreter starts. The ranks die with this
    process (``srcore.engine.dist.die_with_parent``), even when it is killed with -9."""
    import logging
    import tempfile

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from srcore.cli.train_cmd import torchrun_command

    argv = sys.argv[sys.argv.index("eval") + 1:] if "eval" in sys.argv else []
    args = torchrun_command(nproc, argv, command="eval")[3:]  # without "python -m torch.distributed.run"
    # each rank its share of the cores (torchrun would set 1 thread, with a warning)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    click.echo(f"launching {nproc} processes: torchrun {' '.join(args)}", err=True)
    for name in list(logging.root.manager.loggerDict):  # the agent's log lines: the failure is said below
        if name.startswith("torch.distributed.elastic"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="srcore-eval-") as errors:
        os.environ[RANK_ERRORS] = errors
        try:
            run(parse_args(args))
        except SignalException:
            raise KeyboardInterrupt from None  # the agent has stopped the ranks
        except ChildFailedError as exc:
            first, failure = exc.get_first_failure()
            said = {r: Path(errors, f"rank{r}") for r in sorted(exc.failures) if Path(errors, f"rank{r}").is_file()}
            if said:
                raise SrcoreError(said.get(first, next(iter(said.values()))).read_text()) from None
            raise SrcoreError(f"--nproc: rank {first} ended with exit code {failure.exitcode} "
                              "(its output is above)") from None



def _row_count(
    mode: str, data: str | None, scales: list[int], conds: list[float | None], extra_ensemble: bool, with_bicubic: bool
) -> int:
    """How many result rows the loops below make (the progress bars say "[row/rows]")."""
    if mode == "folder":
        return 1
    per_set = 1 if mode == "bicubic" else len(conds) * (1 + int(extra_ensemble) + int(with_bicubic))
    return max(1, len(scales)) * len(_csv_list(data)) * per_set


_PAIRED = "<--hr-dir/--lr-dir>"  # stands for the paired set in --data's list


def _mode(checkpoint: str | None, sr_dir: str | None, hr_dir: str | None, model: str | None,
          lr_dir: str | None = None) -> str:
    chosen = [n for n, v in (("--checkpoint", checkpoint), ("--sr-dir", sr_dir)) if v]
    if lr_dir and (sr_dir or not hr_dir):
        raise SrcoreError("--lr-dir goes with --hr-dir (the test set's HR and LR) and --checkpoint or --model bicubic")
    if model and model.lower() == "bicubic" and not checkpoint:
        chosen.append("--model bicubic")
    if len(chosen) > 1:
        raise SrcoreError(f"choose one of --checkpoint, --sr-dir/--hr-dir, --model bicubic (got {', '.join(chosen)})")
    if checkpoint:
        return "checkpoint"
    if sr_dir or (hr_dir and not lr_dir):
        if not (sr_dir and hr_dir):
            raise SrcoreError("--sr-dir and --hr-dir go together")
        return "folder"
    if model and model.lower() == "bicubic":
        return "bicubic"
    if model:
        raise SrcoreError(f"--model {model} needs --checkpoint (only 'bicubic' runs without weights)")
    raise SrcoreError("nothing to evaluate: give --checkpoint, --sr-dir with --hr-dir, or --model bicubic")


def _metric_params(items: tuple[str, ...], metric_names: list[str], registries: Any) -> dict[str, dict[str, Any]]:
    """``--metric-param lpips.net=vgg`` -> ``{"lpips": {"net": "vgg"}}`` (keyed by metric name),
    only for metrics that --metrics lists, so a typo in the metric part is not ignored."""
    from srcore.cli.upscale_cmd import parse_params

    chosen = {registries.metrics.get(n).id: registries.metrics.get(n).name for n in metric_names}
    out: dict[str, dict[str, Any]] = {}
    for ref, value in parse_params(items).items():
        metric, dot, key = ref.rpartition(".")
        if not dot or not metric or not key:
            raise SrcoreError(f"--metric-param {ref!r}: expected METRIC.KEY=VALUE (e.g. lpips.net=vgg)")
        cid = registries.metrics.get(metric).id
        if cid not in chosen:
            raise SrcoreError(f"--metric-param {ref}: metric {cid} is not in --metrics ({', '.join(metric_names)})")
        out.setdefault(chosen[cid], {})[key] = value
    return out


def _conds(text: str | None) -> list[float | None]:
    if not text:
        return [None]
    try:
        return [float(v) for v in _csv_list(text)]
    except ValueError:
        raise SrcoreError(f"--cond: '{text}' is not a comma-separated list of numbers (e.g. 0,0.5,1)") from None


def _scales_of(loaded: Any) -> tuple[int, ...]:
    """Scales a loaded model serves: its own, or every declared scale for pre-upsampled models,
    whose weights do not depend on the scale (VDSR's one model for x2/x3/x4)."""
    return tuple(loaded.info.scales) if loaded.info.pre_upsampled else (loaded.scale,)


def _at_scale(loaded: Any, scale: int | None) -> Any:
    if loaded is None or scale is None or scale == loaded.scale:
        return loaded
    import dataclasses

    return dataclasses.replace(loaded, params={**loaded.params, "scale": scale})


def _load(checkpoint: str | None, model: str | None, manager: Any, scales: list[int],
          model_params: tuple[str, ...] = ()) -> Any:
    """Load lazily through the engine; with --model and one --scale, build the model at that scale."""
    from srcore.cli.upscale_cmd import parse_params

    try:
        from srcore.engine.checkpoint import load_checkpoint
    except ImportError as exc:  # the engine is a separate part of the core
        raise SrcoreError(f"checkpoint evaluation needs srcore.engine.checkpoint: {exc}") from None
    params = parse_params(model_params) if model_params else {}
    if params and not model:
        raise SrcoreError("-p/--param sets parameters of --model; give --model ID too")
    if model and len(scales) == 1:
        fields = manager.registries.models.get(model).config_cls.model_fields
        if "scale" in fields:
            params.setdefault("scale", scales[0])
    return load_checkpoint(checkpoint, model=model, params=params or None, manager=manager)


def _model_label(mode: str, checkpoint: str | None, loaded: Any) -> str:
    if mode == "bicubic":
        return "bicubic"
    if mode == "folder":
        return "sr-dir"
    return loaded.component.id if loaded is not None else str(checkpoint)


def _sources(
    mode: str, data: str | None, scale: int | None, root: Any, sr_dir: str | None, hr_dir: str | None,
    lr_dir: str | None, registries: Any, degradation: str, loaded: Any, tile: int | None,
    variants: list[tuple[bool, str]], cond: float | None, device: Any, with_bicubic: bool = False,
    sets: dict[Any, Any] | None = None, dinfo: Any = None, checked: bool = False,
) -> Iterable[tuple[str, str, Any, int]]:
    """(set name, row kind, (name, SR, HR) pairs, count): kind is '' for the model or for the
    mode's only source, ' +x8' for the self-ensemble row, 'bicubic' for the baseline rows.
    ``sets`` keeps one dataset per (set, scale) across calls; in checkpoint mode it caches its
    items (``CachedSet``), since several rows read the same LR. With ``dinfo`` of a distributed
    run, the pairs and the count are this rank's share. ``checked``: match the folder's images
    now (the launcher checks before it starts the ranks)."""
    from srcore.data.datasets import hr_files_of, make_eval_dataset
    from srcore.data.sets import resolve_set, set_display_name
    from srcore.engine import dist as D
    from srcore.metrics import evaluate as ev
    from srcore.metrics.distributed import ShardedSet

    rank, world = (dinfo.rank, dinfo.world_size) if dinfo is not None else (0, 1)

    if mode == "folder":
        assert sr_dir and hr_dir
        if not Path(sr_dir).is_dir():
            raise SrcoreError(f"--sr-dir {sr_dir} is not a folder")
        if not resolve_set(hr_dir, root).is_dir():
            raise SrcoreError(f"--hr-dir {hr_dir} is not a folder (give the folder of HR images, or a named set)")
        files = hr_files_of(hr_dir, root)
        jobs: Iterable[Any] = ev.folder_jobs(Path(sr_dir), files, scale)
        jobs = list(jobs) if checked else jobs
        if world > 1:
            jobs = (job for _, job in D.shard(jobs, rank, world))
        yield set_display_name(resolve_set(hr_dir, root)), "", jobs, len(D.shard_indices(len(files), rank, world))
        return
    assert scale is not None
    deg = ev.ExactInput(_degradation(degradation, scale, registries))
    sets = {} if sets is None else sets
    for spec in _csv_list(data):
        ds = sets.get((spec, scale))
        if ds is None:
            source = {"hr": hr_dir, "lr": lr_dir} if spec == _PAIRED else spec
            ds = make_eval_dataset(source, scale=scale, root=root, degradation=deg)
            ds = sets[(spec, scale)] = ev.CachedSet(ds) if mode == "checkpoint" else ds
        share = ShardedSet(ds, rank, world) if world > 1 else ds
        if mode == "bicubic" or with_bicubic:
            yield ds.name, "bicubic" if mode != "bicubic" else "", ev.bicubic_jobs(share), len(share)
        if mode == "bicubic":
            continue
        for ensemble, kind in variants:
            pairs = ev.model_pairs(share, loaded, tile=tile, self_ensemble=ensemble, cond=cond, device=device)
            yield ds.name, kind, pairs, len(share)


def _degradation(ref: str, scale: int, registries: Any) -> Any:
    from srcore.config import ComponentRef
    from srcore.data.datasets import build_degradation

    return build_degradation(ComponentRef(id=ref), scale, registries)
