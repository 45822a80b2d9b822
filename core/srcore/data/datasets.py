"""Training and evaluation datasets.

``make_train_dataset`` returns a map-style ``Dataset`` of dicts of CHW float32 tensors:
``lr``, ``hr`` already in the model's colour space (Y when ``info.in_channels == 1``; ``lr``
bicubic-upsampled to the HR size when ``info.pre_upsampled``) and ``lr_real`` (a real-LR patch
of another image, for unpaired training) when ``cfg.lr_real`` is set. Sources: an HR folder
(LR paired by file stem from ``cfg.lr``, or made on the fly by ``cfg.degradation``), a named
set under the data root, an HDF5 patch file (or a directory of HDF5 shards), or ``builtin:skimage``.
HDF5 datasets also read whole batches (``H5PatchDataset.get_batch``): the same samples as
``dataset[i]`` under each sample's seed, from one read per batch and augmentation per batch.

``make_eval_dataset`` yields whole images ``{name, lr, hr[, hr8]}`` in RGB: HR cropped to a multiple of
the scale, LR from a paired folder or from a degradation (default: MATLAB bicubic stored as
8 bits, the benchmark protocol). Random degradation parameters of eval sets are seeded per
image, so every run sees the same LR.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from srcore.data.color import rgb_to_y
from srcore.data.h5 import H5Patches, ShardedH5Patches, is_h5, is_h5_shards
from srcore.data.io import array_to_tensor, array_to_uint8, list_images, read_array, read_image
from srcore.data.resize import imresize
from srcore.data.sets import BUILTIN_SKIMAGE, resolve_set, skimage_photos
from srcore.data.transforms import (
    crop_offsets,
    dihedral_batch,
    lr_crop_size,
    mod_crop,
    paired_random_crop,
    randint,
    random_crop,
    random_dihedral,
    random_orientation,
)
from srcore.errors import SrcoreError
from srcore.registry import ModelInfo, Registries


def _sample_generator(seed: int | None = None, gen: torch.Generator | None = None) -> torch.Generator:
    """A generator seeded from torch's global RNG, which DataLoader seeds per worker (and
    ``SeededItems`` per sample). With ``seed``: the generator torch's global RNG seeded with
    ``seed`` would give, made without touching that RNG (``gen`` is reseeded and returned)."""
    if seed is None:
        return torch.Generator().manual_seed(int(torch.randint(0, 2**62, ())))
    gen = (gen or torch.Generator()).manual_seed(seed)
    return gen.manual_seed(int(torch.randint(0, 2**62, (), generator=gen)))


def to_model_space(
    lr: torch.Tensor, hr: torch.Tensor, info: ModelInfo, scale: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """RGB/Y selection and pre-upsampling, the last step of every training sample (CHW, or an NCHW batch)."""
    if info.in_channels == 1:
        lr = rgb_to_y(lr) if lr.shape[-3] == 3 else lr
        hr = rgb_to_y(hr) if hr.shape[-3] == 3 else hr
    elif lr.shape[-3] != info.in_channels or hr.shape[-3] != info.out_channels:
        raise SrcoreError(
            f"the data has {lr.shape[-3]}-channel patches but the model takes {info.in_channels} channel(s) "
            "(a Y-only HDF5 file cannot train an RGB model)"
        )
    if info.pre_upsampled and lr.shape[-2:] != hr.shape[-2:]:
        # one image at a time: a batched resize could round differently from the per-sample path
        size = tuple(hr.shape[-2:])
        up = torch.cat([imresize(x.unsqueeze(0).double(), scale, size=size) for x in lr.reshape(-1, *lr.shape[-3:])])
        lr = up.float().view(*lr.shape[:-2], *size)
    elif not info.pre_upsampled and lr.shape[-2:] == hr.shape[-2:] and scale > 1:
        raise SrcoreError(
            "the LR patches have the HR size (pre-upsampled data, e.g. data_aug --same_size) but the model "
            "takes LR-size input"
        )
    return lr.contiguous(), hr.contiguous()


_ROLE = re.compile(r"^(?P<key>.*?)(?:[_-]srf[_-](?P<s>\d+))?[_-](?P<role>hr|lr)$")


def pair_key(stem: str, scale: int) -> tuple[str, str | None]:
    """(name shared by an HR/LR pair, 'hr'/'lr' when the name says which).

    Conventions: ``a`` / ``ax4`` / ``a_x4``, ``a_HR`` / ``a_LR``, SelfExSR's ``img_001_SRF_3_HR`` /
    ``img_001_SRF_3_LR``; case does not matter.
    """
    s = stem.lower()
    m = _ROLE.match(s)
    if m:
        return m.group("key"), m.group("role")
    for suffix in (f"_x{scale}", f"x{scale}"):
        if s.endswith(suffix) and len(s) > len(suffix):
            return s[: -len(suffix)], None
    return s, None


def split_roles(files: list[Path], scale: int, role: str) -> list[Path]:
    """Of a folder holding both HR and LR files (SelfExSR's layout), the ones of ``role``."""
    roles = {pair_key(f.stem, scale)[1] for f in files}
    return [f for f in files if pair_key(f.stem, scale)[1] in (role, None)] if {"hr", "lr"} <= roles else files


def match_lr_files(hr_files: list[Path], lr_dir: Path, scale: int) -> list[Path]:
    """LR file for each HR file, by the name they share (see ``pair_key``)."""
    lr_files = {pair_key(p.stem, scale)[0]: p for p in split_roles(list_images(lr_dir), scale, "lr")}
    out, missing = [], []
    for hr in hr_files:
        found = lr_files.get(pair_key(hr.stem, scale)[0])
        if found is None or found == hr:
            missing.append(hr.name)
        else:
            out.append(found)
    if missing:
        raise SrcoreError(
            f"no LR image in {lr_dir} for {len(missing)} HR image(s): {', '.join(missing[:5])}"
            + (" ..." if len(missing) > 5 else "") + " (pairs by name: a/ax4/a_x4, a_HR/a_LR, a_SRF_4_HR/a_SRF_4_LR)"
        )
    return out


def check_pair_sizes(lr: torch.Tensor, hr: torch.Tensor, scale: int, lr_path: Any, hr_path: Any) -> torch.Tensor:
    """The HR cropped to ``scale`` x the LR size; a clear error when the sizes do not fit."""
    (lh, lw), (hh, hw) = lr.shape[-2:], hr.shape[-2:]
    if (hh // scale, hw // scale) != (lh, lw):
        raise SrcoreError(
            f"size mismatch at scale {scale}: LR {lr_path} is {lh}x{lw}, HR {hr_path} is {hh}x{hw} "
            f"(expected LR {hh // scale}x{hw // scale})"
        )
    return hr[..., : lh * scale, : lw * scale]


def hr_files_of(spec: str, root: str | Path | None) -> list[Path]:
    if spec == BUILTIN_SKIMAGE:
        return skimage_photos()
    path = resolve_set(spec, root)
    files = [path] if path.is_file() else list_images(path)
    if not files:
        raise SrcoreError(f"no images in {path}")
    return files


class _DecodedCache:
    """Decoded images kept per process up to ``SRCORE_IMAGE_CACHE_MB`` (default 256 MB).

    Patch sampling re-reads the same few photographs thousands of times; decoding dominated
    the step time of small runs (added by the engine helper for the demo's time budget).
    """

    def __init__(self) -> None:
        import os

        self.budget = int(float(os.environ.get("SRCORE_IMAGE_CACHE_MB", "256")) * 2**20)
        self.used = 0
        self.items: dict[Path, torch.Tensor] = {}

    def read(self, path: Path) -> torch.Tensor:
        img = self.items.get(path)
        if img is None:
            img = read_image(path)
            if self.used + img.numel() * img.element_size() <= self.budget:
                self.items[path] = img
                self.used += img.numel() * img.element_size()
        return img


class FolderPatches(Dataset):
    """Random aligned patches from whole images; LR paired from files or degraded on the fly.

    On-the-fly LR is made from the cropped HR patch (mirror boundaries at the patch edge, as
    Real-ESRGAN-style pipelines do), which costs one resize of a patch instead of an image.
    """

    def __init__(
        self, hr_files: list[Path], *, scale: int, info: ModelInfo, patch_size: int, flip: bool, rot90: bool,
        repeat: int = 1, lr_files: list[Path] | None = None, degradation: Any = None,
        lr_real_files: list[Path] | None = None,
    ) -> None:
        if patch_size % scale:
            raise SrcoreError(f"data.train.patch_size {patch_size} is not a multiple of the scale {scale}")
        if lr_files is None and degradation is None:
            raise SrcoreError("give paired LR files or a degradation")
        if degradation is not None and getattr(degradation, "scale", scale) != scale:
            raise SrcoreError(f"the degradation downscales by {degradation.scale}, the model by {scale}")
        self.hr_files, self.lr_files, self.lr_real_files = hr_files, lr_files, lr_real_files
        self.scale, self.info, self.patch_size = scale, info, patch_size
        self.flip, self.rot90, self.repeat, self.degradation = flip, rot90, repeat, degradation
        self._cache = _DecodedCache()

    def __len__(self) -> int:
        return len(self.hr_files) * self.repeat

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        gen = _sample_generator()
        i = index % len(self.hr_files)
        hr_path = self.hr_files[i]
        hr = self._cache.read(hr_path)
        if self.lr_files is not None:
            lr = self._cache.read(self.lr_files[i])
            hr = check_pair_sizes(lr, hr, self.scale, self.lr_files[i], hr_path)
            lr, hr = paired_random_crop(lr, hr, self.patch_size, self.scale, gen, name=str(hr_path))
        else:
            hr = random_crop(hr, self.patch_size, gen, name=str(hr_path))
            lr = self.degradation(hr.unsqueeze(0), generator=gen)[0].float()
        lr, hr = random_dihedral([lr, hr], self.flip, self.rot90, gen)
        lr, hr = to_model_space(lr, hr, self.info, self.scale)
        sample = {"lr": lr, "hr": hr}
        if self.lr_real_files:
            sample["lr_real"] = self._real_patch(gen)
        return sample

    def _real_patch(self, gen: torch.Generator) -> torch.Tensor:
        assert self.lr_real_files is not None
        path = self.lr_real_files[randint(len(self.lr_real_files), gen)]
        patch = random_crop(read_image(path), self.patch_size // self.scale, gen, name=str(path))
        (patch,) = random_dihedral([patch], self.flip, self.rot90, gen)
        if self.info.in_channels == 1:
            patch = rgb_to_y(patch)
        return patch.contiguous()


class H5PatchDataset(Dataset):
    """Patches of an HDF5 file (or shard directory); cropped further only when ``patch_size`` is
    smaller than stored. ``shard_by_rank``: under DDP each rank samples only its own shards
    (``rank_part``)."""

    def __init__(
        self, path: Path, *, scale: int, info: ModelInfo, patch_size: int, flip: bool, rot90: bool, repeat: int = 1,
        shard_by_rank: bool = False,
    ) -> None:
        self.patches: H5Patches | ShardedH5Patches = (
            ShardedH5Patches(path, require_all=not shard_by_rank) if is_h5_shards(path) else H5Patches(path)
        )
        if shard_by_rank and not isinstance(self.patches, ShardedH5Patches):
            raise SrcoreError(f"data.train.shard_by_rank needs a shard directory (data prepare --shards); {path} is "
                              "one file")
        self.shard_by_rank = shard_by_rank
        if info.in_channels == 3 and self.patches.channels == 1:
            raise SrcoreError(f"{path} holds Y-only patches (--single_y) but the model takes RGB")
        if self.patches.same_size and not info.pre_upsampled:
            raise SrcoreError(f"{path} holds pre-upsampled LR patches (--same_size) but the model takes LR-size input")
        if not self.patches.same_size and self.patches.hr_shape[1] != self.patches.lr_shape[1] * scale:
            raise SrcoreError(
                f"{path}: HR patches {self.patches.hr_shape[1]} px and LR patches {self.patches.lr_shape[1]} px "
                f"do not match the scale {scale}"
            )
        self.scale, self.info, self.patch_size = scale, info, patch_size
        self.flip, self.rot90, self.repeat = flip, rot90, repeat
        self._crop = patch_size < min(self.patches.hr_shape[1:3])
        h, w = self.patches.hr_shape[1:3]
        if rot90 and not self._crop and h != w:
            raise SrcoreError(
                f"{path} holds {h}x{w} patches: data.train.rot90 would mix {h}x{w} and {w}x{h} samples in a batch; "
                f"set data.train.rot90: false or a square data.train.patch_size of at most {min(h, w) - 1}"
            )

    def __len__(self) -> int:
        return len(self.patches) * self.repeat

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        gen = _sample_generator()
        lr, hr = self.patches[index % len(self.patches)]
        if self.patch_size < min(hr.shape[-2:]):
            lr, hr = paired_random_crop(lr, hr, self.patch_size, self.scale, gen, name=str(self.patches.path))
        lr, hr = random_dihedral([lr, hr], self.flip, self.rot90, gen)
        lr, hr = to_model_space(lr, hr, self.info, self.scale)
        return {"lr": lr, "hr": hr}

    def get_batch(self, indices: Sequence[int], seeds: Sequence[int]) -> dict[str, torch.Tensor]:
        """The batch of ``self[i]`` for each index, the i-th sample made under torch's global RNG
        seeded with ``seeds[i]`` (what ``SeededItems`` does per sample): the same random decisions,
        drawn in the same order from each sample's generator, applied to the whole batch."""
        p = self.patches
        lr_hw, hr_hw = p.lr_shape[1:3], p.hr_shape[1:3]
        if self._crop:
            step, lr_size = lr_crop_size(lr_hw, hr_hw, self.patch_size, self.scale, name=str(p.path))
        gen = torch.Generator()
        offsets, orients = [], []
        for seed in seeds:
            _sample_generator(seed, gen)
            if self._crop:
                offsets.append(crop_offsets(*lr_hw, lr_size, gen))
            orients.append(random_orientation(self.flip, self.rot90, gen))
        lr_np, hr_np = p.read(np.asarray(indices, dtype=np.int64) % len(p))
        lr_np, hr_np = _nchw(lr_np), _nchw(hr_np)
        if self._crop:
            ps = self.patch_size
            lr_np = dihedral_batch(lr_np, orients, offsets, lr_size)
            hr_np = dihedral_batch(hr_np, orients, [(t * step, x * step) for t, x in offsets], ps)
        else:
            lr_np, hr_np = dihedral_batch(lr_np, orients), dihedral_batch(hr_np, orients)
        lr = torch.from_numpy(lr_np).float() / p.white["lr"]
        hr = torch.from_numpy(hr_np).float() / p.white["hr"]
        lr, hr = to_model_space(lr, hr, self.info, self.scale)
        return {"lr": lr, "hr": hr}

    def rank_part(self, rank: int, world: int) -> tuple[int, Callable[[np.ndarray], np.ndarray]]:
        """(sample count, local position -> dataset index) of what rank ``rank`` of ``world`` reads:
        shards rank, rank + world, ..., each ``repeat`` times (they must be on this machine; the
        others need not be). Nothing per patch is kept."""
        assert isinstance(self.patches, ShardedH5Patches)
        ranges = self.patches.shard_ranges()
        own = ranges[rank::world]
        # checked for every rank's share, so all ranks stop rather than one failing and the others waiting
        if len(ranges) < world or any(sum(c for _, c in ranges[r::world]) == 0 for r in range(world)):
            raise SrcoreError(f"data.train.shard_by_rank: {self.patches.path} has {len(ranges)} shard(s), fewer than "
                              f"the {world} processes need (write more shards, or set data.train.shard_by_rank: false)")
        absent = [self.patches.names[k] for k in range(rank, len(ranges), world) if self.patches.shards[k] is None]
        if absent:
            raise SrcoreError(f"data.train.shard_by_rank: rank {rank} of {world} reads shard(s) "
                              f"{', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''} of {self.patches.path}, "
                              "which are not on this machine")
        starts = np.array([a for a, _ in own], dtype=np.int64)
        cum = np.concatenate(([0], np.cumsum([c for _, c in own]))).astype(np.int64)
        count, n = int(cum[-1]), len(self.patches)

        def to_index(local: np.ndarray) -> np.ndarray:
            rep, rest = np.divmod(np.asarray(local, dtype=np.int64), count)
            k = np.searchsorted(cum, rest, side="right") - 1
            return rep * n + starts[k] + rest - cum[k]

        return count * self.repeat, to_index


def _nchw(a: np.ndarray) -> np.ndarray:
    """(N, H, W[, C]) stored patches as an (N, C, H, W) view."""
    return a[:, None] if a.ndim == 3 else a.transpose(0, 3, 1, 2)


def build_degradation(ref: Any, scale: int, registries: Registries) -> Any:
    """Build a degradation ComponentRef with its ``scale`` set to the model's (when it has one)."""
    comp = registries.degradations.get(ref.id)
    params = dict(ref.params)
    if "scale" in comp.config_cls.model_fields and "scale" not in params:
        params["scale"] = scale
    deg = comp.build(comp.parse_config(params, where="data.train.degradation.params"))
    if getattr(deg, "scale", scale) != scale:
        raise SrcoreError(
            f"data.train.degradation '{comp.id}' downscales by {deg.scale} but the model's scale is {scale}"
        )
    return deg


def make_train_dataset(
    cfg: Any, *, scale: int, info: ModelInfo, registries: Registries, root: str | Path | None
) -> Dataset:
    """The training dataset described by ``TrainDataConfig`` (see module doc)."""
    from srcore.data.lmdb_store import is_lmdb, make_lmdb_dataset

    if cfg.hr != BUILTIN_SKIMAGE and is_lmdb(cfg.hr):
        return make_lmdb_dataset(cfg, scale=scale, info=info, registries=registries, root=root)
    if cfg.hr != BUILTIN_SKIMAGE and (is_h5(cfg.hr) or is_h5_shards(resolve_set(cfg.hr, root))):
        path = resolve_set(cfg.hr, root)
        return H5PatchDataset(
            path, scale=scale, info=info, patch_size=cfg.patch_size, flip=cfg.flip, rot90=cfg.rot90, repeat=cfg.repeat,
            shard_by_rank=cfg.shard_by_rank,
        )
    hr_files = hr_files_of(cfg.hr, root)
    lr_files = match_lr_files(hr_files, resolve_set(cfg.lr, root), scale) if cfg.lr else None
    degradation = None if lr_files is not None else build_degradation(cfg.degradation, scale, registries)
    lr_real = list_images(resolve_set(cfg.lr_real, root)) if cfg.lr_real else None
    if cfg.lr_real and not lr_real:
        raise SrcoreError(f"data.train.lr_real: no images in {cfg.lr_real}")
    return FolderPatches(
        hr_files, scale=scale, info=info, patch_size=cfg.patch_size, flip=cfg.flip, rot90=cfg.rot90,
        repeat=cfg.repeat, lr_files=lr_files, degradation=degradation, lr_real_files=lr_real,
    )


class EvalSet(Dataset):
    """Whole images ``{name, lr, hr[, hr8]}`` (RGB, CHW) of one benchmark set at one scale.

    ``lr`` and ``hr`` are float32 in [0, 1]; ``hr8`` (uint8) holds the HR file's own levels when
    it is 8-bit: evaluation measures those (exact and cheaper), and a degradation gets the exact
    float64 k / 255 made from them (MATLAB's ``im2double``; the float32 k / 255 differs by
    ~1e-8, enough to flip a few bicubic LR pixels of a large photo).
    """

    def __init__(
        self, hr_files: list[Path], *, scale: int, lr_files: list[Path] | None = None, degradation: Any = None,
        name: str = "",
    ) -> None:
        self.hr_files, self.lr_files, self.scale, self.name = hr_files, lr_files, scale, name
        if lr_files is None and degradation is None:
            from srcore.data.degrade import BicubicMatlab

            degradation = BicubicMatlab(scale)
        self.degradation = degradation

    def __len__(self) -> int:
        return len(self.hr_files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        hr_path = self.hr_files[index]
        arr = read_array(hr_path)
        hr8 = array_to_uint8(arr, hr_path)
        hr = hr8 if hr8 is not None else array_to_tensor(arr, hr_path)
        if self.lr_files is not None:
            lr = read_image(self.lr_files[index])
            hr = check_pair_sizes(lr, hr, self.scale, self.lr_files[index], hr_path)
        else:
            _check_min_size(hr, self.scale, hr_path)
            hr = mod_crop(hr, self.scale)
            seed = (getattr(self.degradation, "seed", None) or 0) * 1_000_003 + index
            gen = torch.Generator().manual_seed(seed)
            exact = hr.unsqueeze(0).to(torch.float64)
            lr = self.degradation(exact.div_(255.0) if hr8 is not None else exact, generator=gen)[0].float()
        item = {"name": hr_path.stem, "lr": lr, "hr": hr}
        if hr8 is not None:
            item["hr"], item["hr8"] = hr.float().div_(255.0), hr
        return item

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self[i]


def _check_min_size(hr: torch.Tensor, scale: int, path: Path) -> None:
    """An HR image smaller than the scale has no LR (mod-crop leaves nothing): say so by name."""
    h, w = hr.shape[-2:]
    if min(h, w) < scale:
        raise SrcoreError(
            f"{path} is {h}x{w} pixels, smaller than the scale: evaluating at x{scale} needs at least {scale}x{scale}"
        )


def make_eval_dataset(
    spec: str | Path | Mapping[str, Any], *, scale: int, root: str | Path | None, degradation: Any = None
) -> EvalSet:
    """A benchmark set at ``scale``: ``"set5"``, a folder of HR images, or ``{"hr": ..., "lr": ...}``."""
    from srcore.data.sets import set_display_name

    if isinstance(spec, Mapping):
        hr_spec, lr_spec = str(spec["hr"]), spec.get("lr")
    else:
        hr_spec, lr_spec = str(spec), None
    hr_files = hr_files_of(hr_spec, root)
    if lr_spec:
        hr_files = split_roles(hr_files, scale, "hr")
    lr_files = match_lr_files(hr_files, resolve_set(str(lr_spec), root), scale) if lr_spec else None
    name = set_display_name(resolve_set(hr_spec, root)) if hr_spec != BUILTIN_SKIMAGE else "skimage"
    return EvalSet(hr_files, scale=scale, lr_files=lr_files, degradation=degradation, name=name)
