"""A resumable, rank-sharded batch stream whose every sample is reproducible.

The k-th micro-batch of a run is a pure function of (seed, k, rank, world size): epoch ``e``
permutes the dataset with a generator seeded by (seed, e) - the same on every rank, like
``DistributedSampler.set_epoch`` - and the ranks take interleaved slices of that stream. Every item is produced
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
        torch.default_generator.manual_seed(s)  # CPU generator only: 30x cheaper than torch.manual_seed
        np.random.seed(s % 2**32)
        random.seed(s)
        return self.dataset[index]


class StreamSampler(Sampler[list[tuple[int, int, int]]]):
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

    def _index(self, sample: int) -> tuple[int, int, int]:
        epoch, pos = divmod(sample, self.n)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 1))
            self._perm = (epoch, torch.randperm(self.n, generator=g))
        return epoch, pos, int(self._perm[1][pos])

    def __iter__(self) -> Iterator[list[tuple[int, int, int]]]:
        k = self.start
        while True:
            first = (k * self.world + self.rank) * self.batch_size
            yield [self._index(first + i) for i in range(self.batch_size)]
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
