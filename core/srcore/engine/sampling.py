"""A resumable, rank-sharded batch stream whose every sample is reproducible.

The k-th micro-batch of a run is a pure function of (seed, k, rank, world size): epoch ``e``
permutes the dataset with a generator seeded by (seed, e) - the same on every rank, like
``DistributedSampler.set_epoch`` - and the ranks take interleaved slices of that stream. Every item is produced
under RNG seeded by (seed, epoch, position), so random crops, flips and on-the-fly degradations
do not depend on worker processes or on where a run was resumed. Resuming is then "start the
stream at micro-batch k": bit-identical data, with no sampler state to pickle.

Datasets with a ``get_batch(indices, seeds)`` method (HDF5 patches) get the whole micro-batch in
one call: one read per batch, augmentation per batch, the same samples as item by item. A
dataset with ``shard_by_rank`` set reads, under DDP, only the part of it ``rank_part`` gives
each rank (its own HDF5 shards), in a stream of its own.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

_MIX = 0x9E3779B97F4A7C15

Key = tuple[int, int, int]  # (epoch, position in the epoch, dataset index)


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), stable across runs and platforms."""
    h = 0
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * _MIX & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class SeededItems(Dataset):
    """Wraps a dataset: item ``(epoch, pos, index)`` is produced under RNG seeded by (seed, epoch, pos).

    ``batched``: give a dataset that has ``get_batch`` the whole list of keys at once (what
    DataLoader's ``__getitems__`` hook does); off, every dataset is read item by item.
    """

    def __init__(self, dataset: Any, seed: int, batched: bool = True) -> None:
        self.dataset, self.seed = dataset, seed
        self._get_batch = getattr(dataset, "get_batch", None) if batched else None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Key) -> Mapping[str, Any]:
        epoch, pos, index = key
        s = mix_seed(self.seed, epoch, pos)
        torch.default_generator.manual_seed(s)  # CPU generator only: 30x cheaper than torch.manual_seed
        np.random.seed(s % 2**32)
        random.seed(s)
        return self.dataset[index]

    def __getitems__(self, keys: Sequence[Key]) -> Any:
        if self._get_batch is None:
            return [self[k] for k in keys]
        return self._get_batch([k[2] for k in keys], [mix_seed(self.seed, k[0], k[1]) for k in keys])


def collate(data: Any) -> Any:
    """A batch ``get_batch`` already made as is; a list of samples stacked as DataLoader does."""
    return data if isinstance(data, Mapping) else default_collate(data)


class StreamSampler(Sampler[list[Key]]):
    """Batches of (epoch, pos, index) from micro-batch ``start`` on, forever.

    The run reads one endless stream of samples: epoch ``e`` is a seeded permutation of the
    dataset, epochs follow each other, and micro-batch ``k`` of rank ``r`` is the slice
    ``[(k * world + r) * batch, ... + batch)`` of the stream. Batches may straddle epochs, so a
    set smaller than a batch (a handful of photographs) still works.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0) -> None:
        if n == 0:
            from srcore.errors import SrcoreError

            raise SrcoreError("the training set is empty")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.start = rank, world, start
        self._perm: tuple[int, torch.Tensor] | None = None

    def _permutation(self, epoch: int) -> torch.Tensor:
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self._perm_seed(epoch))
            perm = torch.randperm(self.n, generator=g)
            self._perm = (epoch, perm.to(torch.int32) if self.n < 2**31 else perm)  # half the memory of 10M patches
        return self._perm[1]

    def _perm_seed(self, epoch: int) -> int:
        return mix_seed(self.seed, epoch, 1)

    def _keys(self, epoch: int, pos: int, perm: torch.Tensor) -> list[Key]:
        return list(zip([epoch] * len(perm), range(pos, pos + len(perm)), perm.tolist()))

    def _batch(self, first: int) -> list[Key]:
        """Stream samples ``first .. first + batch_size - 1``, one slice per epoch they fall in."""
        keys: list[Key] = []
        sample, end = first, first + self.batch_size
        while sample < end:
            epoch, pos = divmod(sample, self.n)
            take = min(end - sample, self.n - pos)
            keys += self._keys(epoch, pos, self._permutation(epoch)[pos : pos + take])
            sample += take
        return keys

    def __iter__(self) -> Iterator[list[Key]]:
        k = self.start
        while True:
            yield self._batch((k * self.world + self.rank) * self.batch_size)
            k += 1

    def __len__(self) -> int:  # the stream is endless; DataLoader only needs a number
        return 2**31


class RankPartSampler(StreamSampler):
    """The stream of one rank's own part of the data (``shard_by_rank``): micro-batch ``k`` is the
    slice ``[k * batch, (k + 1) * batch)`` of epochs that permute only that part, so over an epoch
    of each rank every sample is read once, by one rank. The key's position is the dataset index:
    unique within an epoch across the ranks, so no two ranks draw the same augmentation seed."""

    def __init__(self, part: tuple[int, Callable[[np.ndarray], np.ndarray]], batch_size: int, seed: int,
                 rank: int, start: int = 0) -> None:
        count, self._to_index = part
        super().__init__(count, batch_size, seed, 0, 1, start)
        self.part_rank = rank

    def _perm_seed(self, epoch: int) -> int:
        return mix_seed(self.seed, epoch, 1, self.part_rank)

    def _keys(self, epoch: int, pos: int, perm: torch.Tensor) -> list[Key]:
        index = self._to_index(perm.numpy()).tolist()
        return list(zip([epoch] * len(index), index, index))


def make_sampler(dataset: Any, batch_size: int, seed: int, rank: int, world: int, start: int) -> StreamSampler:
    """The stream of micro-batches of ``rank`` (see the module doc), from micro-batch ``start``."""
    if getattr(dataset, "shard_by_rank", False):
        part = dataset.rank_part(rank, world)  # checks that this rank's shards are here
        if world > 1:  # one process reads everything in the stream a single file would give
            return RankPartSampler(part, batch_size, seed, rank, start)
    return StreamSampler(len(dataset), batch_size, seed, rank, world, start)


def make_loader(
    dataset: Any, batch_size: int, seed: int, rank: int, world: int, start: int, num_workers: int,
    batched: bool = True,
) -> DataLoader:
    """The run's batches: ``batched`` off reads every sample on its own (the reference path)."""
    return DataLoader(
        SeededItems(dataset, seed, batched),
        batch_sampler=make_sampler(dataset, batch_size, seed, rank, world, start),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        collate_fn=collate,
    )
