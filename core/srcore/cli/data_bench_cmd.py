"""``srcore data bench``: how fast the configured training data arrives, and whether it can keep up.

The data is built exactly as ``srcore train`` builds it (``engine.loop.build_run``) and read
through the engine's own loader (``engine.sampling.make_loader``: the same batches, workers and
batched HDF5 reads as the run), so the rate printed is the rate a run gets. The model's step is
timed on a few real batches of it (stage 0's step through the engine's ``Context``: forward,
losses, backward, optimizer), and the verdict compares the two: a GPU that waits for its loader
shows here, before a run.
"""

from __future__ import annotations

import time
from typing import Any

import click

from srcore.cli.common import get_manager, handle_errors, plugin_option
from srcore.cli.data_cmd import data
from srcore.errors import SrcoreError


@data.command(name="bench")
@click.option("--recipe", "-r", metavar="ID", help="Recipe to start from (as for `srcore train`).")
@click.option("--config", "-c", "configs", multiple=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="YAML/JSON config merged over the recipe (repeatable, later wins).")
@click.option("--set", "-s", "overrides", multiple=True, metavar="KEY=VALUE", help="Override one value (repeatable).")
@plugin_option
@click.option("--steps", type=click.IntRange(min=1), default=50, show_default=True,
              help="Batches to time (after the first, which pays for starting the workers).")
@click.option("--workers", type=click.IntRange(min=0), help="DataLoader workers [default: data.train.num_workers].")
@click.option("--model-steps", type=click.IntRange(min=0), default=5, show_default=True,
              help="Training steps of the configured model to time for the verdict (0: data only).")
@click.option("--device", help="Device of the model steps: cpu, cuda, auto [default: train.device].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@handle_errors
def bench(recipe: str | None, configs: tuple[str, ...], overrides: tuple[str, ...], plugins: tuple[str, ...],
          steps: int, workers: int | None, model_steps: int, device: str | None, no_progress: bool) -> None:
    """Samples/s of the configured training data, and the step rate it can feed.

    \b
    Examples:
      srcore data bench -c run.yaml
      srcore data bench -c run.yaml --workers 4 --steps 200
      srcore data bench -r srcnn:demo-x3 --model-steps 0
    """
    from srcore.config import resolve_run_config
    from srcore.engine.dist import device_for

    if recipe is None and not configs:
        raise SrcoreError("give the run's configuration: -c FILE and/or -r RECIPE (as for `srcore train`)")
    manager = get_manager(plugins)
    cfg = resolve_run_config(manager.registries, recipe=recipe, files=configs, overrides=overrides)
    dev = device_for(device or cfg.train.device)
    t = cfg.data.train
    workers = t.num_workers if workers is None else workers
    parts = _build(cfg, manager, dev)
    rate = measure_data(parts.data, t.batch_size, cfg.train.seed, workers, steps, progress=not no_progress)
    click.echo(f"data: {t.hr} ({type(parts.data).__name__}, {len(parts.data)} samples), batch {t.batch_size}, "
               f"{workers} worker(s): {rate.samples_per_s:.0f} samples/s = {rate.batches_per_s:.1f} batches/s "
               f"({steps} batches in {rate.seconds:.3f} s; first batch after {rate.first:.2f} s)")
    if model_steps == 0:
        return
    stage = cfg.stages[0]
    step_s = time_model_step(cfg, manager, parts, dev, rate.batch, model_steps)
    feeds = rate.batches_per_s / stage.accumulate
    click.echo(f"model: {cfg.model.id}, step {stage.step} on {dev}: {step_s * 1e3:.1f} ms/step "
               f"({model_steps} steps, {stage.accumulate} micro-batch(es) each) = {1 / step_s:.1f} steps/s")
    click.echo(verdict(feeds, step_s, workers))


def _build(cfg: Any, manager: Any, dev: Any) -> Any:
    """The generator and training data as ``srcore train`` builds them (no validation sets or metrics)."""
    from srcore.engine.loop import build_run

    quiet = cfg.model_copy(update={"val": cfg.val.model_copy(update={"metrics": []})})
    parts = build_run(quiet, manager, dev, eval_sets={}, pretrained=False)
    if parts.problems:
        raise SrcoreError("; ".join(parts.problems))
    return parts


class DataRate:
    def __init__(self, samples: int, batches: int, seconds: float, first: float, batch: Any) -> None:
        self.seconds, self.first, self.batch = seconds, first, batch
        self.samples_per_s = samples / max(seconds, 1e-9)
        self.batches_per_s = batches / max(seconds, 1e-9)


def measure_data(dataset: Any, batch_size: int, seed: int, workers: int, steps: int, progress: bool) -> DataRate:
    """Time ``steps`` batches of the run's loader (after its first batch) in this process."""
    from tqdm.auto import tqdm

    from srcore.engine.sampling import make_loader

    t0 = time.perf_counter()
    it = iter(make_loader(dataset, batch_size, seed, 0, 1, 0, workers))
    first_batch = next(it)
    first = time.perf_counter() - t0
    samples = 0
    t1 = time.perf_counter()
    for _ in tqdm(range(steps), disable=not progress, unit="batch", desc="reading", leave=False, dynamic_ncols=True):
        batch = next(it)
        samples += len(next(v for v in batch.values() if hasattr(v, "shape")))
    seconds = time.perf_counter() - t1
    del it  # stops the workers
    return DataRate(samples, steps, seconds, first, first_batch)


def time_model_step(cfg: Any, manager: Any, parts: Any, dev: Any, batch: Any, n: int) -> float:
    """Seconds per optimizer step of stage 0 on ``batch`` (median of ``n`` after one warm-up)."""
    import statistics

    import torch

    from srcore.engine.api import StepSetup
    from srcore.engine.context import Context

    regs = manager.registries
    stage = cfg.stages[0]
    comp = regs.steps.get(stage.step)
    setup = StepSetup(cfg, stage, comp.parse_config(stage.step_params, where="stages.0.step_params"),
                      parts.generator, regs, dev, {})
    tstep = comp.builder(setup)  # type: ignore[misc]
    ctx = Context(stage, dev, cfg.train.amp, torch.Generator().manual_seed(cfg.train.seed), parts.generator)
    ctx.register_optimizers(dict(tstep.optimizers), {"generator": stage.schedule, "discriminator": stage.schedule_d})
    on_dev = {k: v.to(dev) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    times = []
    for i in range(n + 1):
        t0 = time.perf_counter()
        for m in range(stage.accumulate):
            ctx.global_step, ctx.stage_step, ctx.micro = i, i, m
            tstep(on_dev, ctx)
        ctx.end_step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def verdict(feeds: float, step_s: float, workers: int) -> str:
    """One line: can the loader keep the model busy?"""
    need, data_ms, model_ms = 1 / step_s, 1e3 / feeds, step_s * 1e3
    head = f"verdict: the data can feed {feeds:.1f} steps/s; the model step takes {model_ms:.1f} ms"
    bound = (f"data-bound: the model could take {need:.1f} steps/s" if feeds < need
             else f"compute-bound: the data keeps up with {feeds / need:.1f}x headroom")
    if workers == 0:  # loading and stepping share one process: their times add up
        return (f"{head} => {bound}; with num_workers 0 loading adds {data_ms:.1f} ms to every step "
                f"({data_ms / (data_ms + model_ms):.0%} of it): set data.train.num_workers")
    return f"{head} => {bound}"
