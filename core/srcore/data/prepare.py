"""Training patches from a folder of images: every option of seed004's ``data_aug.py``.

For each image (sorted by name; the first ``number``), each upscale factor ``uf``, each image
rescale ``s``, each resampling method ``m`` and each (flip, rotation) pair:

1. HR = bicubic resize of the image to (floor(W*s), floor(H*s)) trimmed to a multiple of uf
   (a resize, as data_aug.py does; an unchanged size is left untouched);
2. LR = resize(HR, size/uf, m); with ``same_size`` resized back to the HR size with the same m;
3. both are flipped (0 none, 1 left-right, 2 top-bottom, 3 both) then rotated (PIL, expand);
4. HR patches of W x H on a grid of step ``stride`` (x = i*stride for i < floor(Wt/stride),
   skipping patches that overrun), shrunk by ``padding`` on every side; the LR patch is the
   same box (``same_size``) or the box / uf;
5. ``single_y``: Y of BT.601 as MATLAB rgb2ycbcr on uint8 (rounded), 2-D patches.

Deliberate differences from data_aug.py (documented in docs/data-and-metrics.md): files are
sorted (not ``os.listdir`` order); each (flip, rotation) pair is applied to the untransformed
image (data_aug.py applies them cumulatively, which repeats orientations; pass
``cumulative=True`` to reproduce it); the crop grid uses the transformed image's size; Y is
rounded, not truncated. Methods are PIL's (bicubic, bilinear, nearest, antialias = LANCZOS)
plus ``matlab`` (MATLAB imresize).

Output: an HDF5 file with uint8 datasets ``hr`` (N, H', W'[, 3]) and ``lr`` (N, h', w'[, 3]),
patches shuffled with ``seed`` (a seeded permutation, written group by group), every option as
a string attribute of both datasets; or two PNG folders. Memory is bounded by one image's
variants: patches are counted first (from sizes only), then written as they are cut. Output
goes to a temporary name (``.<name>.incomplete-<pid>``) that is renamed when complete, so an
interrupted run never leaves a file that looks finished; a full disk or an interruption removes
it, and ``srcore.outputs.remove_stale_temps`` clears those of killed runs.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from srcore.errors import SrcoreError
from srcore.outputs import is_disk_full

METHODS = ("bicubic", "bilinear", "nearest", "antialias", "matlab")
_PIL = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "antialias": Image.Resampling.LANCZOS,
}


@dataclass
class PrepareOptions:
    width: int = 41
    height: int = 41
    stride: int = 41
    padding: int = 0
    upscale_factors: list[int] = field(default_factory=lambda: [2])
    scales: list[float] = field(default_factory=lambda: [1.0])
    upsampling: list[str] = field(default_factory=lambda: ["bicubic"])
    rotations: list[float] = field(default_factory=lambda: [0.0])
    flips: list[int] = field(default_factory=lambda: [0])
    single_y: bool = False
    same_size: bool = False
    number: int | None = None
    seed: int = 1234
    shuffle: bool = True
    cumulative: bool = False

    def validate(self) -> None:
        problems = []
        if min(self.width, self.height, self.stride) < 1:
            problems.append("width, height and stride must be positive")
        if self.padding < 0 or 2 * self.padding >= min(self.width, self.height):
            problems.append(f"padding {self.padding} leaves no patch of {self.width}x{self.height}")
        if not self.upscale_factors or min(self.upscale_factors) < 1:
            problems.append("upscale factors must be positive integers")
        if any(s <= 0 for s in self.scales) or not self.scales:
            problems.append("scales must be positive")
        bad = [m for m in self.upsampling if m not in METHODS]
        if bad or not self.upsampling:
            problems.append(f"unknown upsampling method(s) {bad}; choose from {', '.join(METHODS)}")
        if any(f not in (0, 1, 2, 3) for f in self.flips) or not self.flips:
            problems.append("flips must be among 0 (none), 1 (left-right), 2 (top-bottom), 3 (both)")
        if not self.rotations:
            problems.append("give at least one rotation (0 for none)")
        if not self.same_size:
            for uf in self.upscale_factors:
                odd = [n for n, v in (("width", self.width), ("height", self.height), ("stride", self.stride),
                                      ("padding", self.padding)) if v % uf]
                if odd:
                    problems.append(
                        f"{', '.join(odd)} must be multiples of the upscale factor {uf} for LR-size patches "
                        "(or use --same-size)"
                    )
        if self.number is not None and self.number < 1:
            problems.append("number must be positive")
        if problems:
            raise SrcoreError("invalid prepare options:\n" + "\n".join(f"  - {p}" for p in problems))

    def variants(self) -> Iterator[tuple[int, float, str, tuple[tuple[int, float], ...]]]:
        """(uf, s, method, orientation) in the order of data_aug.py's loops."""
        for uf in self.upscale_factors:
            for s in self.scales:
                for m in self.upsampling:
                    for orient in self.orientations():
                        yield uf, s, m, orient

    def orientations(self) -> list[tuple[tuple[int, float], ...]]:
        """Each entry is the sequence of (flip, angle) steps applied to the untransformed image."""
        out = []
        history: list[tuple[int, float]] = []
        for f in self.flips:
            if self.cumulative:  # data_aug.py: the image is never reset inside these loops
                history.append((f, 0.0))
            for a in self.rotations:
                if self.cumulative:
                    history.append((0, a))
                    out.append(tuple(history))
                else:
                    out.append(((f, a),))
        return out


