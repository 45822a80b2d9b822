"""Evaluate one checkpoint at several condition values: FxSR's perception-distortion table.

``evaluate_t_sweep("runs/fxsr/last", [0, 0.2, 0.4, 0.6, 0.8, 1], sets=["set5"])`` gives one row
per (set, t) with PSNR, SSIM and LPIPS (or the metrics given). It works for any registered model
that takes a condition map (``ModelInfo.condition``), through the core's checkpoint loader,
benchmark sets, metrics and ``super_resolve``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srcore.errors import SrcoreError


@dataclass
class SweepRow:
    """Set means of every metric for one condition value."""

    set: str
    t: float
    images: int
    values: dict[str, float] = field(default_factory=dict)


def default_metrics(scale: int) -> list[dict[str, Any]]:
    """PSNR/SSIM on Y with crop = scale (BasicSR's default; FxSR does not state its convention,
    spec section 6) and LPIPS."""
    fr = {"y_channel": True, "crop_border": scale}
    return [{"id": "core:psnr", "params": fr}, {"id": "core:ssim", "params": fr}, {"id": "core:lpips"}]


def _check_t(t_values: Sequence[float]) -> list[float]:
    values = [float(t) for t in t_values]
    if not values:
        raise SrcoreError("t sweep: give at least one t value")
    bad = [t for t in values if not 0.0 <= t <= 1.0]
    if bad:
        raise SrcoreError(f"t sweep: values must lie in [0, 1], got {bad}")
    return values


def evaluate_t_sweep(
    checkpoint: str | Path | Any,
    t_values: Sequence[float],
    sets: Sequence[str | Mapping[str, Any]] = ("set5",),
    metrics: Sequence[Mapping[str, Any]] | None = None,
    root: str | Path | None = None,
    device: str = "cpu",
    tile: int | None = None,
    max_images: int | None = None,
    manager: Any = None,
) -> list[SweepRow]:
    """Rows (set, t, metric means) for a conditional model; ``checkpoint`` is a path or a
    ``LoadedModel``. Metrics are ``{"id": ..., "params": {...}}`` (default: ``default_metrics``)."""
    from srcore.data.datasets import make_eval_dataset
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.infer import super_resolve

    if manager is None:
        from srcore.plugins import load_plugins

        manager = load_plugins()
    loaded = checkpoint if hasattr(checkpoint, "module") else load_checkpoint(checkpoint, manager=manager)
    if not loaded.info.condition:
        raise SrcoreError(f"{loaded.component.id} takes no condition map; a t sweep needs a conditional model")
    ts = _check_t(t_values)
    loaded.module.to(device)
    refs = list(metrics) if metrics is not None else default_metrics(loaded.scale)
    built = [(str(r["id"]).split(":")[-1], manager.registries.build("metric", r["id"], r.get("params", {})))
             for r in refs]
    rows: list[SweepRow] = []
    for spec in sets:
        data = make_eval_dataset(spec, scale=loaded.scale, root=root)
        items = [data[i] for i in range(len(data) if max_images is None else min(max_images, len(data)))]
        for t in ts:
            for _, m in built:
                m.reset()
            for item in items:
                hr = item["hr"].unsqueeze(0)
                sr = super_resolve(loaded, item["lr"], cond=t, tile=tile, device=device)
                sr = sr[..., : hr.shape[-2], : hr.shape[-1]].to(hr.device)
                for _, m in built:
                    m.update(sr, hr)
            rows.append(SweepRow(data.name or str(spec), t, len(items), {label: m.compute() for label, m in built}))
    return rows


def format_table(rows: Sequence[SweepRow]) -> str:
    """A Markdown table: one line per (set, t), one column per metric."""
    if not rows:
        return ""
    labels = list(rows[0].values)
    head = "| set | t | " + " | ".join(labels) + " |"
    sep = "|---|---|" + "---|" * len(labels)
    lines = [head, sep]
    for r in rows:
        cells = " | ".join(f"{r.values[k]:.4f}" for k in labels)
        lines.append(f"| {r.set} | {r.t:g} | {cells} |")
    return "\n".join(lines)
