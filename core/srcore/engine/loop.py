"""The training loop: every method configures it (model, losses, step), none forks it.

Read top to bottom: set up (device, distributed, seeds, generator, data), then for each stage
build its step and optimizers and run ``stage.steps`` optimizer steps of ``accumulate``
micro-batches each, logging, validating and checkpointing on the way. The generator (and any
network kept in ``extra_networks``, such as a discriminator) carries over between stages.

Determinism: every RNG in play (global torch, numpy, random, ``ctx.rng``) is reseeded from
(seed, rank, step) at each optimizer step and every data item from (seed, epoch, position), so a
resumed run is bit-identical to an uninterrupted one on CPU; the states are saved as well.
"""

from __future__ import annotations

import functools
import json
import math
import random
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from srcore.atomic import write_atomic
from srcore.config import RunConfig, config_to_dict
from srcore.engine import checkpoint as C
from srcore.engine import dist as D
from srcore.engine.api import StepSetup
from srcore.engine.context import EMA, Context
from srcore.engine.monitor import DivergenceWatch, Monitor, plot_curves, sample_grid, to_floats, truncate_log
from srcore.engine.preflight import PreflightError, one_line, preflight
from srcore.engine.resume import apply_learning_rates, check_resume_config
from srcore.engine.runfolder import RunLock, clean_stale_temp
from srcore.engine.sampling import make_loader, mix_seed
from srcore.engine.validate import find_label, higher_is_better, validate
from srcore.errors import SrcoreError
from srcore.metrics.weights import MissingWeightsError


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    best: dict[str, Any] | None = None


@functools.cache
def _cuda_present() -> bool:
    return torch.cuda.is_available()