# -- geometry -----------------------------------------------------------------------------------

def hr_size(size: tuple[int, int], s: float, uf: int) -> tuple[int, int]:
    w, h = math.floor(size[0] * s), math.floor(size[1] * s)
    return w - w % uf, h - h % uf


def rotated_size(size: tuple[int, int], angle: float) -> tuple[int, int]:
    a = angle % 360
    if a in (0, 180):
        return size
    if a in (90, 270):
        return size[1], size[0]
    return Image.new("1", size).rotate(angle, expand=True).size


def oriented_size(size: tuple[int, int], orient: Sequence[tuple[int, float]]) -> tuple[int, int]:
    for _, a in orient:
        size = rotated_size(size, a)
    return size


def grid(size: tuple[int, int], opts: PrepareOptions) -> list[tuple[int, int]]:
    """Top-left corners of the HR patches on a (W, H) image."""
    w, h = size
    xs = [i * opts.stride for i in range(w // opts.stride) if i * opts.stride + opts.width <= w]
    ys = [j * opts.stride for j in range(h // opts.stride) if j * opts.stride + opts.height <= h]
    return [(x, y) for x in xs for y in ys]


def count_patches(sizes: Sequence[tuple[int, int]], opts: PrepareOptions) -> int:
    """Patches the options produce for images of these (W, H) sizes (no pixel is read)."""
    total = 0
    for size in sizes:
        for uf, s, _, orient in opts.variants():
            total += len(grid(oriented_size(hr_size(size, s, uf), orient), opts))
    return total


def patch_shapes(opts: PrepareOptions, uf: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    ph, pw = opts.height - 2 * opts.padding, opts.width - 2 * opts.padding
    lh, lw = (ph, pw) if opts.same_size else (ph // uf, pw // uf)
    tail = () if opts.single_y else (3,)
    return (ph, pw, *tail), (lh, lw, *tail)


# -- pixels -------------------------------------------------------------------------------------

def resize(img: Image.Image, size: tuple[int, int], method: str) -> Image.Image:
    if img.size == size:
        return img
    if method == "matlab":
        import torch

        from srcore.data.color import round_half_even
        from srcore.data.resize import imresize

        arr = torch.from_numpy(np.asarray(img, dtype=np.float64)).permute(2, 0, 1).unsqueeze(0)
        out = round_half_even(imresize(arr, size=(size[1], size[0]))[0].clamp_(0, 255)).permute(1, 2, 0).numpy()
        return Image.fromarray(out.astype(np.uint8), "RGB")
    return img.resize(size, _PIL[method])


def orient_image(img: Image.Image, orient: Sequence[tuple[int, float]]) -> Image.Image:
    for f, a in orient:
        if f in (1, 3):
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if f in (2, 3):
            img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if a % 360:
            img = img.rotate(a, expand=True)
    return img


def y_uint8(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr Y of uint8 RGB (rounded half up, exact integer arithmetic)."""
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    return ((65481 * r + 128553 * g + 24966 * b + 127500) // 255000 + 16).astype(np.uint8)


def to_y_image(img: Image.Image) -> Image.Image:
    return Image.fromarray(y_uint8(np.asarray(img)), "L")


def cut(hr: Image.Image, lr: Image.Image, uf: int, opts: PrepareOptions) -> tuple[np.ndarray, np.ndarray]:
    """All patches of one oriented (HR, LR) pair: uint8 arrays (n, H', W'[, 3])."""
    hr_a, lr_a = np.asarray(hr), np.asarray(lr)
    if opts.single_y and hr_a.ndim == 3:
        hr_a, lr_a = y_uint8(hr_a), y_uint8(lr_a)
    p, d = opts.padding, (1 if opts.same_size else uf)
    hs, ls = patch_shapes(opts, uf)
    corners = grid(hr.size, opts)
    out_hr = np.empty((len(corners), *hs), np.uint8)
    out_lr = np.empty((len(corners), *ls), np.uint8)
    for k, (x, y) in enumerate(corners):
        out_hr[k] = hr_a[y + p : y + opts.height - p, x + p : x + opts.width - p]
        out_lr[k] = lr_a[(y + p) // d : (y + opts.height - p) // d, (x + p) // d : (x + opts.width - p) // d]
    return out_hr, out_lr


def image_groups(path: Path, opts: PrepareOptions) -> Iterator[tuple[int, str, np.ndarray, np.ndarray]]:
    """(uf, group tag, HR patches, LR patches) for every variant of one image, one at a time."""
    try:
        with Image.open(path) as im:
            img = im.convert("RGB")
    except OSError as exc:
        raise SrcoreError(f"cannot read image {path}: {exc}") from None
    # Y commutes with flips and right-angle rotations: convert once per resized pair then.
    y_first = opts.single_y and all(a % 90 == 0 for a in opts.rotations)
    orientations = opts.orientations()
    for uf in opts.upscale_factors:
        for s in opts.scales:
            for m in opts.upsampling:
                size = hr_size(img.size, s, uf)
                if min(size) < uf:
                    continue
                hr = resize(img, size, "bicubic")
                lr = resize(hr, (size[0] // uf, size[1] // uf), m)
                if opts.same_size:
                    lr = resize(lr, size, m)
                if y_first:
                    hr, lr = to_y_image(hr), to_y_image(lr)
                for orient in orientations:
                    hr_o, lr_o = orient_image(hr, orient), orient_image(lr, orient)
                    tag = f"uf{uf}_s{s:g}_{m}_" + "_".join(f"f{f}r{a:g}" for f, a in orient)
                    yield uf, tag, *cut(hr_o, lr_o, uf, opts)


# -- writers ------------------------------------------------------------------------------------

@dataclass
class PrepareResult:
    output: Path
    images: int
    patches: int
    hr_shape: tuple[int, ...]
    lr_shape: tuple[int, ...]


def image_sizes(files: Sequence[Path]) -> list[tuple[int, int]]:
    """(W, H) of each file from its header (PIL decodes no pixel here)."""
    sizes = []
    for p in files:
        try:
            with Image.open(p) as im:
                sizes.append(im.size)
        except OSError as exc:
            raise SrcoreError(f"cannot read image {p}: {exc}") from None
    return sizes


def select_files(input_dir: Path, number: int | None) -> list[Path]:
    from srcore.data.io import list_images

    files = list_images(input_dir)
    if not files:
        raise SrcoreError(f"no images in {input_dir}")
    return files[:number] if number else files


H5_OVERHEAD = 1 << 16  # metadata and attributes of the HDF5 file, generously
FS_BLOCK = 4096  # a small PNG still takes a whole filesystem block


@dataclass
class PreparePlan:
    """What a run will write, known before any pixel is read: used to warn, refuse and allocate."""

    files: list[Path]
    patches: int
    hr_patch: tuple[int, ...]
    lr_patch: tuple[int, ...]

    @property
    def h5_bytes(self) -> int:
        return self.patches * (math.prod(self.hr_patch) + math.prod(self.lr_patch)) + H5_OVERHEAD

    @property
    def png_bytes(self) -> int:
        """Upper estimate: PNG never much exceeds the raw pixels, each file rounded up to a block."""
        def on_disk(n: int) -> int:
            return -(-(n + 1024) // FS_BLOCK) * FS_BLOCK

        return self.patches * (on_disk(math.prod(self.hr_patch)) + on_disk(math.prod(self.lr_patch)))


def plan_prepare(input_dir: Path, opts: PrepareOptions) -> PreparePlan:
    """Files, patch count and patch shapes of a run, from image headers and the options."""
    opts.validate()
    files = select_files(input_dir, opts.number)
    total = count_patches(image_sizes(files), opts)
    if total == 0:
        raise SrcoreError(f"the options give no patch for the {len(files)} image(s) in {input_dir}")
    hs, ls = patch_shapes(opts, opts.upscale_factors[0])
    return PreparePlan(files, total, hs, ls)




def write_error(exc: BaseException, output: Path) -> SrcoreError:
    """One line for a failed write: a full disk, or the system's reason."""
    if is_disk_full(exc):
        return SrcoreError(f"no space left on device writing {output}")
    code = getattr(exc, "errno", None)
    reason = os.strerror(code) if code else (str(exc).splitlines() or [type(exc).__name__])[0]
    return SrcoreError(f"cannot write {output}: {reason}")


def _abandon_h5(f: Any, tmp: Path) -> None:
    """Close and delete a failed HDF5 file. The file is emptied first: HDF5 writes metadata on
    close, and a close that fails on a full disk leaves a handle that crashes Python at exit."""
    with contextlib.suppress(OSError):
        os.truncate(tmp, 0)
    with contextlib.suppress(Exception):
        f.close()
    tmp.unlink(missing_ok=True)


def generation_starts(plan: PreparePlan, opts: PrepareOptions) -> list[int]:
    """Generation index of each file's first patch, and the total last (from headers only)."""
    starts = [0]
    for size in image_sizes(plan.files):
        starts.append(starts[-1] + count_patches([size], opts))
    return starts


def _fill_h5(f: Any, plan: PreparePlan, opts: PrepareOptions, attrs: dict[str, str],
             progress: Callable[[int], Any] | None, start: int = 0, stop: int | None = None) -> None:
    """Write positions [start, stop) of the file's patch order (all of it by default) into ``f``.

    Position p holds the patch of generation index g with order[g] = p (a seeded permutation, or
    the identity with --no-shuffle), so a shard written with a range equals that slice of the
    single file. An unshuffled range cuts only the images it overlaps."""
    total = plan.patches
    stop = total if stop is None else stop
    order = np.random.default_rng(opts.seed).permutation(total) if opts.shuffle else np.arange(total)
    # contiguous layout: scattered (shuffled) patch writes are ~7x faster than 1-patch chunks
    d_hr = f.create_dataset("hr", (stop - start, *plan.hr_patch), np.uint8)
    d_lr = f.create_dataset("lr", (stop - start, *plan.lr_patch), np.uint8)
    for d in (d_hr, d_lr):
        d.attrs.update(attrs)
    starts = generation_starts(plan, opts)
    if starts[-1] != total:
        raise SrcoreError(f"internal error: planned {total} patches but the images give {starts[-1]}")
    for i, path in enumerate(plan.files):
        if not opts.shuffle and (starts[i + 1] <= start or starts[i] >= stop):
            continue
        gen = starts[i]
        for _, _, hr_p, lr_p in image_groups(path, opts):
            n = len(hr_p)
            if gen + n > starts[i + 1]:
                raise SrcoreError(f"internal error: more patches than counted ({path})")
            dest = order[gen : gen + n]
            keep = np.flatnonzero((dest >= start) & (dest < stop))
            if len(keep):
                sort = keep[np.argsort(dest[keep])]
                d_hr[dest[sort] - start] = hr_p[sort]
                d_lr[dest[sort] - start] = lr_p[sort]
            gen += n
            if progress and len(keep):
                progress(len(keep))
        if gen != starts[i + 1]:
            raise SrcoreError(f"internal error: counted {starts[i + 1] - starts[i]} patches in {path} but cut "
                              f"{gen - starts[i]}")


def check_h5_shapes(opts: PrepareOptions) -> None:
    if len(set(patch_shapes(opts, uf)[1] for uf in opts.upscale_factors)) > 1:
        raise SrcoreError(
            "one HDF5 file holds one LR patch shape: several upscale factors need --same-size (as VDSR does)"
        )


def write_h5(tmp: Path, output: Path, fill: Callable[[Any], Any]) -> None:
    """Create the HDF5 file ``tmp`` and ``fill`` it; on any failure it is removed, and a write
    error (a full disk above all) becomes one line naming ``output``. Renaming is the caller's."""
    import h5py

    try:
        f = h5py.File(tmp, "w")
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, output) from None
    try:
        fill(f)
        f.flush()  # a full disk fails here, while the file can still be abandoned cleanly
    except BaseException as exc:
        _abandon_h5(f, tmp)
        if isinstance(exc, OSError) or (isinstance(exc, RuntimeError) and is_disk_full(exc)):
            raise write_error(exc, output) from None
        raise
    try:
        f.close()
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, output) from None


def _patch_attrs(input_dir: Path, opts: PrepareOptions) -> dict[str, str]:
    attrs = {k: str(v) for k, v in asdict(opts).items()}
    attrs["input"] = str(input_dir)
    return attrs


def prepare_h5(
    input_dir: Path, output: Path, opts: PrepareOptions, progress: Callable[[int], Any] | None = None,
    shards: int | None = None, jobs: int = 1,
) -> PrepareResult:
    """Write the HDF5 patch file (see module doc); ``progress(n)`` is called per written patch group.

    With ``shards`` N: the folder ``<output>.shards`` of files of N patches each (see
    ``write_shards``), written by ``jobs`` processes; the shuffled order is refused there (a slice
    of it draws from every image, so each shard would cut them all).

    A full disk or an interruption removes the temporary output and raises (``SrcoreError`` for
    the disk, naming the output); an existing ``output`` is replaced (the CLI asks first)."""
    from srcore.outputs import make_output_dir, temp_path

    check_h5_shapes(opts)
    if shards and opts.shuffle:
        raise SrcoreError(NO_SHUFFLED_SHARDS)
    plan = plan_prepare(input_dir, opts)
    make_output_dir(output.parent)
    attrs = _patch_attrs(input_dir, opts)
    total = plan.patches
    result = PrepareResult(output, len(plan.files), total, (total, *plan.hr_patch), (total, *plan.lr_patch))
    if shards:
        task = functools.partial(_patch_shard, plan, opts, attrs, shards_dir(output))
        result.output = write_shards(shards_dir(output), total, shards, task, jobs=jobs, progress=progress)
        return result
    tmp = temp_path(output)
    write_h5(tmp, output, lambda f: _fill_h5(f, plan, opts, attrs, progress))
    publish_file(tmp, output)
    return result


NO_SHUFFLED_SHARDS = ("--shards needs --no-shuffle: a shard of the shuffled order draws from every image "
                      "(training samples patches at random anyway)")


def _patch_shard(plan: PreparePlan, opts: PrepareOptions, attrs: dict[str, str], shown: Path, path: Path,
                 start: int, stop: int, progress: Callable[[int], Any] | None = None) -> None:
    """One shard file (patch positions [start, stop)); errors name ``shown``, the output."""
    write_h5(path, shown, lambda f: _fill_h5(f, plan, opts, attrs, progress, start, stop))


# -- shards -------------------------------------------------------------------------------------

def shards_dir(output: Path) -> Path:
    """``OUT.h5`` -> ``OUT.h5.shards``, the folder a sharded prepare writes."""
    return output.with_name(output.name + ".shards")


def shard_ranges(total: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) of each shard: all full except the last."""
    return [(a, min(a + size, total)) for a in range(0, total, size)]


def shard_name(k: int) -> str:
    return f"shard-{k:05d}.h5"


def ignore_sigint() -> None:
    """Workers leave Ctrl-C to the parent, which stops them and removes the temporary folder."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_shard(args: tuple[Callable[..., Any], Path, int, int]) -> int:
    task, path, start, stop = args
    task(path, start, stop)
    return stop - start


def write_shards(
    out_dir: Path, total: int, size: int, task: Callable[..., Any], *, jobs: int = 1,
    progress: Callable[[int], Any] | None = None,
) -> Path:
    """Write ``total`` items as HDF5 shards of ``size`` and their ``index.json`` into ``out_dir``.

    ``task(path, start, stop[, progress])`` writes items [start, stop) as one file (a picklable
    callable: with ``jobs`` > 1 it runs in that many spawned processes, each writing its own
    files). Everything goes into ``.<name>.incomplete-<pid>`` beside ``out_dir``, renamed when the
    index (written last) is in; any failure or interruption stops the workers and removes it."""
    import json
    import multiprocessing

    from srcore.atomic import write_atomic
    from srcore.data.h5 import SHARDS_FORMAT, SHARDS_INDEX
    from srcore.outputs import temp_path

    ranges = shard_ranges(total, size)
    tmp = temp_path(out_dir)
    pool = None
    try:
        tmp.mkdir(parents=True)
        jobs_args = [(task, tmp / shard_name(k), a, b) for k, (a, b) in enumerate(ranges)]
        if jobs <= 1 or len(ranges) == 1:
            for t, path, a, b in jobs_args:
                t(path, a, b, progress)
        else:
            pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(ranges)), initializer=ignore_sigint)
            for n in pool.imap_unordered(_run_shard, jobs_args):
                if progress:
                    progress(n)
            pool.close()
            pool.join()
            pool = None
        index = {"format": SHARDS_FORMAT, "version": 1, "patches": total,
                 "shards": [{"file": shard_name(k), "patches": b - a} for k, (a, b) in enumerate(ranges)]}
        write_atomic(tmp / SHARDS_INDEX, json.dumps(index, indent=1) + "\n", "shard index")
        replace_dir(tmp, out_dir)
    except BaseException as exc:
        if pool is not None:
            pool.terminate()
            pool.join()
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(exc, out_dir) from None
        raise
    return out_dir


@contextlib.contextmanager
def building_folders(tmps: Sequence[Path], finals: Sequence[Path]) -> Iterator[None]:
    """Create the temporary folders ``tmps``, let the caller fill them, then rename each to its
    ``finals`` entry (``replace_dir``); on any failure or interrupt remove them all, so nothing
    half-written is left, and turn an OSError into one line naming the first output."""
    try:
        for t in tmps:
            t.mkdir(parents=True, exist_ok=True)
        yield
        for t, d in zip(tmps, finals):
            replace_dir(t, d)
    except BaseException as exc:
        for t in tmps:
            shutil.rmtree(t, ignore_errors=True)
        if isinstance(exc, OSError):
            raise write_error(exc, finals[0]) from None
        raise


def publish_file(tmp: Path, output: Path) -> None:
    """Rename the finished temporary file into place; if that fails, remove it (one-line error)."""
    try:
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise write_error(exc, output) from None


def replace_dir(tmp: Path, final: Path) -> None:
    """Rename the finished folder ``tmp`` to ``final``; an existing ``final`` (the caller checked
    --overwrite) is moved aside first and deleted only once the new one is in place."""
    if not (final.exists() or final.is_symlink()):
        os.replace(tmp, final)
        return
    old = final.with_name(f".{final.name}.replaced.incomplete-{os.getpid()}")
    os.replace(final, old)
    os.replace(tmp, final)
    if old.is_dir() and not old.is_symlink():
        shutil.rmtree(old, ignore_errors=True)
    else:
        old.unlink(missing_ok=True)


def check_png_folders(*folders: Path) -> None:
    """PNG outputs go to absent or empty folders only (never replaced, even with --overwrite)."""
    for d in folders:
        if d.is_file():
            raise SrcoreError(f"output folder {d} is a file")
        if d.exists() and any(d.iterdir()):
            raise SrcoreError(f"output folder {d} exists and is not empty")


def prepare_png(
    input_dir: Path, out_hr: Path, out_lr: Path, opts: PrepareOptions, progress: Callable[[int], Any] | None = None
) -> PrepareResult:
    """Write patches as PNG files ``<stem>_<variant>_<k>.png`` into two folders (renamed when complete)."""
    from srcore.outputs import temp_path

    opts.validate()
    files = select_files(input_dir, opts.number)
    check_png_folders(out_hr, out_lr)
    tmps = [temp_path(d) for d in (out_hr, out_lr)]
    count = 0
    with building_folders(tmps, (out_hr, out_lr)):
        for path in files:
            for _, tag, hr_p, lr_p in image_groups(path, opts):
                for k in range(len(hr_p)):
                    name = f"{path.stem}_{tag}_{k:05d}.png"
                    Image.fromarray(hr_p[k]).save(tmps[0] / name)
                    Image.fromarray(lr_p[k]).save(tmps[1] / name)
                count += len(hr_p)
                if progress:
                    progress(len(hr_p))
    hs, ls = patch_shapes(opts, opts.upscale_factors[0])
    return PrepareResult(out_hr, len(files), count, (count, *hs), (count, *ls))
