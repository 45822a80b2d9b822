"""Preflight: the whole run is built and fed once before step 1, so it cannot fail on day three.

A GAN recipe trains its PSNR stage for days; a discriminator that needs 128x128 inputs, a
generator whose width no longer fits a shared feature extractor or a step that refuses its
settings used to surface only when the later stage started. ``preflight`` builds every stage's
step with its networks, losses and discriminators, pushes one small batch of the configured
patch shape through each step (forward and loss; no backward, no optimizer step), checks every
training image against the patch size and super-resolves one crop of each validation set with
the configured metrics. Problems are collected, not raised one by one: the user sees all of
them at once, each with its config path.

Nothing is stepped and no gradient is computed; the generator's state (buffers such as
BatchNorm statistics, ``requires_grad`` flags) and every RNG state are saved before and restored
after, so a run that passes its preflight trains exactly as it would without one. Pretrained weights that are absent
(VGG19 for perceptual losses) are replaced by random ones for the check and reported as a
problem, since the real stage would stop on them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srcore.config import RunConfig
from srcore.engine.api import StepSetup
from srcore.engine.context import Context
from srcore.errors import SrcoreError
from srcore.pretrained import random_if_absent

MAX_VAL_CROP = 12  # LR pixels of the one validation image tried: its shapes and metrics, not its quality


class PreflightError(SrcoreError):
    """The run would fail: every problem found before step 1, each with its config path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(
            f"preflight found {len(problems)} problem(s) before step 1 (nothing was trained or written):\n{lines}"
        )


@dataclass
class PreflightReport:
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        return f"preflight: {', '.join(self.checked) or 'nothing'} checked in {self.seconds:.1f} s"


def one_line(exc: BaseException, limit: int = 400) -> str:
    """``Type: first line of the message`` (torch errors run to dozens of lines)."""
    from srcore.errors import ConfigError

    if isinstance(exc, ConfigError):
        return "; ".join(exc.problems)
    from srcore.weights_io import short_error

    text = short_error(exc, 1)
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text if isinstance(exc, SrcoreError) else f"{type(exc).__name__}: {text}"


class DryContext(Context):
    """A stage context that checks each loss but neither backpropagates nor steps (a third of the time)."""

    def backward(self, loss: torch.Tensor, optimizer: str) -> None:
        self.check_finite(loss, optimizer)

    def optimizer_step(self, optimizer: str) -> None:
        pass


def preflight(
    cfg: RunConfig,
    registries: Any,
    generator: nn.Module,
    model_info: Any,
    scale: int,
    data: Any,
    val_sets: Mapping[str, Any],
    metrics: list[tuple[str, Any]],
    conditions: list[float | None],
    device: torch.device,
    dinfo: Any,
    problems: list[str] = (),  # type: ignore[assignment]
) -> PreflightReport:
    """Check ``cfg`` against the run's own generator (copied), dataset and validation sets.

    ``problems`` found while building those (a dataset that cannot be read) start the report;
    ``data`` is then None and the stages are built but not fed.
    """
    from srcore.engine.loop import _get_rng, _set_rng

    t0 = time.perf_counter()
    report = PreflightReport(problems=list(problems))
    rng_state = _get_rng()
    saved = _snapshot(generator)
    try:
        batch = None
        if data is not None and _images_hold_a_patch(cfg, data, report):
            batch = _first_batch(cfg, data, device, report)
        with random_if_absent() as absent:
            _check_stages(cfg, registries, generator, batch, device, scale, report)
        report.problems += [f"{where}: {msg}" for where, msg in _dedupe(absent)]
        _check_validation(cfg, generator, model_info, scale, val_sets, metrics, conditions, device, dinfo, report)
    finally:
        _restore(generator, saved)
        _set_rng(rng_state)
    report.seconds = time.perf_counter() - t0
    return report


def _snapshot(module: nn.Module) -> tuple[list[torch.Tensor], list[bool], bool]:
    """What a forward can change without an optimizer: buffers (BatchNorm statistics), flags, mode."""
    buffers = [b.detach().clone() for b in module.buffers()]
    return buffers, [p.requires_grad for p in module.parameters()], module.training


def _restore(module: nn.Module, saved: tuple[list[torch.Tensor], list[bool], bool]) -> None:
    buffers, flags, training = saved
    with torch.no_grad():
        for b, old in zip(module.buffers(), buffers):
            b.copy_(old)
    for p, flag in zip(module.parameters(), flags):
        p.requires_grad_(flag)
    module.train(training)


