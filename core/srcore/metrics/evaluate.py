"""Evaluation of SR results on benchmark sets: metric construction, the loop, result tables.

Used by ``srcore eval`` (three modes: a checkpoint, a folder of SR images, bicubic) and usable
from Python. Every SR image is measured as the 8-bit image it would be saved as (rounded), the
MATLAB benchmark convention; ``quantize=False`` measures the float output instead.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import math
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from srcore.atomic import write_atomic
from srcore.data.color import exact_float64, quantize_uint8
from srcore.data.color import quantize as quantize_8bit
from srcore.errors import SrcoreError
from srcore.metrics.weights import MissingWeightsError
from srcore.registry import Registries

Pair = tuple[str, torch.Tensor, torch.Tensor]  # (image name, SR (3,H,W), HR (3,H,W)): floats or 8-bit levels
Job = Callable[[], Pair]  # a pair still to be made (read, degrade, upsample) in a worker thread
R = TypeVar("R")


@dataclass
class MetricSpec:
    label: str
    metric: Any
    higher_is_better: bool


@dataclass
class SetResult:
    model: str
    set: str
    scale: int | None
    metrics: dict[str, float]
    images: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self, per_image: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model, "set": self.set, "scale": self.scale, "n_images": len(self.images),
            "metrics": {k: _json_float(v) for k, v in self.metrics.items()},
        }
        if per_image:
            out["images"] = [
                {k: _json_float(v) if isinstance(v, float) else v for k, v in r.items()} for r in self.images
            ]
        return out


def _json_float(v: float) -> float | str | None:
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def build_metrics(
    names: Sequence[str], registries: Registries, *, crop_border: int, y_channel: bool, y_convention: str,
    extra: dict[str, dict[str, Any]] | None = None, skip_unavailable: bool = False,
    unavailable: dict[str, str] | None = None,
) -> list[MetricSpec]:
    """Build metrics by id; the protocol options go to every metric whose config has them.

    A metric whose pretrained weights are missing raises ``MissingWeightsError`` (it names the
    file and where it goes); with ``skip_unavailable`` it is left out with a note on stderr and
    its reason is recorded in ``unavailable`` (metric id -> message).
    """
    specs = []
    for name in names:
        comp = registries.metrics.get(name)
        fields = comp.config_cls.model_fields
        params: dict[str, Any] = {}
        for key, value in (("crop_border", crop_border), ("y_channel", y_channel), ("y_convention", y_convention)):
            if key in fields:
                params[key] = value
        if comp.name == "ifc":
            params["y_channel"] = True  # IFC is defined on Y only
        params.update((extra or {}).get(comp.name, {}))
        try:
            metric = comp.build(comp.parse_config(params, where=f"metric {comp.id}"))
        except MissingWeightsError as exc:
            if not skip_unavailable:
                raise
            if unavailable is None or comp.id not in unavailable:  # say it once, not per scale
                print(f"note: metric {comp.id} left out: {exc}", file=sys.stderr)
            if unavailable is not None:
                unavailable[comp.id] = str(exc)
            continue
        hib = getattr(metric, "higher_is_better", comp.extra.get("higher_is_better", True))
        specs.append(MetricSpec(comp.name, metric, bool(hib)))
    return specs


def evaluate(
    pairs: Iterable[Pair | Job], metrics: Sequence[MetricSpec], *, model: str, set_name: str, scale: int | None,
    quantize: bool = True, progress: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
    device: torch.device | str = "cpu", workers: int | None = None,
) -> SetResult:
    """Measure every (name, SR, HR) pair with every metric; per-image rows and set means.

    SR and HR are floats in [0, 1] or, for 8-bit images, their uint8 levels (exact, and cheaper
    to measure: ``srcore.metrics.prepare``); metrics without ``prep`` get [0, 1] floats.
    ``pairs`` may hold jobs (callables returning a pair, e.g. ``bicubic_jobs``): they run in
    ``workers`` threads (default: ``default_workers()``), and so do the ``thread_safe`` metrics
    (PSNR, SSIM), each image prepared once for all of them. Decoding, resizing and filtering
    release the GIL, so threads scale on the CPU cores. Rows and set values come in input order,
    identical to a sequential run.
    """
    workers = default_workers() if workers is None else max(1, workers)
    for spec in metrics:
        spec.metric.reset()
    pooled = [s for s in metrics if getattr(s.metric, "thread_safe", False)]
    serial = [s for s in metrics if s not in pooled]
    rows: list[dict[str, Any]] = []

    def work(item: Pair | Job) -> tuple[str, torch.Tensor | None, torch.Tensor | None, dict[str, torch.Tensor]]:
        name, sr, hr = item() if callable(item) else item
        sr_b, hr_b = _batch(name, sr, hr, set_name, metrics, quantize, device)
        values = _measure_pooled(pooled, sr_b, hr_b, f"{set_name}/{name} ({_size(hr)})")
        return (name, _unit(sr_b), _unit(hr_b), values) if serial else (name, None, None, values)

    items = iter(pairs)
    first = next(items, None)
    items = itertools.chain([] if first is None else [first], items)
    # Jobs do all the work in the pool: split the cores. Ready pairs come from a model in this
    # thread, which keeps all its threads (the pool only measures beside it).
    split = workers if callable(first) else 1
    with _intra_op_threads(split, torch.device(device)):
        stream = ordered_map(work, items, workers)
        for name, sr_b, hr_b, values in progress(stream) if progress else stream:
            row: dict[str, Any] = {"image": name}
            for spec in metrics:
                if spec in pooled:
                    value = values[spec.label]
                    spec.metric.add(value)
                else:
                    value = _update(spec, sr_b, hr_b, f"{set_name}/{name} ({_size(hr_b)})")
                if value is not None:
                    row[spec.label] = float(value[0])
            rows.append(row)
    if not rows:
        raise SrcoreError(f"{set_name}: no images to evaluate")
    values_ = {spec.label: _compute(spec, set_name) for spec in metrics}
    return SetResult(model, set_name, scale, values_, rows)


def default_workers() -> int:
    """Threads for evaluation: one per CPU core, at most 4 (I/O and metrics, not the model)."""
    return max(1, min(4, os.cpu_count() or 1))


def ordered_map(fn: Callable[[Any], R], items: Iterable[Any], workers: int) -> Iterator[R]:
    """``map(fn, items)`` on a thread pool, in order, with at most ``2 * workers`` in flight
    (memory stays bounded by a few images); ``items`` is consumed in the calling thread."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(workers, thread_name_prefix="srcore-eval")
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _intra_op_threads(workers: int, device: torch.device) -> Iterator[None]:
    """Split the CPU cores between the worker threads instead of each op using all of them:
    on a busy 2-core machine, 2-thread float64 matmuls ran 5x slower than 1-thread ones."""
    if workers <= 1 or device.type != "cpu":
        yield
        return
    import cv2

    before, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    per = max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(per)
    cv2.setNumThreads(per if per > 1 else 0)  # 0: OpenCV runs its loops sequentially
    try:
        yield
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv)


