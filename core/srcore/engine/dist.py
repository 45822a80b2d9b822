"""torch.distributed plumbing: torchrun env detection (as nanoGPT), rank-0 writes, reductions.

A run is distributed when ``RANK`` is set (``torchrun`` / ``srcore train --nproc N``). Gloo on
CPU, NCCL on CUDA. Every collective runs with a timeout (``SRCORE_DIST_TIMEOUT`` seconds,
default 60), so a rank that dies makes the others raise instead of hanging; under torchrun the
elastic agent also tears the group down as soon as one worker exits.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from srcore.errors import SrcoreError

T = TypeVar("T")


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


def elastic_restart() -> bool:
    """True in a worker that torchrun restarted after a failure (``--max-restarts``)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0


def enter_rank() -> bool:
    """True in a process torchrun started (``RANK`` is set); a worker of a torchrun agent is
    tied to it first (``die_with_parent``), so it never outlives the agent."""
    if os.environ.get("TORCHELASTIC_RUN_ID"):
        die_with_parent()
    return int(os.environ.get("RANK", -1)) != -1


def timeout(default: float = 60) -> timedelta:
    return timedelta(seconds=float(os.environ.get("SRCORE_DIST_TIMEOUT", default)))


def init(device: torch.device, default_timeout: float = 60) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op otherwise).

    ``default_timeout``: seconds a collective waits when ``SRCORE_DIST_TIMEOUT`` is not set
    (evaluation waits longer: a rank may wait for another's last image)."""
    if not enter_rank():
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        store = _attempt_store(info.world_size)
        extra = {} if store is None else {"store": store, "rank": info.rank, "world_size": info.world_size}
        dist.init_process_group(backend=backend, timeout=timeout(default_timeout), **extra)
    return info


def _attempt_store(world_size: int) -> dist.Store | None:
    """The torchrun agent's store under a prefix of this attempt (None: plain ``env://``).

    After a restart (``--max-restarts``) the agent's store still holds the failed attempt's
    process-group keys: a new rank would read a dead rank's address and time out connecting.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    base = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False,
                         timeout=timeout())
    return dist.PrefixStore(f"srcore/attempt_{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}", base)


DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def device_for(requested: str, info: DistInfo | None = None, option: str = "--device") -> torch.device:
    """Resolve ``auto``/``cpu``/``cuda[:i]``; each DDP rank takes its local GPU.

    Every command resolves its device here, so a misspelt name or a GPU that is not there is
    one line naming ``option`` and the choices, not a torch traceback.
    """
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


def shard_indices(n: int, rank: int, world: int) -> range:
    """The indices of ``n`` items rank ``rank`` of ``world`` takes: ``i % world == rank``
    (validation and ``srcore eval --nproc``; ``unshard`` puts them back in order)."""
    return range(rank, n, world)


def shard(items: Any, rank: int, world: int, limit: int | None = None) -> Iterator[tuple[int, Any]]:
    """(index, item) of this rank's share of ``items`` (a sequence, or any iterable), the first ``limit``."""
    if hasattr(items, "__len__") and hasattr(items, "__getitem__"):
        for i in shard_indices(len(items) if limit is None else min(limit, len(items)), rank, world):
            yield i, items[i]
        return
    for i, item in enumerate(items):
        if limit is not None and i >= limit:
            return
        if i % world == rank:
            yield i, item


def unshard(parts: Sequence[Sequence[T]]) -> list[T]:
    """Every rank's share (``parts[rank]``, as ``shard`` gave it) back in item order."""
    world = len(parts)
    total = sum(len(p) for p in parts)
    return [parts[i % world][i // world] for i in range(total)]


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (a list by rank), None on the others; ``[obj]`` alone."""
    if not dist.is_initialized():
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def shutdown() -> None:
    """Destroy the process group after the DDP wrappers are gone: a reducer collected after the group
    (a reference cycle, at interpreter exit) can abort the process ("terminate called without an
    active exception", seen once in a 2-rank test)."""
    if dist.is_initialized():
        import gc

        gc.collect()  # no barrier: a rank ending on an error must not wait for the others here
        dist.destroy_process_group()


# -- DistributedDataParallel -------------------------------------------------------------------

class UnwrappedParameters(SrcoreError):
    """A step optimizes parameters that no ``setup.wrap`` covers: under DDP they would drift apart."""


def ddp_wrap(module: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """``module`` in ``DistributedDataParallel``, or itself when it has nothing to train.

    No buffer sync in ``forward``: validation is sharded over ranks (each rank calls the generator a
    different number of times), so a buffer broadcast inside ``forward`` would deadlock; each rank
    keeps its own buffers, as before DDP, and rank 0's are the ones checkpointed.
    """
    if not any(p.requires_grad for p in module.parameters()):
        return module
    ids = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" else None
    ddp = nn.parallel.DistributedDataParallel
    # torch >= 2.11 renamed the option (the old name warns); buffers are synced once at init either way
    no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in inspect.signature(ddp).parameters
                      else {"broadcast_buffers": False})
    # gradients as views of the all-reduce buckets: no copy in and out of them, one gradient-size buffer less
    return ddp(module, device_ids=ids, find_unused_parameters=find_unused_parameters, gradient_as_bucket_view=True,
               **no_buffer_sync)


def no_sync(wrappers: Iterable[nn.Module], skip: bool) -> AbstractContextManager[Any]:
    """Every DDP wrapper's ``no_sync()`` when ``skip`` (an accumulation micro-batch before the last)."""
    stack = ExitStack()
    if skip:
        for w in wrappers:
            if isinstance(w, nn.parallel.DistributedDataParallel):
                stack.enter_context(w.no_sync())
    return stack


def check_wrapped(where: str, optimizers: Mapping[str, torch.optim.Optimizer], wrappers: Iterable[nn.Module]) -> None:
    """Refuse a distributed step whose optimizers hold parameters outside every DDP wrapper."""
    covered = {id(p) for w in wrappers if isinstance(w, nn.parallel.DistributedDataParallel)
               for p in w.module.parameters()}
    missing = {name: sum(p.numel() for g in opt.param_groups for p in g["params"]
                         if p.requires_grad and id(p) not in covered)
               for name, opt in optimizers.items()}
    missing = {k: n for k, n in missing.items() if n}
    if missing:
        which = ", ".join(f"'{k}' ({n} values)" for k, n in missing.items())
        raise UnwrappedParameters(
            f"{where}: under DDP the optimizer(s) {which} hold parameters of no module passed to setup.wrap(...); "
            "their gradients would not be averaged over ranks: the step must call setup.wrap(module) and call "
            "the returned module (see srcore.engine.api)")


# -- no orphans --------------------------------------------------------------------------------

PR_SET_PDEATHSIG = 1
_watching: list[int] = []


def parent_death_hook(sig: int) -> Callable[[], None]:
    """A callable doing Linux ``prctl(PR_SET_PDEATHSIG, sig)``: ``sig`` arrives when our parent dies.

    libc is loaded here, not in the call, so the callable is safe as ``Popen(preexec_fn=...)``
    between fork and exec. A no-op where there is no prctl (not Linux); ``die_with_parent``'s
    watchdog covers that.
    """
    import ctypes
    import ctypes.util

    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    return lambda: prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def die_with_parent(poll: float = 0.5) -> None:
    """A torchrun worker exits (SIGKILL) as soon as its agent dies, even when killed with -9.

    torchrun starts workers in their own session, so nothing else would stop them. Two guards:
    the parent-death signal, and a daemon thread that polls the parent PID (the signal follows
    the parent *thread*, and a parent that died before ``prctl`` ran would go unnoticed).
    """
    import signal
    import threading
    import time

    if _watching:
        return
    parent = os.getppid()
    _watching.append(parent)
    parent_death_hook(signal.SIGKILL)()

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(poll)

    if parent == 1 or os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, name="srcore-parent-watchdog", daemon=True).start()