def _dedupe(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: dict[str, tuple[str, str]] = {}
    for where, msg in items:
        seen.setdefault(msg, (where, msg))
    return list(seen.values())


def _first_batch(cfg: RunConfig, data: Any, device: torch.device,
                 report: PreflightReport) -> dict[str, torch.Tensor] | None:
    """One real sample of the configured patch shape, as a batch."""
    from torch.utils.data import default_collate

    t = cfg.data.train
    if hasattr(data, "__len__") and len(data) == 0:
        report.problems.append(f"data.train.hr ({t.hr}): the training set is empty")
        return None
    try:
        batch = default_collate([data[0]])
    except Exception as exc:  # any failure here is a data problem to report
        report.problems.append(f"data.train (hr={t.hr}, patch_size={t.patch_size}): {one_line(exc)}")
        return None
    report.checked.append("training data")
    return {k: v.to(device) for k, v in batch.items() if isinstance(v, torch.Tensor)}


def _images_hold_a_patch(cfg: RunConfig, data: Any, report: PreflightReport) -> bool:
    """Every training photograph must hold a patch (not only the one the first batch drew)."""
    files = getattr(data, "hr_files", None)
    if not files:
        return True
    from PIL import Image

    p = cfg.data.train.patch_size
    small = []
    for f in files:
        try:
            with Image.open(f) as im:
                w, h = im.size
        except Exception:  # unreadable files are reported by the reader with its own message
            continue
        if h < p or w < p:
            small.append(f"{Path(f).name} ({w}x{h})")
    if small:
        more = f" and {len(small) - 3} more" if len(small) > 3 else ""
        report.problems.append(
            f"data.train.patch_size={p}: {len(small)} of {len(files)} training image(s) are smaller: "
            f"{', '.join(small[:3])}{more}"
        )
    return not small


def _check_stages(cfg: RunConfig, registries: Any, generator: nn.Module, batch: Mapping[str, torch.Tensor] | None,
                  device: torch.device, scale: int, report: PreflightReport) -> None:
    gen = generator
    extra: dict[str, nn.Module] = {}
    for si, stage in enumerate(cfg.stages):
        where = f"stages.{si} ('{stage.name}', step {stage.step})"
        try:
            comp = registries.steps.get(stage.step)
            params = comp.parse_config(stage.step_params, where=f"stages.{si}.step_params")
            tstep = comp.builder(StepSetup(cfg, stage, params, gen, registries, device, extra))  # type: ignore[misc]
        except Exception as exc:
            report.problems.append(f"{where}: cannot build the step: {one_line(exc)}")
            continue
        if batch is None:
            continue
        ctx = DryContext(stage, device, cfg.train.amp, torch.Generator().manual_seed(0), gen)
        schedules = {"generator": stage.schedule, "discriminator": stage.schedule_d}
        ctx.register_optimizers(dict(tstep.optimizers), schedules)
        ctx.micro = stage.accumulate - 1
        for net in tstep.networks.values():
            net.train()
            for m in net.modules():  # a batch of one: BatchNorm of a 1x1 map has one value per channel
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        try:
            tstep(batch, ctx)
        except Exception as exc:
            shapes = ", ".join(f"{k} {'x'.join(map(str, v.shape))}" for k, v in batch.items())
            report.problems.append(
                f"{where}: one batch ({shapes}; data.train.patch_size={cfg.data.train.patch_size}, scale {scale}) "
                f"failed: {one_line(exc)}"
            )
            continue
        report.checked.append(f"stage '{stage.name}'")


def _crop(item: Mapping[str, Any], scale: int, info: Any) -> dict[str, Any]:
    if info.fixed_size is not None:
        return dict(item)
    c = MAX_VAL_CROP
    return {**item, "lr": item["lr"][..., :c, :c], "hr": item["hr"][..., : c * scale, : c * scale]}


def _check_validation(cfg: RunConfig, generator: nn.Module, info: Any, scale: int, sets: Mapping[str, Any],
                      metrics: list[tuple[str, Any]], conditions: list[float | None], device: torch.device,
                      dinfo: Any, report: PreflightReport) -> None:
    from srcore.engine.validate import find_label, is_set_level, val_labels, validate
    from srcore.infer import Upscaler

    labels = val_labels(sets, metrics, conditions)
    if sets and cfg.val.best_metric and find_label(labels, cfg.val.best_metric) is None:
        report.problems.append(f"val.best_metric '{cfg.val.best_metric}' is none of the validation values: "
                               f"{', '.join(labels)}")
    if not sets:
        return
    module = generator.eval()

    def forward(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return module(x) if c is None else module(x, c)

    per_image = [(lab, m) for lab, m in metrics if not is_set_level(m)]
    for name, items in sets.items():
        try:
            first = _crop(items[0], scale, info)
            validate(Upscaler(forward, info, scale), {name: [first]}, per_image, conditions[:1], dinfo, device)
        except Exception as exc:
            report.problems.append(f"val.sets ({name}): validating one image failed: {one_line(exc)}")
            continue
        report.checked.append(f"validation on {name}")

