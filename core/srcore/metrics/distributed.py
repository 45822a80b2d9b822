"""Evaluation over several processes (``srcore eval --nproc N``): each rank measures its share
of a set, rank 0 merges the shares in image order.

Rank r takes the images i with ``i % N == r`` (``srcore.engine.dist.shard_indices``, as
validation does). Rank 0 gathers every rank's per-image rows and, for set-level metrics (FID),
each image's statistics (``SetMetric.measure``), and then lets the metrics themselves compute
the set values from them in image order: ``add`` of every per-image value, ``add`` of every
image's statistics. That is the same sequence of float64 additions one process makes, so
every number equals the single-process one, given the same SR images and features (see
docs/distributed.md on CPU thread counts).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch

from srcore.engine import dist as D
from srcore.engine.validate import is_set_level
from srcore.errors import SrcoreError
from srcore.metrics.base import SetMetric, pools
from srcore.metrics.evaluate import Job, MetricSpec, Pair, SetResult, _compute, evaluate


class ShardedSet:
    """One rank's share of an evaluation set: item k is the set's item ``rank + k * world``
    (the set's own index, so a degradation seeded by the index makes the same LR)."""

    def __init__(self, dataset: Any, rank: int, world: int) -> None:
        self.dataset = dataset
        self.indices = D.shard_indices(len(dataset), rank, world)

    def __getattr__(self, name: str) -> Any:  # scale, name, ... of the whole set
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> Any:
        return self.dataset[self.indices[k]]

    def __iter__(self) -> Iterator[Any]:
        for i in self.indices:
            yield self.dataset[i]


class _Recorder:
    """Stands in for a set-level metric on a rank: keeps each image's ``measure`` for rank 0."""

    def __init__(self, metric: SetMetric) -> None:
        self.metric = metric
        self.stats: list[Any] = []

    def __getattr__(self, name: str) -> Any:  # min_size, crop_border, ... of the metric
        if name == "metric":
            raise AttributeError(name)
        return getattr(self.metric, name)

    def update(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> None:
        self.stats.append(self.metric.measure(sr, hr))

    def reset(self) -> None:
        self.metric.reset()
        self.stats = []

    def compute(self) -> float:
        return math.nan  # rank 0 computes it from every rank's statistics


def check_distributable(metrics: Sequence[MetricSpec]) -> None:
    """Refuse set-level metrics that cannot hand their statistics to rank 0 (no ``measure``)."""
    bad = [s.label for s in metrics if is_set_level(s.metric) and not pools(s.metric)]
    if bad:
        raise SrcoreError(f"--nproc: set-level metric(s) {', '.join(bad)} only override update(), not "
                          "measure()/add() (srcore.metrics.base.SetMetric), so their statistics cannot be "
                          "pooled across processes; evaluate them with --nproc 1")


Share = tuple[list[dict[str, Any]], dict[str, list[Any]]]  # one rank's rows, set-level statistics by label


def evaluate_sharded(
    pairs: Iterable[Pair | Job], count: int, metrics: Sequence[MetricSpec], *, model: str, set_name: str,
    scale: int | None, **kwargs: Any,
) -> SetResult | None:
    """``evaluate`` of this rank's ``count`` pairs (its shard); on rank 0 the set's result over
    all ranks, as one process computes it, and None on the others. Every rank must call it."""
    share = measure_share(pairs, count, metrics, model=model, set_name=set_name, scale=scale, **kwargs)
    parts = D.gather_to_main(share)
    return None if parts is None else combine(parts, metrics, model=model, set_name=set_name, scale=scale)


def measure_share(
    pairs: Iterable[Pair | Job], count: int, metrics: Sequence[MetricSpec], *, model: str, set_name: str,
    scale: int | None, **kwargs: Any,
) -> Share:
    """This rank's per-image rows and, for each set-level metric, every image's statistics."""
    local = [MetricSpec(s.label, _Recorder(s.metric), s.higher_is_better) if is_set_level(s.metric) else s
             for s in metrics]
    rows: list[dict[str, Any]] = []
    if count:
        rows = evaluate(pairs, local, model=model, set_name=set_name, scale=scale, **kwargs).images
    return rows, {s.label: s.metric.stats for s in local if isinstance(s.metric, _Recorder)}


def combine(
    parts: Sequence[Share], metrics: Sequence[MetricSpec], *, model: str, set_name: str, scale: int | None
) -> SetResult:
    """The set's result from every rank's (rows, set-metric statistics), in rank order."""
    rows = D.unshard([rows for rows, _ in parts])
    if not rows:
        raise SrcoreError(f"{set_name}: no images to evaluate")
    values: dict[str, float] = {}
    for spec in metrics:
        metric = spec.metric
        metric.reset()
        if is_set_level(metric):
            for stats in D.unshard([by_label.get(spec.label, []) for _, by_label in parts]):
                metric.add(stats)
            values[spec.label] = _compute(spec, set_name)
            continue
        per_image = [row[spec.label] for row in rows if spec.label in row]
        if len(per_image) != len(rows):
            raise SrcoreError(f"--nproc: metric {spec.label} gave no per-image values and is no SetMetric with "
                              "measure()/add(), so it cannot be pooled across processes; use --nproc 1")
        if not hasattr(metric, "add"):  # a protocol-only metric: its set value is the mean, in image order
            total = 0.0
            for v in per_image:
                total += v
            values[spec.label] = total / len(per_image)
            continue
        for v in per_image:
            metric.add(torch.tensor([v], dtype=torch.float64))
        values[spec.label] = _compute(spec, set_name)
    return SetResult(model, set_name, scale, values, rows)
