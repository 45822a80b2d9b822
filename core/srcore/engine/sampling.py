"""A resumable, rank-sharded batch stream whose every sample is reproducible.

The k-th micro-batch of a run is a pure function of (seed, k, rank, world size): epoch ``e``
permutes the dataset with a generator seeded by (seed, e) - the same on every rank, like
``DistributedSampler.set_epoch`` - and each rank takes its own slice. Every item is produced
under RNG seeded by (seed, epoch, position), so random crops, flips and on-the-fly degradations
do not depend on worker processes or on where a run was resumed. Resuming is then "start the
stream at micro-batch k": bit-identical data, with no sampler state to pickle.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

_MIX = 0x9E3779B97F4A7C15


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix-style), stable across runs and platforms."""
    h = 0
    for p in parts:
        h = (h ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * _MIX & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class SeededItems(Dataset):
    """Wraps a dataset: item ``(epoch, pos, index)`` is produced under RNG seeded by (seed, epoch, pos)."""

    def __init__(self, dataset: Any, seed: int) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int, int]) -> Mapping[str, Any]:
        epoch, pos, index = key
        s = mix_seed(self.seed, epoch, pos)
        torch.manual_seed(s)
        np.random.seed(s % 2**32)
        random.seed(s)
        return self.dataset[index]


class StreamSampler(Sampler[list[tuple[int, int, int]]]):
    """Batches of (epoch, pos, index) from micro-batch ``start`` on, forever (drop-last epochs)."""

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1, start: int = 0) -> None:
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.rank, self.world, self.start = rank, world, start
        self.per_epoch = n // (batch_size * world)
        if self.per_epoch == 0:
            from srcore.errors import SrcoreError

            raise SrcoreError(
                f"the training set has {n} item(s), fewer than one batch ({batch_size} x {world} rank(s)); "
                "lower data.train.batch_size or raise data.train.repeat"
            )

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        k = self.start
        while True:
            epoch, b = divmod(k, self.per_epoch)
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 1))
            perm = torch.randperm(self.n, generator=g)
            per_rank = self.per_epoch * self.batch_size
            mine = perm[self.rank * per_rank : (self.rank + 1) * per_rank]
            while b < self.per_epoch:
                lo = b * self.batch_size
                pos0 = self.rank * per_rank + lo
                yield [(epoch, pos0 + i, int(mine[lo + i])) for i in range(self.batch_size)]
                b += 1
                k += 1

    def __len__(self) -> int:  # the stream is endless; DataLoader only needs a number
        return 2**31


def make_loader(
    dataset: Any, batch_size: int, seed: int, rank: int, world: int, start: int, num_workers: int
) -> DataLoader:
    return DataLoader(
        SeededItems(dataset, seed),
        batch_sampler=StreamSampler(len(dataset), batch_size, seed, rank, world, start),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
