"""Validation during training: sharded over ranks, reduced, identical result on every rank.

Each rank super-resolves the images ``i`` with ``i % world_size == rank`` (full images, through
``srcore.infer.super_resolve``), accumulates per-metric sums in float64, and one all-reduce
gives every rank the same means, so no rank waits at a collective while another works alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from srcore.engine import dist as D

LOWER_IS_BETTER = ("lpips", "fid", "niqe", "pi", "dists", "mse", "l1")


def higher_is_better(label: str, metric: Any = None) -> bool:
    flag = getattr(metric, "higher_is_better", None)
    if flag is not None:
        return bool(flag)
    name = label.rsplit("/", 1)[-1].split("@")[0].lower()
    return not any(name == k or name.endswith(k) for k in LOWER_IS_BETTER)


def is_set_level(metric: Any) -> bool:
    """Set-level metrics (FID) accumulate statistics in ``update`` and answer in ``compute``."""
    from srcore.metrics.base import SetMetric

    return isinstance(metric, SetMetric)


def metric_value(metric: Any, sr: torch.Tensor, hr: torch.Tensor) -> float:
    """One image's value through the metric protocol (``update`` -> per-image values), or a call."""
    v = metric.update(sr, hr) if hasattr(metric, "update") else metric(sr, hr)
    if v is None:
        raise ValueError(f"set-level metric {getattr(metric, 'name', metric)!r} cannot be used in validation")
    if isinstance(v, torch.Tensor):
        return float(v.double().mean().item())
    if isinstance(v, Mapping):
        return float(next(iter(v.values())))
    return float(v)


def val_labels(sets: Iterable[str], metrics: Sequence[tuple[str, Any]],
               conditions: Sequence[float | None]) -> list[str]:
    """``set/metric[@condition]`` for every value validation reports, in its order."""
    labels: list[str] = []
    for set_name in sets:
        for cond in conditions:
            suffix = "" if cond is None else f"@{cond:g}"
            labels += [f"{set_name}/{m}{suffix}" for m, _ in metrics]
    return labels


def find_label(labels: Iterable[str], wanted: str) -> str | None:
    """The first label ``val.best_metric`` names: the full label, ``metric@t`` or the metric alone."""
    for lab in labels:
        if lab == wanted or lab.endswith("/" + wanted) or lab.split("/")[-1] == wanted:
            return lab
    return None


@torch.no_grad()
def validate(
    upscaler: Any,
    sets: Mapping[str, Any],
    metrics: Sequence[tuple[str, Any]],
    conditions: Sequence[float | None],
    dinfo: D.DistInfo,
    device: torch.device,
    max_images: int | None = None,
    samples: int = 0,
) -> tuple[dict[str, float], list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Means of every metric per set (and condition), plus (bicubic, SR, HR) rows for samples.

    Set-level metrics (FID) are computed over the whole set: every rank ``measure``s its images
    for each condition, rank 0 ``add``s all of them in image order and computes the value, which
    the all-reduce hands to every rank. One whose statistics cannot be pooled (no ``measure``,
    see ``srcore.metrics.base.SetMetric``) is streamed in a single process with a single
    condition value and left out with a note otherwise.
    """
    import sys

    from srcore.data.resize import imresize
    from srcore.infer import super_resolve
    from srcore.metrics.base import pools

    if dinfo.world_size > 1 or len(conditions) > 1:
        dropped = [label for label, m in metrics if is_set_level(m) and not pools(m)]
        if dropped and dinfo.is_main:
            print(f"note: set-level metric(s) {', '.join(dropped)} left out of validation (without measure()/add() "
                  "their statistics are only computed in a single process with one condition value); use "
                  "`srcore eval` for them", file=sys.stderr)
        metrics = [(label, m) for label, m in metrics if not is_set_level(m) or pools(m)]

    labels = val_labels(sets, metrics, conditions)
    pooled = {j: metrics[j % len(metrics)][1] for j in range(len(labels)) if pools(metrics[j % len(metrics)][1])}
    sums = torch.zeros(2 * len(labels) + len(sets), dtype=torch.float64)  # + the pooled set values (rank 0's)
    stats: dict[int, list[Any]] = {j: [] for j in pooled}  # this rank's per-image statistics by column
    rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    col = 0
    set_values: dict[int, float] = {}
    for k, items in enumerate(sets.values()):
        start = col
        for _, metric in metrics:
            if is_set_level(metric):
                metric.reset()
        for _i, item in D.shard(items, dinfo.rank, dinfo.world_size, max_images):
            lr, hr = item["lr"].unsqueeze(0).float(), item["hr"].unsqueeze(0).float()
            j = start
            for cond in conditions:
                sr = super_resolve(upscaler, lr, cond=cond, device=device)
                sr = sr[..., : hr.shape[-2], : hr.shape[-1]]
                for _, metric in metrics:
                    if j in pooled:
                        stats[j].append(metric.measure(sr, hr))
                    elif is_set_level(metric):
                        metric.update(sr, hr)
                    else:
                        sums[j] += metric_value(metric, sr, hr)
                    j += 1
                if len(rows) < samples and k == 0 and cond == conditions[-1]:
                    bic = imresize(lr, size=hr.shape[-2:]).clamp(0, 1)
                    rows.append((bic[0], sr[0], hr[0]))
            sums[len(labels) + k] += 1
        for m_idx, (_, metric) in enumerate(metrics):
            if is_set_level(metric) and not pools(metric):
                set_values[start + m_idx] = float(metric.compute())
        col = start + len(conditions) * len(metrics)
    parts = D.gather_to_main(stats) if pooled else None
    if parts is not None:  # rank 0 (or the only process) computes the pooled set values
        for j, metric in pooled.items():
            metric.reset()
            for s in D.unshard([p[j] for p in parts]):
                metric.add(s)
            sums[len(labels) + len(sets) + j] = float(metric.compute())
    sums = D.all_reduce_sum(sums.to(device) if device.type == "cuda" else sums).cpu()
    set_values.update((j, float(sums[len(labels) + len(sets) + j])) for j in pooled)
    out: dict[str, float] = {}
    col = 0
    for k, _ in enumerate(sets):
        count = max(1.0, float(sums[len(labels) + k]))
        for _ in range(len(conditions) * len(metrics)):
            out[labels[col]] = set_values.get(col, float(sums[col]) / count)
            col += 1
    return out, rows
