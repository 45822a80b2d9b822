"""Sub-images: BasicSR's ``extract_subimages`` (480x480 crops, step 240, of 2K photographs).

Training cuts small patches (128 px) from large photographs; decoding a whole 2K image for one
patch is what makes folder datasets slow. Cutting each image once into overlapping sub-images
(stored as PNG files, in an LMDB or in an HDF5 file) makes a sample decode ~1/10 of the pixels.

Geometry (BasicSR's): along each axis the crops start at ``range(0, L - size + 1, step)``, plus a
last crop snapped to the border (``L - size``) when the remainder past the last regular crop is
larger than ``thresh`` (default 0: always, so every pixel is covered; BasicSR skips smaller
remainders in the same way). Crops are numbered row-major from 1: ``<stem>_s001`` ... (3 digits,
more when an image has over 999). An image smaller than ``size`` in either direction has no crop
and is refused up front (BasicSR's script fails on it with an IndexError).

With a ``scale`` s (paired LR, or an output that stores LR): the HR is first cropped at the
bottom/right to a multiple of s (to s x the LR size for ``lr_files``), ``size`` and ``step`` must
be multiples of s, and the LR sub-image of HR crop (y, x, size) is (y/s, x/s, size/s) -- the
same crops BasicSR's separate LR run (size/s, step/s) cuts when the HR is s x the LR. Without
LR files the LR is MATLAB bicubic of the whole (cropped) image, stored as 8 bits.

Pixels are 8-bit RGB: gray images are replicated to 3 channels and alpha is dropped, as srcore
reads images for training; 16-bit images are refused. Arrays here are (H, W, 3) uint8 RGB.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from srcore.errors import SrcoreError
from srcore.outputs import _listing  # 'a, b, c and 4 more', as every refusal lists paths


@dataclass(frozen=True)
class SubimageOptions:
    size: int = 480
    step: int = 240
    thresh: int = 0
    scale: int | None = None

    def problems(self) -> list[str]:
        out = []
        if self.size < 1 or self.step < 1:
            out.append(f"--subimages {self.size} and --step {self.step} must be positive")
        elif self.step > self.size:
            out.append(f"--step {self.step} is larger than --subimages {self.size}: pixels between crops would be lost")
        if self.thresh < 0:
            out.append(f"--thresh-size {self.thresh} must be >= 0")
        if self.scale is not None:
            if self.scale < 1:
                out.append(f"--scale {self.scale} must be positive")
            elif self.size % self.scale or self.step % self.scale:
                out.append(f"--subimages {self.size} and --step {self.step} must be multiples of --scale {self.scale}")
        return out


def positions(length: int, size: int, step: int, thresh: int = 0) -> list[int]:
    """Start of each crop along one axis (BasicSR's h_space / w_space)."""
    if length < size:
        return []
    out = list(range(0, length - size + 1, step))
    if length - (out[-1] + size) > thresh:
        out.append(length - size)
    return out


def boxes(h: int, w: int, opts: SubimageOptions) -> list[tuple[int, int]]:
    """(top, left) of each sub-image of an h x w image, row-major (BasicSR's numbering order)."""
    return [(y, x) for y in positions(h, opts.size, opts.step, opts.thresh)
            for x in positions(w, opts.size, opts.step, opts.thresh)]


def subimage_key(stem: str, k: int) -> str:
    """Name of the k-th (1-based) sub-image, without extension: ``0001_s001``."""
    return f"{stem}_s{k:03d}"


# -- planning (headers only) -----------------------------------------------------------------------

@dataclass
class SubimagePlan:
    """What a run writes, known before any pixel is decoded."""

    files: list[Path]
    lr_files: list[Path] | None
    sizes: list[tuple[int, int]]  # (h, w) of each HR image after the scale crop
    opts: SubimageOptions
    make_lr: bool  # an output needs LR sub-images (from lr_files, else MATLAB bicubic)

    def __post_init__(self) -> None:
        self.counts = [len(boxes(h, w, self.opts)) for h, w in self.sizes]
        self.starts = np.concatenate([[0], np.cumsum(self.counts)]).astype(int).tolist()

    @property
    def total(self) -> int:
        return self.starts[-1]

    @property
    def lr_size(self) -> int:
        return self.opts.size // (self.opts.scale or 1)

    def keys(self, i: int) -> list[str]:
        return [subimage_key(self.files[i].stem, k + 1) for k in range(self.counts[i])]

    @property
    def raw_bytes(self) -> int:
        """Bytes of the uint8 pixels written (HR, plus LR when made)."""
        lr = self.lr_size**2 * 3 if self.make_lr else 0
        return self.total * (self.opts.size**2 * 3 + lr)


def _header(path: Path) -> tuple[tuple[int, int], str]:
    """((h, w), PIL mode) from the file header; no pixel is decoded."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return (im.size[1], im.size[0]), im.mode
    except OSError as exc:
        raise SrcoreError(f"cannot read image {path}: {exc}") from None


WIDE_MODES = ("I", "I;16", "I;16B", "I;16L", "F")


def plan_subimages(
    files: Sequence[Path], opts: SubimageOptions, lr_files: Sequence[Path] | None = None, make_lr: bool = False
) -> SubimagePlan:
    """Check every image (sizes, bit depth, pairs, names) from headers and report all problems at once."""
    problems = opts.problems()
    if (lr_files is not None or make_lr) and opts.scale is None:
        problems.append("LR sub-images need --scale")
    if problems:
        raise SrcoreError("; ".join(problems))
    s = opts.scale or 1
    heads = [_header(p) for p in files]
    lr_heads = [_header(p) for p in lr_files] if lr_files is not None else None
    small, wide, mismatch, sizes = [], [], [], []
    for i, (path, ((h, w), mode)) in enumerate(zip(files, heads)):
        if mode in WIDE_MODES:
            wide.append(path.name)
        if lr_heads is not None:
            (lh, lw), lmode = lr_heads[i]
            if lmode in WIDE_MODES:
                wide.append(lr_files[i].name)  # type: ignore[index]
            if (h // s, w // s) != (lh, lw):
                mismatch.append(f"{path.name} {h}x{w} / {lr_files[i].name} {lh}x{lw}")  # type: ignore[index]
            h, w = lh * s, lw * s
        else:
            h, w = h - h % s, w - w % s
        if min(h, w) < opts.size:
            small.append(f"{path.name} ({h}x{w})")
        sizes.append((h, w))
    stems: dict[str, Path] = {}
    dup = []
    for p in files:
        if p.stem in stems:
            dup.append(f"{stems[p.stem].name}/{p.name}")
        stems[p.stem] = p
    if small:
        problems.append(f"{len(small)} image(s) smaller than --subimages {opts.size}: {_listing(small)}")
    if wide:
        problems.append(f"{len(wide)} image(s) are not 8-bit (sub-images are stored as 8-bit): {_listing(wide)}")
    if mismatch:
        problems.append(f"{len(mismatch)} LR image(s) are not 1/{s} of their HR: {_listing(mismatch)}")
    if dup:
        problems.append(f"images share a name, so their sub-images would too: {_listing(dup)}")
    if problems:
        raise SrcoreError("; ".join(problems))
    return SubimagePlan(list(files), list(lr_files) if lr_files is not None else None, sizes, opts, make_lr)


# -- pixels -------------------------------------------------------------------------------------------

def read_rgb8(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB: gray replicated, alpha dropped (srcore's reading rules, ``io.rgb_array``)."""
    from srcore.data.io import read_array, rgb_array

    arr = read_array(path)
    if arr.dtype != np.uint8:
        raise SrcoreError(f"{path} is {arr.dtype}, not 8-bit")
    return np.ascontiguousarray(rgb_array(arr, path).transpose(1, 2, 0))


def matlab_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB imresize(hr, 1/scale, 'bicubic') of an RGB uint8 image, rounded to uint8."""
    from PIL import Image

    from srcore.data.prepare import resize

    h, w = hr.shape[:2]
    return np.asarray(resize(Image.fromarray(hr), (w // scale, h // scale), "matlab"))


def cut_image(plan: SubimagePlan, i: int) -> tuple[list[str], np.ndarray, np.ndarray | None]:
    """Keys, HR sub-images (n, size, size, 3) and LR sub-images (or None) of image ``i``."""
    o, (h, w) = plan.opts, plan.sizes[i]
    hr = read_rgb8(plan.files[i])[:h, :w]
    corners = boxes(h, w, o)
    out_hr = np.stack([hr[y : y + o.size, x : x + o.size] for y, x in corners])
    out_lr = None
    if plan.make_lr:
        s, ls = o.scale or 1, plan.lr_size
        lr = read_rgb8(plan.lr_files[i]) if plan.lr_files is not None else matlab_lr(hr, s)
        out_lr = np.stack([lr[y // s : y // s + ls, x // s : x // s + ls] for y, x in corners])
    return plan.keys(i), out_hr, out_lr


def iter_range(plan: SubimagePlan, start: int, stop: int) -> Iterator[tuple[list[str], np.ndarray, np.ndarray | None]]:
    """The sub-images with global index in [start, stop), image by image (only overlapping images are read)."""
    for i in range(len(plan.files)):
        a, b = plan.starts[i], plan.starts[i + 1]
        if b <= start or a >= stop or a == b:
            continue
        keys, hr, lr = cut_image(plan, i)
        lo, hi = max(start, a) - a, min(stop, b) - a
        yield keys[lo:hi], hr[lo:hi], (lr[lo:hi] if lr is not None else None)


Encoded = tuple[list[str], list[Any], list[Any] | None]


def _cut_encoded(plan: SubimagePlan, encode: Callable[[np.ndarray], Any], i: int) -> Encoded:
    keys, hr, lr = cut_image(plan, i)
    return keys, [encode(x) for x in hr], ([encode(x) for x in lr] if lr is not None else None)


@contextlib.contextmanager
def encoded_images(
    plan: SubimagePlan, encode: Callable[[np.ndarray], Any], jobs: int = 1
) -> Iterator[Iterator[Encoded]]:
    """(keys, HR values, LR values) of each image in order, cut and encoded (PNG bytes; arrays
    with ``np.ascontiguousarray``) by ``jobs`` spawned processes (``encode`` must pickle);
    leaving the block early stops them."""
    import functools
    import multiprocessing

    from srcore.data.prepare import ignore_sigint

    work = functools.partial(_cut_encoded, plan, encode)
    todo = [i for i, n in enumerate(plan.counts) if n]
    if jobs <= 1 or len(todo) < 2:
        yield map(work, todo)
        return
    pool = multiprocessing.get_context("spawn").Pool(min(jobs, len(todo)), initializer=ignore_sigint)
    try:
        yield pool.imap(work, todo)
        pool.close()
    finally:
        pool.terminate()
        pool.join()


# -- writers ------------------------------------------------------------------------------------------

def encode_png(rgb: np.ndarray, level: int) -> bytes:
    """PNG bytes as BasicSR writes them: OpenCV (BGR), IMWRITE_PNG_COMPRESSION ``level``."""
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise SrcoreError("OpenCV could not encode a PNG sub-image")
    return buf.tobytes()


def write_folders(plan: SubimagePlan, out_hr: Path, out_lr: Path | None, level: int = 3,
                  progress: Callable[[int], Any] | None = None, jobs: int = 1) -> None:
    """PNG files ``<key>.png`` into ``out_hr`` (and ``out_lr``): BasicSR's sub-image folders.
    Written into temporary folders renamed when complete (existing ones replaced: the CLI asks)."""
    import functools

    from srcore.data.prepare import building_folders
    from srcore.outputs import temp_path

    outs = [out_hr] + ([out_lr] if out_lr is not None else [])
    tmps = [temp_path(d) for d in outs]
    with building_folders(tmps, outs), \
            encoded_images(plan, functools.partial(encode_png, level=level), jobs) as images:
        for keys, hr, lr in images:
            for k, key in enumerate(keys):
                (tmps[0] / f"{key}.png").write_bytes(hr[k])
                if lr is not None and len(tmps) > 1:
                    (tmps[1] / f"{key}.png").write_bytes(lr[k])
            if progress:
                progress(len(keys))


def _fill_h5(f: Any, plan: SubimagePlan, attrs: dict[str, str], start: int, stop: int,
             progress: Callable[[int], Any] | None, jobs: int = 1) -> None:
    import h5py

    n, s, ls = stop - start, plan.opts.size, plan.lr_size
    d_hr = f.create_dataset("hr", (n, s, s, 3), np.uint8)
    d_lr = f.create_dataset("lr", (n, ls, ls, 3), np.uint8)
    d_keys = f.create_dataset("keys", (n,), h5py.string_dtype())
    for d in (d_hr, d_lr):
        d.attrs.update(attrs)
    at = 0
    with contextlib.ExitStack() as stack:
        if jobs > 1 and (start, stop) == (0, plan.total):  # the single file: images cut in parallel
            images: Any = stack.enter_context(encoded_images(plan, np.ascontiguousarray, jobs))
        else:
            images = iter_range(plan, start, stop)
        for keys, hr, lr in images:
            d_hr[at : at + len(keys)] = np.asarray(hr)
            d_lr[at : at + len(keys)] = np.asarray(lr)
            d_keys[at : at + len(keys)] = keys
            at += len(keys)
            if progress:
                progress(len(keys))
    if at != n:
        raise SrcoreError(f"internal error: planned {n} sub-images but cut {at}")


def h5_attrs(plan: SubimagePlan, source: Path) -> dict[str, str]:
    o = plan.opts
    lr = str(plan.lr_files[0].parent) if plan.lr_files else f"MATLAB bicubic x{o.scale}"
    return {"layout": "subimages", "subimages": str(o.size), "step": str(o.step), "thresh_size": str(o.thresh),
            "scale": str(o.scale), "input": str(source), "lr": lr}


def write_h5_range(plan: SubimagePlan, attrs: dict[str, str], shown: Path, path: Path, start: int, stop: int,
                   progress: Callable[[int], Any] | None = None, jobs: int = 1) -> None:
    """One HDF5 file (``hr``, ``lr``, ``keys``) of sub-images [start, stop): the single file or a
    shard, written at ``path``; errors name ``shown``, the output."""
    from srcore.data.prepare import write_h5

    write_h5(path, shown, lambda f: _fill_h5(f, plan, attrs, start, stop, progress, jobs))


def write_h5_file(plan: SubimagePlan, source: Path, output: Path, shards: int | None = None, jobs: int = 1,
                  progress: Callable[[int], Any] | None = None) -> Path:
    """The sub-images as one HDF5 patch file (read by H5Patches), or as ``<output>.shards``
    (``jobs`` processes, each writing whole shards; for one file they cut the images)."""
    import functools

    from srcore.data.prepare import publish_file, shards_dir, write_shards
    from srcore.outputs import temp_path

    attrs = h5_attrs(plan, source)
    if shards:
        task = functools.partial(write_h5_range, plan, attrs, shards_dir(output))
        return write_shards(shards_dir(output), plan.total, shards, task, jobs=jobs, progress=progress)
    task = functools.partial(write_h5_range, plan, attrs, output)
    tmp = temp_path(output)
    task(tmp, 0, plan.total, progress, jobs)
    publish_file(tmp, output)
    return output


def estimate_bytes(plan: SubimagePlan, kind: str, shards: int | None = None) -> int:
    """Upper estimate of the output's size, for the free-space check before the run.

    HDF5: the pixels, the keys and each file's metadata. LMDB and PNG folders: the pixels plus a
    block per value (PNG never exceeds the raw pixels by much; an LMDB value takes whole pages;
    a small file takes a whole block), plus the LMDB's lock file and B-tree."""
    from srcore.data.prepare import FS_BLOCK, H5_OVERHEAD

    if kind == "h5":
        files = -(-plan.total // shards) if shards else 1
        return plan.raw_bytes + plan.total * 64 + files * H5_OVERHEAD
    values = plan.total * (2 if plan.make_lr else 1)
    return plan.raw_bytes + values * FS_BLOCK + (1 << 20)
