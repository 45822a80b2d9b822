"""The engine's cheap per-step path: the deferred NaN check, kept host memory, batched log values."""

from __future__ import annotations

import ctypes
import json
import resource

import pytest
import torch
from torch import nn

from srcore.config import validate_run_config
from srcore.engine.checkpoint import list_checkpoints
from srcore.engine.context import Context, NonFiniteLoss
from srcore.engine.loop import keep_freed_host_memory, train
from srcore.engine.monitor import to_floats
from srcore.hookspecs import hookimpl


class Patches:
    def __init__(self, n: int = 8, size: int = 16) -> None:
        self.hr = torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(0))

    def __len__(self) -> int:
        return len(self.hr)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"lr": nn.functional.avg_pool2d(self.hr[i][None], 2)[0], "hr": self.hr[i]}


class NaNAtCall(nn.Module):
    """L1, except NaN at the ``bad``-th call (1-based): one bad step between two log steps."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.bad, self.calls = bad, 0

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        loss = (sr - hr).abs().mean()
        return loss * float("nan") if self.calls == self.bad else loss


class NanAt8Plugin:
    @hookimpl
    def srcore_register_losses(self, register):
        register("nan_at_8", lambda c: NaNAtCall(8), description="NaN at the 8th call")


def test_a_nan_between_log_steps_stops_the_run_at_the_next_check_naming_its_step(
        srcore_manager, srcore_plugin, tmp_path):
    srcore_plugin(NanAt8Plugin(), "nan8")
    cfg = validate_run_config({
        "model": {"id": "core:tiny", "params": {"scale": 2, "channels": 4}},
        "stages": [{"steps": 12, "losses": [{"id": "nan8:nan_at_8"}], "optim": {"lr": 1e-2}}],
        "data": {"train": {"batch_size": 4}},
        "train": {"save_every": 6, "log_every": 3, "seed": 3, "keep_last": 5, "preflight": False},
    }, srcore_manager.registries)
    run = tmp_path / "r"
    with pytest.raises(NonFiniteLoss, match="non-finite loss .* at step 8 "):  # found at step 9's check
        train(cfg, srcore_manager, run_dir=run, dataset=Patches(), device="cpu", progress=False)
    assert [c.name for c in list_checkpoints(run)] == ["step_0000006"]
    logged = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 3, 6]  # nothing from the bad step on


def test_the_check_runs_itself_every_check_every_losses():
    stage = validate_run_config({"model": {"id": "core:tiny"}, "stages": [{"steps": 10, "name": "s"}]}).stages[0]
    net = nn.Linear(2, 1)
    ctx = Context(stage, torch.device("cpu"), "off", torch.Generator(), net)
    ctx.register_optimizers({"generator": torch.optim.SGD(net.parameters(), lr=0.1)}, {})
    ctx.CHECK_EVERY = 4
    x = torch.ones(1, 2)
    for step in range(3):  # finite, NaN (step index 1), finite: kept, not checked yet
        ctx.global_step = step
        loss = net(x).sum() * (float("nan") if step == 1 else 1.0)
        ctx.backward(loss, "generator")
        ctx.optimizer_step("generator")
    ctx.global_step = 3
    with pytest.raises(NonFiniteLoss, match=r"loss \(nan\) for optimizer 'generator' at step 2 \(stage 's'\)"):
        ctx.backward(net(x).sum(), "generator")  # the 4th kept loss
    ctx.raise_if_nonfinite()  # reported once; nothing left to check
    ctx.backward(torch.tensor(1.0, requires_grad=True), "generator")
    ctx.raise_if_nonfinite()


def test_to_floats_is_the_mean_of_each_value():
    values = {"a": torch.tensor([1.0, 2.0, 4.5]), "b": torch.tensor(3, dtype=torch.int64), "c": 0.25,
              "d": torch.tensor(float("nan"))}
    out = to_floats(values)
    assert out["a"] == pytest.approx(7.5 / 3) and out["b"] == 3.0 and out["c"] == 0.25
    assert out["d"] != out["d"] and list(out) == list(values)
    assert all(type(v) is float for v in out.values())


def test_kept_host_memory_is_reused_without_page_faults():
    if not keep_freed_host_memory():
        pytest.skip("not glibc, or malloc is tuned through MALLOC_*_/GLIBC_TUNABLES")
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.memset.restype, libc.memset.argtypes = ctypes.c_void_p, [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
    size = 64 << 20  # above glibc's largest dynamic mmap threshold (32 MiB): mmapped afresh by default
    pages = size // resource.getpagesize()

    def cycle() -> None:
        p = libc.malloc(size)
        libc.memset(p, 1, size)
        libc.free(p)

    cycle()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(4):
        cycle()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < pages // 10, f"{faults} page faults for 4 reuses of {pages} pages"