def _batch(
    name: str, sr: torch.Tensor, hr: torch.Tensor, set_name: str, metrics: Sequence[MetricSpec], quantize: bool,
    device: torch.device | str,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a pair and make it (1, C, H, W) on ``device``: uint8 levels as they are, floats in
    float64, SR rounded to its 8-bit image (uint8 levels; [0, 1] floats if not finite, so a
    NaN shows in the metrics) with ``quantize``."""
    if sr.shape != hr.shape:
        raise SrcoreError(f"{set_name}/{name}: SR is {tuple(sr.shape)} but HR is {tuple(hr.shape)}")
    check_size(f"{set_name}/{name}", tuple(hr.shape[-2:]), metrics)
    sr_b, hr_b = (_levels_or_float64(x.unsqueeze(0).to(device)) for x in (sr, hr))
    if quantize and sr_b.is_floating_point():
        try:
            sr_b = quantize_uint8(sr_b)
        except ValueError:  # NaN
            sr_b = quantize_8bit(sr_b)
    return sr_b, hr_b


def _levels_or_float64(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.uint8 else x.to(torch.float64)


def _unit(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float64 of 8-bit levels (exactly ``quantize``'s k / 255), other tensors as they are."""
    return x.to(torch.float64).div_(255.0) if x.dtype == torch.uint8 else x


def _measure_pooled(
    specs: Sequence[MetricSpec], sr: torch.Tensor, hr: torch.Tensor, where: str
) -> dict[str, torch.Tensor]:
    """Values of the thread-safe metrics; each ``prep_key`` (crop, channel, Y convention) once."""
    prepared: dict[Any, tuple[torch.Tensor, torch.Tensor]] = {}
    out = {}
    for spec in specs:
        m = spec.metric
        try:
            if m.prep_key not in prepared:
                prepared[m.prep_key] = (m.prep(sr), m.prep(hr))
            out[spec.label] = m.from_measured(*prepared[m.prep_key]).to(torch.float64)
        except ValueError as exc:  # a metric's own input check: say which image
            raise SrcoreError(f"{where}: {spec.label}: {exc}") from None
    return out


def _update(spec: MetricSpec, sr: torch.Tensor | None, hr: torch.Tensor | None, where: str) -> torch.Tensor | None:
    try:
        return spec.metric.update(sr, hr)
    except ValueError as exc:  # a metric's own input check: say which image
        raise SrcoreError(f"{where}: {spec.label}: {exc}") from None


def _compute(spec: MetricSpec, set_name: str) -> float:
    try:
        return float(spec.metric.compute())
    except ValueError as exc:  # a set metric's own check (FID needs two images)
        raise SrcoreError(f"{set_name}: {spec.label}: {exc}") from None


def check_size(image: str, size: tuple[int, int], metrics: Sequence[MetricSpec]) -> None:
    """Refuse an image too small for a metric (``min_size``: border crop, SSIM window) by name."""
    for spec in metrics:
        need = int(getattr(spec.metric, "min_size", 1))
        if min(size) < need:
            crop = getattr(spec.metric, "crop_border", 0)
            why = f" with a border crop of {crop}" if crop else ""
            raise SrcoreError(
                f"{image} is {size[0]}x{size[1]} pixels as measured; {spec.label}{why} needs at least {need}x{need} "
                "(drop the image, or lower --crop-border)"
            )


def _size(x: torch.Tensor) -> str:
    return "x".join(str(v) for v in x.shape[-2:])


class ExactInput:
    """A degradation fed exact 8-bit levels: a float32 copy of an 8-bit image (k / 255 rounded
    to float32) becomes the exact float64 k / 255 (``exact_float64``); MATLAB bicubic of the
    float32 error flips a few LR pixels (3 in a 1024x1024 photo) against
    ``imresize(im2double(hr))``. float64 input is taken as exact already (``EvalSet`` makes it
    from the file's levels). Other attributes (``scale``, ``seed``) are the wrapped degradation's."""

    def __init__(self, degradation: Any) -> None:
        self.degradation = degradation

    def __getattr__(self, name: str) -> Any:
        return getattr(self.degradation, name)

    def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return self.degradation(hr if hr.dtype == torch.float64 else exact_float64(hr), generator=generator)


class CachedSet:
    """An evaluation set whose items (name, LR, HR) are kept after their first use, within
    ``SRCORE_EVAL_CACHE_MB`` (default 1024): with ``--with-bicubic``, ``--with-self-ensemble`` or
    several ``--cond`` the same LR is otherwise read and degraded again for every row. Items
    are deterministic (the degradation is seeded by the index), so a cached item is the item.
    """

    def __init__(self, dataset: Any, budget_mb: float | None = None) -> None:
        self.dataset = dataset
        mb = budget_mb if budget_mb is not None else float(os.environ.get("SRCORE_EVAL_CACHE_MB", "1024"))
        self.budget, self.used = int(mb * 2**20), 0
        self.items: dict[int, dict[str, Any]] = {}

    def __getattr__(self, name: str) -> Any:  # scale, name, hr_files, ... of the wrapped set
        return getattr(self.dataset, name)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items.get(index)
        if item is None:
            item = self.dataset[index]
            size = sum(v.numel() * v.element_size() for v in item.values() if isinstance(v, torch.Tensor))
            if self.used + size <= self.budget:
                self.items[index] = item
                self.used += size
        return item

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for index in range(len(self)):
            yield self[index]


def bicubic_jobs(dataset: Any) -> Iterator[Job]:
    """One job per image: read it, make its LR, upsample that (for ``evaluate``'s threads)."""
    for index in range(len(dataset)):
        yield functools.partial(_bicubic_pair, dataset, index)


def _bicubic_pair(dataset: Any, index: int) -> Pair:
    from srcore.data.resize import imresize

    item = dataset[index]
    hr = item.get("hr8", item["hr"])
    sr = imresize(exact_float64(item["lr"].unsqueeze(0)), dataset.scale, size=tuple(hr.shape[-2:]))[0]
    return item["name"], sr.clamp_(0, 1), hr


def bicubic_pairs(dataset: Any) -> Iterator[Pair]:
    """SR = MATLAB bicubic upsampling of the (8-bit) LR: the benchmark's bicubic baseline
    (HR as the dataset's float32 image)."""
    for job in bicubic_jobs(dataset):
        yield _as_floats(job())


def _as_floats(pair: Pair) -> Pair:
    """A pair with 8-bit levels as ``read_image``'s float32 k / 255 (for callers outside ``evaluate``)."""
    name, sr, hr = pair
    return name, *(x.float().div_(255.0) if x.dtype == torch.uint8 else x for x in (sr, hr))  # type: ignore[return-value]


def model_pairs(dataset: Any, loaded: Any, **sr_kwargs: Any) -> Iterator[Pair]:
    """SR from a loaded checkpoint through ``srcore.infer.super_resolve``; HR as its 8-bit levels
    when the dataset has them (``hr8``)."""
    from srcore.infer import super_resolve

    for item in dataset:
        sr = super_resolve(loaded, item["lr"], **sr_kwargs)[0].cpu()
        yield item["name"], sr, item.get("hr8", item["hr"])


def folder_jobs(sr_dir: Path, hr_files: list[Path], scale: int | None) -> Iterator[Job]:
    """SR images matched to HR images by stem (exact, or the HR stem followed by '_', '-' or 'x');
    8-bit files come as their uint8 levels (``read_image_exact``).

    The HR is cropped to the SR size when it is larger by less than the scale (a mod-crop).
    Files are matched here; each job reads its pair (in ``evaluate``'s threads).
    """
    from srcore.data.io import list_images

    sr_files = list_images(sr_dir)
    by_stem = {p.stem.lower(): p for p in sr_files}
    missing = []
    matched: list[tuple[Path, Path]] = []
    from srcore.data.datasets import pair_key

    for hr in hr_files:
        found = None
        for stem in dict.fromkeys((hr.stem.lower(), pair_key(hr.stem, scale or 0)[0])):  # a_SRF_4_HR -> a
            found = found or by_stem.get(stem) or next(
                (p for s, p in sorted(by_stem.items()) if s.startswith(stem) and s[len(stem): len(stem) + 1] in "_-x"),
                None,
            )
        if found is None:
            missing.append(hr.name)
        else:
            matched.append((found, hr))
    if missing:
        raise SrcoreError(
            f"no SR image in {sr_dir} for {len(missing)} HR image(s): {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "")
        )
    for sr_path, hr_path in matched:
        yield functools.partial(_folder_pair, sr_path, hr_path, scale or 1)


def _folder_pair(sr_path: Path, hr_path: Path, slack: int) -> Pair:
    from srcore.data.io import read_image_exact

    sr, hr = read_image_exact(sr_path), read_image_exact(hr_path)
    (sh, sw), (hh, hw) = sr.shape[-2:], hr.shape[-2:]
    if not (0 <= hh - sh < slack and 0 <= hw - sw < slack):
        raise SrcoreError(f"size mismatch: SR {sr_path} is {sh}x{sw}, HR {hr_path} is {hh}x{hw}")
    return hr_path.stem, sr, hr[..., :sh, :sw]


def folder_pairs(sr_dir: Path, hr_files: list[Path], scale: int | None) -> Iterator[Pair]:
    """``folder_jobs``, run one after the other (images as ``read_image`` gives them)."""
    for job in folder_jobs(sr_dir, hr_files, scale):
        yield _as_floats(job())



# -- output ---------------------------------------------------------------------------------

def format_table(results: Sequence[SetResult], metrics: Sequence[MetricSpec], per_image: bool = False) -> str:
    """A plain-text table: one row per (model, set, scale), optional per-image rows below."""
    labels = [m.label for m in metrics]
    heads = ["model", "set", "scale"] + [f"{m.label.upper()} {'↑' if m.higher_is_better else '↓'}" for m in metrics]
    rows: list[list[str]] = []
    for r in results:
        scale = f"x{r.scale}" if r.scale else "-"
        rows.append([r.model, r.set, scale] + [_fmt(lab, r.metrics.get(lab)) for lab in labels])
        if per_image:
            for img in r.images:
                rows.append(["", "  " + str(img["image"]), ""] + [_fmt(lab, img.get(lab)) for lab in labels])
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(heads)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(heads), sep, *(line(row) for row in rows)])


