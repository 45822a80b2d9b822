"""torch.distributed plumbing: torchrun env detection (as nanoGPT), rank-0 writes, reductions.

A run is distributed when ``RANK`` is set (``torchrun`` / ``srcore train --nproc N``). Gloo on
CPU, NCCL on CUDA. Every collective runs with a timeout (``SRCORE_DIST_TIMEOUT`` seconds,
default 60), so a rank that dies makes the others raise instead of hanging; under torchrun the
elastic agent also tears the group down as soon as one worker exits.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def timeout() -> timedelta:
    return timedelta(seconds=float(os.environ.get("SRCORE_DIST_TIMEOUT", "60")))


def init(device: torch.device) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op otherwise)."""
    if int(os.environ.get("RANK", -1)) == -1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timeout())
    return info


DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def device_for(requested: str, info: DistInfo | None = None, option: str = "--device") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda[:i]``; each DDP rank takes its local GPU.

    Every command resolves its device here, so a misspelt name or a GPU that is not there is
    one line naming ``option`` and the choices, not a torch traceback.
    """
    from srcore.errors import SrcoreError

    local = int(os.environ.get("LOCAL_RANK", 0)) if info is None else info.local_rank
    text = str(requested).strip().lower()
    if text == "auto":
        text = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise SrcoreError(f"{option} {requested!r}: not a device; choose {DEVICE_CHOICES}") from None
    if dev.type not in ("cpu", "cuda") or (dev.type == "cpu" and dev.index not in (None, 0)):
        raise SrcoreError(f"{option} {requested!r}: not a device srcore runs on; choose {DEVICE_CHOICES}")
    if dev.type == "cuda":
        _check_cuda(dev, requested, option)
        if dev.index is None and int(os.environ.get("RANK", -1)) != -1:
            dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    return dev


def _check_cuda(dev: torch.device, requested: str, option: str) -> None:
    from srcore.errors import SrcoreError

    if not torch.cuda.is_available():
        raise SrcoreError(f"{option} {requested}: CUDA is not available on this machine; choose auto or cpu")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise SrcoreError(
            f"{option} {requested}: this machine has {count} CUDA device(s) (cuda:0..cuda:{count - 1}); "
            f"choose {DEVICE_CHOICES}"
        )


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum a float64 tensor over ranks (identity when not distributed)."""
    if dist.is_initialized():
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