def seed_all(seed: int) -> None:
    """Seed torch (CPU, and every GPU when there is one), numpy and ``random``.

    Called at every optimizer step, so it avoids ``torch.manual_seed``: on a machine without an
    initialised CUDA context that queues a lazy CUDA seeding call with a captured stack trace
    each time (about 0.7 ms, the largest part of the engine's per-step overhead on small models).
    """
    torch.default_generator.manual_seed(seed)
    if _cuda_present():
        torch.cuda.manual_seed_all(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@functools.cache
def keep_freed_host_memory() -> bool:
    """Have glibc's malloc keep freed memory for the next step instead of handing it back to the OS.

    PyTorch's CPU tensors come from plain malloc. By default glibc unmaps large blocks on free and
    trims the heap, so each training step faults its activations and gradients back in page by
    page: 1500-2500 page faults per step for ``core:tiny`` at batch 16, a fifth to a quarter of
    its CPU time, moving by hundreds with the order of allocations (the engine holds the SR
    output through the backward; a bare loop frees it in the backward): the larger part of the
    engine's measured overhead over a bare loop (``benchmarks/bench_engine_step.py``) and of its
    noise. Now a step's memory is reused by the next one, as CUDA's caching allocator does; the
    process keeps its peak. Left alone off glibc, or when ``MALLOC_*_``/``GLIBC_TUNABLES`` tune
    malloc already. Returns whether it applied.
    """
    import ctypes
    import os
    import platform

    if platform.libc_ver()[0] != "glibc" or "GLIBC_TUNABLES" in os.environ or any(
            k.startswith("MALLOC_") and k.endswith("_") for k in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 1 << 30)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def model_scale(params: Any, info: Any) -> int:
    return int(getattr(params, "scale", None) or info.scales[0])


def train(
    cfg: RunConfig,
    manager: Any,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    device: str | None = None,
    dataset: Any = None,
    eval_sets: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``cfg`` (see module doc). ``dataset``/``eval_sets`` replace the configured data.

    Rank 0 holds the run folder's lock for the whole run; a full disk anywhere in the run ends it
    with one line naming the folder.
    """
    dev = D.device_for(device or cfg.train.device)
    dinfo = D.init(dev)
    run_dir = Path(run_dir) if run_dir is not None else cfg.run_dir
    with RunLock(run_dir, enabled=dinfo.is_main):
        try:
            return _train(cfg, manager, run_dir, resume, dev, dinfo, dataset, eval_sets, progress)
        except OSError as exc:
            from srcore.outputs import is_disk_full

            if not is_disk_full(exc):
                raise
            raise SrcoreError(f"no space left on device while writing to {run_dir} ({exc.filename or 'a log'}); "
                              "the last complete checkpoint is intact: free space, then --resume") from None


@dataclass
class RunParts:
    """What a run is made of before its first step; ``problems`` lists what could not be built."""

    component: Any
    params: Any
    scale: int
    generator: nn.Module
    data: Any
    val_sets: dict[str, Any]
    metrics: list[tuple[str, Any]]
    conditions: list[float | None]
    problems: list[str]
    notes: list[str] = field(default_factory=list)


def build_run(cfg: RunConfig, manager: Any, dev: torch.device, dataset: Any = None,
              eval_sets: Mapping[str, Any] | None = None, pretrained: bool = True) -> RunParts:
    """The generator (from ``model.pretrained`` unless ``pretrained`` is off: a resume), datasets and
    metrics of ``cfg``; a generator that cannot be built stops here, other problems are collected."""
    regs = manager.registries
    comp = regs.models.get(cfg.model.id)
    mparams = comp.parse_config(cfg.model.params, where="model.params")
    assert comp.info is not None
    scale = model_scale(mparams, comp.info)
    declared = getattr(mparams, "scale", None)
    if declared is not None and int(declared) not in comp.info.scales:
        raise PreflightError([f"model.params.scale={declared}: {comp.id} supports scale(s) "
                              f"{', '.join(map(str, comp.info.scales))}"])
    try:
        generator: nn.Module = comp.builder(mparams).to(dev)  # type: ignore[misc]
    except Exception as exc:  # a builder's refusal of its parameters is a config problem
        raise PreflightError([f"model ({comp.id}, model.params={mparams.model_dump(mode='json')}): "
                              f"cannot build: {one_line(exc)}"]) from None
    if cfg.train.channels_last and dev.type == "cuda":
        generator = generator.to(memory_format=torch.channels_last)
    problems: list[str] = []
    notes: list[str] = []
    if cfg.train.wandb is not None:
        from srcore.engine.wandb_log import require_wandb

        _collect(problems, "train.wandb", require_wandb)
    if pretrained and cfg.model.pretrained is not None:
        from srcore.engine.finetune import load_pretrained

        _collect(problems, "model.pretrained", lambda: notes.append(load_pretrained(generator, cfg.model, "model",
                                                                                    manager)))
    data = _collect(problems, "data.train", lambda: dataset if dataset is not None else
                    _train_dataset(cfg, scale, comp.info, regs))
    val_sets = _collect(problems, "val.sets", lambda: dict(eval_sets) if eval_sets is not None else
                        _eval_sets(cfg, scale)) or {}
    metrics = build_metrics(cfg.val.metrics, regs, dev, scale)
    conditions: list[float | None] = list(cfg.val.condition) if comp.info.condition else [None]
    if comp.info.condition and not conditions:
        conditions = [0.0]
    return RunParts(comp, mparams, scale, generator, data, val_sets, metrics, conditions, problems, notes)


def check_run(cfg: RunConfig, manager: Any, parts: RunParts, dev: torch.device, dinfo: D.DistInfo) -> Any:
    """The preflight of ``parts``: its report, or ``PreflightError`` listing every problem."""
    report = preflight(cfg, manager.registries, parts.generator, parts.component.info, parts.scale, parts.data,
                       parts.val_sets, parts.metrics, parts.conditions, dev, dinfo, parts.problems)
    if report.problems:
        raise PreflightError(report.problems)
    return report


def _resume_point(run_dir: Path, resume: bool, cfg: RunConfig, dinfo: D.DistInfo) -> tuple[
        Path | None, dict[str, Any] | None, dict[str, Any] | None]:
    """(checkpoint, training state, the config it was trained with), after every check a resume needs."""
    main = dinfo.is_main
    if main:
        clean_stale_temp(run_dir)
    if not resume:
        if C.list_checkpoints(run_dir):
            raise SrcoreError(f"run folder {run_dir} already has checkpoints: pass --resume, "
                              "or choose --name/--run-dir")
        return None, None, None
    found = C.latest_resumable(run_dir, warn=main)
    if found is None:
        raise SrcoreError(f"--resume: no complete checkpoint in {run_dir / C.CKPT_DIR}")
    ckpt, state = found
    saved = json.loads((ckpt / "meta.json").read_text()).get("config") or {}
    applied = check_resume_config(saved, config_to_dict(cfg), ckpt) if saved else []
    if main:
        print(f"resumed from step {state['global_step']} (checkpoint {ckpt})", file=sys.stderr)
        for change in applied:
            print(f"note: resume applies the changed setting {change}", file=sys.stderr)
        old_world = int(state.get("world_size", 1))
        if old_world != dinfo.world_size:
            b = cfg.data.train.batch_size
            print(f"note: the checkpoint was written by {old_world} process(es), this run has {dinfo.world_size}: "
                  f"the global batch changes from {b * old_world} to {b * dinfo.world_size} samples per step, an "
                  f"epoch takes {old_world}/{dinfo.world_size} as many steps, and the run is no longer "
                  "bit-identical to an uninterrupted one", file=sys.stderr)
    return ckpt, state, saved


def _train(cfg: RunConfig, manager: Any, run_dir: Path, resume: bool, dev: torch.device, dinfo: D.DistInfo,
           dataset: Any, eval_sets: Mapping[str, Any] | None, progress: bool) -> TrainResult:
    # -- setup ---------------------------------------------------------------------------------
    main = dinfo.is_main
    cuda_only = [k for k, on in (("amp", cfg.train.amp != "off"), ("compile", cfg.train.compile),
                                 ("channels_last", cfg.train.channels_last)) if on]
    if cuda_only and dev.type != "cuda" and main:
        print(f"note: train.{', train.'.join(cuda_only)} apply on CUDA only; running in float32 eager on {dev}")
    keep_freed_host_memory()
    regs = manager.registries
    seed = cfg.train.seed
    ckpt, state, saved_cfg = _resume_point(run_dir, resume, cfg, dinfo)
    seed_all(seed)

    parts = build_run(cfg, manager, dev, dataset, eval_sets, pretrained=ckpt is None)
    for note in parts.notes if main else ():
        print(f"note: {note}", file=sys.stderr)
    if cfg.train.preflight:
        report = check_run(cfg, manager, parts, dev, dinfo)
        if main:
            print(report.summary(), file=sys.stderr)
    elif parts.problems:
        raise PreflightError(parts.problems)
    comp, mparams, scale, generator = parts.component, parts.params, parts.scale, parts.generator
    data, val_sets, metrics, conditions = parts.data, parts.val_sets, parts.metrics, parts.conditions

    micro = int(state["micro_batches"]) if state else 0
    batches = iter(make_loader(data, cfg.data.train.batch_size, seed, dinfo.rank, dinfo.world_size, micro,
                               cfg.data.train.num_workers))
    global_step = int(state["global_step"]) if state else 0
    start_stage = int(state["stage"]) if state else 0
    best: dict[str, Any] | None = state.get("best") if state else None
    last_metrics: dict[str, float] = {}
    if main:
        write_atomic(run_dir / "config.json", json.dumps(config_to_dict(cfg), indent=2), "run configuration")
        if resume or D.elastic_restart():  # a restart that starts over drops the failed attempt's rows too
            truncate_log(run_dir, global_step)
    monitor = Monitor(run_dir, cfg.train.tensorboard, enabled=main, wandb=cfg.train.wandb, config=config_to_dict(cfg))
    total_steps = sum(s.steps for s in cfg.stages)
    bar = _progress(total_steps, global_step, enabled=main and progress)
    watch = DivergenceWatch()
    extra: dict[str, nn.Module] = {}
    ema: EMA | None = None
    rng = torch.Generator()
    pending = ckpt  # weights still to load into the first stage that runs

    # -- stages --------------------------------------------------------------------------------
    for si, stage in enumerate(cfg.stages):
        if si < start_stage or (state and si == start_stage and state["stage_step"] >= stage.steps):
            continue
        step_comp = regs.steps.get(stage.step)
        setup = StepSetup(cfg, stage, step_comp.parse_config(stage.step_params, where=f"stages.{si}.step_params"),
                          generator, regs, dev, extra, distributed=dinfo.enabled,
                          load_pretrained=not (state and si == start_stage))
        tstep = step_comp.builder(setup)  # type: ignore[misc]
        for note in setup.notes if main else ():
            print(f"note: {note}", file=sys.stderr)
        if dinfo.enabled:
            D.check_wrapped(f"stages.{si} (step {stage.step})", tstep.optimizers, setup.wrapped)
        if stage.ema_decay is None:
            ema = None  # an average of earlier stages' weights says nothing about this stage's
        elif ema is None:
            ema = EMA(generator, stage.ema_decay)
        else:
            ema.decay = stage.ema_decay
        ctx = Context(stage, dev, cfg.train.amp, rng, generator, ema)
        schedules = {"generator": stage.schedule, "discriminator": stage.schedule_d}
        ctx.register_optimizers(dict(tstep.optimizers), schedules)
        networks = _networks(tstep, extra)
        stage_step = 0
        if pending is not None:
            _load_networks(pending, networks, ema)
            if state and si == start_stage:
                ctx.load_state_dict(state["context"])
                if saved_cfg and si < len(saved_cfg.get("stages", [])):
                    apply_learning_rates(ctx, saved_cfg["stages"][si], stage)
                stage_step = int(state["stage_step"])
                _set_rng(state["rng"])
            pending = None
        else:
            _broadcast(networks)
        if cfg.train.compile and dev.type == "cuda":
            generator.compile()
        for net in networks.values():
            net.train()
        if stage_step == 0:  # a stage's best is its own: a GAN stage is not judged against the PSNR stage
            best = None
            watch.reset()

        t_last, steps_since = time.perf_counter(), 0
        while stage_step < stage.steps:
            _reseed(rng, seed, dinfo.rank, global_step)
            ctx.global_step, ctx.stage_step = global_step, stage_step
            logs: Mapping[str, Any] = {}
            for m in range(stage.accumulate):
                raw = next(batches)
                batch = {k: v.to(dev, non_blocking=True) for k, v in raw.items() if isinstance(v, torch.Tensor)}
                micro += 1
                ctx.micro = m
                with D.no_sync(setup.wrapped, skip=m < stage.accumulate - 1):  # DDP reduces at the last one
                    logs = tstep(batch, ctx)
            ctx.end_step()
            stage_step += 1
            global_step += 1
            steps_since += 1
            bar.update(1)
            end_of_stage = stage_step == stage.steps
            log_due = global_step % cfg.train.log_every == 0 or end_of_stage or stage_step == 1  # 1: divergence ref
            val_due = bool(val_sets) and (global_step % cfg.val.every == 0 or end_of_stage)
            save_due = global_step % cfg.train.save_every == 0 or end_of_stage
            if log_due or val_due or save_due:  # the losses' NaN check waits for the device: only here
                ctx.raise_if_nonfinite()

            if log_due:
                now = time.perf_counter()
                values = to_floats(logs)
                values.update(ctx.lrs())
                values["it_per_s"] = steps_since / max(now - t_last, 1e-9)
                t_last, steps_since = now, 0
                monitor.log(global_step, "train", values)
                for warning in watch.check(values, global_step, stage.name, f"stages.{si}"):
                    monitor.warn(global_step, warning)
                    if main:
                        bar.write(warning, file=sys.stderr)
                bar.set_postfix({k[5:]: f"{v:.4g}" for k, v in values.items() if k.startswith("loss/")})

            improved = False
            if val_due:
                last_metrics, rows = _validate(tstep, ema, comp.info, scale, val_sets, metrics, conditions, dinfo, dev,
                                               cfg, main)
                for net in networks.values():
                    net.train()
                monitor.log(global_step, "val", last_metrics)
                best, improved = _track_best(best, last_metrics, cfg.val.best_metric, metrics, global_step)
                if main:
                    if rows:
                        grid = sample_grid(rows, run_dir / "samples" / f"step_{global_step:07d}.png")
                        monitor.image(global_step, "samples", grid)
                    plot_curves(run_dir)
                    bar.write(f"step {global_step}: " + ", ".join(f"{k} {v:.4f}" for k, v in last_metrics.items()))

            if save_due or improved:
                if main:
                    train_state = {
                        "global_step": global_step, "stage": si, "stage_step": stage_step, "micro_batches": micro,
                        "context": ctx.state_dict(), "rng": _get_rng(), "best": best,
                        "world_size": dinfo.world_size,
                    }
                    meta = _meta(cfg, manager, comp.id, global_step, si, stage_step, last_metrics, best)
                    saved = C.save_run_checkpoint(run_dir, global_step, _to_save(networks, ema), train_state, meta,
                                                  comp.id, mparams.model_dump(mode="json"))
                    if improved:
                        C.mark_best(run_dir, saved)
                    C.prune_checkpoints(run_dir, cfg.train.keep_last)
                D.barrier()

    bar.close()
    if main:
        plot_curves(run_dir)
    monitor.close()
    return TrainResult(run_dir, global_step, last_metrics, best)


# -- helpers (each does one thing) -----------------------------------------------------------------

def _collect(problems: list[str], where: str, build: Any) -> Any:
    """``build()``, or None with its error added to ``problems`` (reported with the preflight's)."""
    try:
        return build()
    except SrcoreError as exc:
        msg = one_line(exc)
        problems.append(msg if msg.startswith(where) else f"{where}: {msg}")
        return None


def _reseed(rng: torch.Generator, seed: int, rank: int, step: int) -> None:
    s = mix_seed(seed, 2, rank, step)
    rng.manual_seed(s)
    seed_all(mix_seed(seed, 3, rank, step))


def _progress(total: int, initial: int, enabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True)


def _root(cfg: RunConfig) -> str | None:
    """``data.root``, else the default data root that ``srcore eval`` uses too."""
    from srcore.data.sets import default_data_root

    if cfg.data.root:
        return cfg.data.root
    root = default_data_root()
    return str(root) if root else None


def _train_dataset(cfg: RunConfig, scale: int, info: Any, regs: Any) -> Any:
    from srcore.data.datasets import make_train_dataset

    return make_train_dataset(cfg.data.train, scale=scale, info=info, registries=regs, root=_root(cfg))


def _eval_sets(cfg: RunConfig, scale: int) -> dict[str, Any]:
    if not cfg.val.sets:
        return {}
    from srcore.data.datasets import make_eval_dataset

    root = _root(cfg)
    out = {}
    for s in cfg.val.sets:
        if isinstance(s, str):
            out[Path(s).name.lower()] = make_eval_dataset(s, scale=scale, root=root)
        else:  # a set with its own LR
            out[s.name or Path(s.hr).name.lower()] = make_eval_dataset({"hr": s.hr, "lr": s.lr}, scale=scale,
                                                                       root=root)
    return out


def build_metrics(refs: Any, regs: Any, dev: torch.device, scale: int) -> list[tuple[str, Any]]:
    """(label, metric) per reference; ``crop_border`` defaults to the scale (benchmark convention)."""
    out: list[tuple[str, Any]] = []
    for ref in refs:
        label = ref.id.split(":")[-1]
        if any(lab == label for lab, _ in out):
            label = f"{label}{len(out)}"
        comp = regs.metrics.get(ref.id)
        params = dict(ref.params)
        if "crop_border" in getattr(comp.config_cls, "model_fields", {}) and "crop_border" not in params:
            params["crop_border"] = scale
        try:
            m = comp.build(params)
        except MissingWeightsError as exc:  # state why and validate with the rest (e.g. FID without Inception)
            print(f"note: val metric {ref.id} left out: {exc}", file=sys.stderr)
            continue
        out.append((label, m.to(dev) if isinstance(m, nn.Module) else m))
    return out


def _networks(tstep: Any, extra: Mapping[str, nn.Module]) -> dict[str, nn.Module]:
    nets = {k: C.unwrap(v) for k, v in tstep.networks.items()}
    for k, v in extra.items():
        nets.setdefault(k, C.unwrap(v))
    return nets


def _to_save(networks: Mapping[str, nn.Module], ema: EMA | None) -> dict[str, nn.Module]:
    out = dict(networks)
    if ema is not None:
        out["generator_ema"] = ema.module
    return out


def _load_networks(ckpt: Path, networks: Mapping[str, nn.Module], ema: EMA | None) -> None:
    for name, net in _to_save(networks, ema).items():
        path = ckpt / f"{name}.safetensors"
        if path.is_file():
            sd, _ = C.load_safetensors(path)
            net.load_state_dict(sd)


def _broadcast(networks: Mapping[str, nn.Module]) -> None:
    """Start every rank from rank 0's weights (they agree already when seeded; this makes sure)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    for net in networks.values():
        for t in [*net.parameters(), *net.buffers()]:
            dist.broadcast(t.data, 0)


def _validate(tstep: Any, ema: EMA | None, info: Any, scale: int, sets: Mapping[str, Any], metrics: Any,
              conditions: list[float | None], dinfo: D.DistInfo, dev: torch.device, cfg: RunConfig,
              main: bool) -> tuple[dict[str, float], list[Any]]:
    from srcore.infer import Upscaler

    if ema is not None:
        module = ema.module

        def forward(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
            return module(x) if c is None else module(x, c)
    else:
        forward = tstep.generator_forward
    for net in tstep.networks.values():
        net.eval()
    return validate(Upscaler(forward, info, scale), sets, metrics, conditions, dinfo, dev, cfg.val.max_images,
                    cfg.train.samples if main else 0)


def _track_best(best: dict[str, Any] | None, values: Mapping[str, float], wanted: str | None,
                metrics: Any, step: int) -> tuple[dict[str, Any] | None, bool]:
    if not values:
        return best, False
    bad = [f"{k} = {v}" for k, v in values.items() if math.isnan(v)]
    if bad:
        raise NonFiniteMetric(
            f"validation at step {step} gave NaN ({', '.join(bad)}): the model diverged or the metric cannot be "
            "computed on these images; the run stops here and the last checkpoint is left as it was"
        )
    labels = list(values)
    label = labels[0]
    if wanted:
        found = find_label(labels, wanted)
        if found is None:
            raise SrcoreError(f"val.best_metric '{wanted}' is none of the validation values: {', '.join(labels)}")
        label = found
    value = values[label]
    if not math.isfinite(value):  # an infinite PSNR or FID is a degenerate case, never "the best"
        return best, False
    hib = higher_is_better(label, dict(metrics).get(label.split("/")[-1].split("@")[0]))
    if best is None or best["label"] != label or (value > best["value"] if hib else value < best["value"]):
        return {"label": label, "value": value, "step": step}, True
    return best, False


class NonFiniteMetric(SrcoreError):
    """Validation produced NaN/Inf: never a "best", and the run stops as on a non-finite loss."""


def _meta(cfg: RunConfig, manager: Any, model_id: str, step: int, stage: int, stage_step: int,
          metrics: Mapping[str, float], best: Any) -> dict[str, Any]:
    import srcore

    plugins = {p.name: {"distribution": p.distribution, "version": p.version} for p in manager.plugins.values() if p.ok}
    return {
        "format": "srcore-checkpoint/1", "srcore_version": srcore.__version__, "step": step, "stage": stage,
        "stage_step": stage_step, "model": model_id, "metrics": dict(metrics), "best": best, "plugins": plugins,
        "config": config_to_dict(cfg), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _get_rng() -> dict[str, Any]:
    st = np.random.get_state()
    out: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": (st[0], torch.from_numpy(st[1].astype(np.int64)), int(st[2]), int(st[3]), float(st[4])),
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def _set_rng(st: Mapping[str, Any]) -> None:
    torch.set_rng_state(st["torch"])
    n = st["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    py = st["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])