def _fmt(label: str, value: float | None) -> str:
    if value is None:
        return "-"
    if math.isinf(value):
        return "inf"
    digits = 2 if label in ("psnr", "fid", "niqe", "ifc", "pi") else 4
    return f"{value:.{digits}f}"


def write_json(
    path: Path, results: Sequence[SetResult], protocol: dict[str, Any], per_image: bool = True, what: str = "JSON file"
) -> None:
    """Write results as JSON atomically; ``what`` (e.g. ``--json``) names the path in errors."""
    data = {"protocol": protocol, "results": [r.as_dict(per_image) for r in results]}
    write_atomic(path, json.dumps(data, indent=2) + "\n", what)


def write_csv(
    path: Path, results: Sequence[SetResult], metrics: Sequence[MetricSpec], per_image: bool, what: str = "CSV file"
) -> None:
    """Write results (and per-image rows) as CSV atomically."""
    import io

    labels = [m.label for m in metrics]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["model", "set", "scale", "image", *labels])
    for r in results:
        w.writerow([r.model, r.set, r.scale or "", "(mean)", *[_csv(r.metrics.get(lab)) for lab in labels]])
        if per_image:
            for img in r.images:
                w.writerow([r.model, r.set, r.scale or "", img["image"], *[_csv(img.get(lab)) for lab in labels]])
    write_atomic(path, buf.getvalue(), what)


def _csv(v: float | None) -> str:
    return "" if v is None else repr(float(v))
