"""The metric protocol every registered metric follows.

A metric is an object built by its component (``registries.build("metric", "core:psnr", {...})``)
with

* ``higher_is_better: bool`` and ``name: str``;
* ``update(sr, hr) -> Tensor | None``: takes a batch of NCHW float tensors in [0, 1] (RGB, or
  1-channel Y where the model works on Y) on any device, and returns the per-image values as a
  1-D float64 tensor on the input's device; set-level metrics (FID) return ``None``.
  No-reference metrics (NIQE) accept ``hr=None``;
* ``compute() -> float``: the set value (mean of the per-image values for per-image metrics;
  the statistic of the whole set for set-level ones);
* ``reset()``: forget everything accumulated.

Accumulation is in float64. Per-image metrics average over images (as published SR tables do),
not over pixels of the concatenated set.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class Metric(Protocol):
    name: str
    higher_is_better: bool

    def update(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> torch.Tensor | None: ...

    def compute(self) -> float: ...

    def reset(self) -> None: ...


def check_pair(sr: torch.Tensor, hr: torch.Tensor | None, name: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Batch-ify CHW inputs and check shapes agree; readable errors name the metric."""
    if sr.dim() == 3:
        sr = sr.unsqueeze(0)
        hr = hr.unsqueeze(0) if hr is not None else None
    if sr.dim() != 4:
        raise ValueError(f"{name}: expected (N,)C,H,W tensors, got shape {tuple(sr.shape)}")
    if hr is not None and hr.shape != sr.shape:
        raise ValueError(f"{name}: SR shape {tuple(sr.shape)} differs from HR shape {tuple(hr.shape)}")
    return sr, hr


class PerImageMetric:
    """Base class: subclasses implement ``per_image(sr, hr) -> (N,) float64``; the mean is the result."""

    name = "metric"
    higher_is_better = True

    def __init__(self) -> None:
        self.reset()

    def per_image(self, sr: torch.Tensor, hr: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def update(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> torch.Tensor:
        sr, hr = check_pair(sr, hr, self.name)
        values = self.per_image(sr, hr).to(torch.float64)
        self.add(values)
        return values

    def add(self, values: torch.Tensor) -> None:
        """Record per-image values measured outside ``update`` (worker threads, other ranks)."""
        self._sum += float(values.sum().item())
        self._count += values.numel()

    def compute(self) -> float:
        return self._sum / self._count if self._count else math.nan

    def reset(self) -> None:
        self._sum = 0.0
        self._count = 0


class SetMetric:
    """Base class of set-level metrics: ``update`` accumulates statistics and returns ``None``.

    ``update`` is ``add(measure(sr, hr))``. ``measure`` returns a batch's statistics (FID: its
    Inception features) as picklable CPU objects without keeping them; ``add`` accumulates them.
    Distributed evaluation measures on every rank and adds on rank 0 in image order, so the set
    value is the one a single process computes. A subclass that only overrides ``update`` works
    in one process only.
    """

    name = "metric"
    higher_is_better = True

    def update(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> None:
        self.add(self.measure(sr, hr))

    def measure(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> Any:
        raise NotImplementedError

    def add(self, stats: Any) -> None:
        raise NotImplementedError

    def compute(self) -> float:
        raise NotImplementedError

    def reset(self) -> None:
        raise NotImplementedError


def pools(metric: Any) -> bool:
    """A set-level metric whose statistics can be pooled over processes (``measure``/``add``)."""
    return isinstance(metric, SetMetric) and type(metric).measure is not SetMetric.measure
