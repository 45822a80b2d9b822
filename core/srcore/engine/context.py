"""The engine's ``StepContext``: AMP, accumulation, clipping, schedules, EMA.

Steps call ``ctx.backward(loss, "generator")`` and ``ctx.optimizer_step("generator")``; the
context does the rest, so no method re-implements mixed precision, accumulation or DDP.
Under ``torch.distributed`` the gradients are already averaged when ``optimizer_step`` runs:
the modules a step trains are ``DistributedDataParallel`` wrappers (``StepSetup.wrap``), whose
bucketed all-reduces overlap the backward; the engine puts accumulation micro-batches under
``no_sync()``.
"""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from srcore.config import ScheduleConfig, StageConfig
from srcore.errors import SrcoreError


class NonFiniteLoss(SrcoreError):
    """A loss became NaN or Inf; the run stops and the last good checkpoint stays as it was."""


def schedule_factor(cfg: ScheduleConfig, total: int, base_lr: float) -> Any:
    """Multiplier of the base learning rate at optimizer step ``t`` (0-based) of a stage."""

    def factor(t: int) -> float:
        if cfg.warmup_steps and t < cfg.warmup_steps:
            return (t + 1) / cfg.warmup_steps
        if cfg.type == "multistep":
            return cfg.gamma ** sum(1 for m in cfg.milestones if t >= m)
        if cfg.type == "cosine":
            span = max(1, total - cfg.warmup_steps)
            progress = min(1.0, (t - cfg.warmup_steps) / span)
            floor = cfg.min_lr / base_lr
            return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
        if cfg.type == "linear":
            start = max(cfg.decay_start, cfg.warmup_steps)
            if t < start:
                return 1.0
            progress = min(1.0, (t - start) / max(1, total - start))
            return 1.0 - (1.0 - cfg.min_lr / base_lr) * progress
        return 1.0

    return factor


def make_scheduler(opt: torch.optim.Optimizer, cfg: ScheduleConfig, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    base = opt.param_groups[0]["lr"]
    return torch.optim.lr_scheduler.LambdaLR(opt, schedule_factor(cfg, total, base))


class EMA:
    """Exponential moving average of the generator's weights (buffers copied as they are)."""

    def __init__(self, module: nn.Module, decay: float) -> None:
        import copy

        self.decay = decay
        self.module = copy.deepcopy(module).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        for e, p in zip(self.module.parameters(), module.parameters()):
            e.lerp_(p.detach(), 1.0 - self.decay)
        for e, b in zip(self.module.buffers(), module.buffers()):
            e.copy_(b)


class Context:
    """Implements ``srcore.engine.api.StepContext`` for one stage."""

    CHECK_EVERY = 256  # losses kept unchecked at most (a long log interval still checks this often)

    def __init__(
        self,
        stage: StageConfig,
        device: torch.device,
        amp: str,
        rng: torch.Generator,
        generator: nn.Module,
        ema: EMA | None = None,
    ) -> None:
        self.stage = stage
        self.device = device
        self.rng = rng
        self.global_step = 0
        self.stage_step = 0
        self.micro = 0
        self.accumulate = stage.accumulate
        self.generator = generator
        self.ema = ema
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LambdaLR] = {}
        on_cuda = device.type == "cuda"
        self._amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp) if on_cuda else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self._amp_dtype is torch.float16)
        self._scaling = self.scaler.is_enabled()  # off (CPU, bf16, fp32): no scaler call per step at all
        self.grad_norms: dict[str, torch.Tensor] = {}  # tensors: reading one waits for the device
        self._unchecked: list[tuple[torch.Tensor, str, int]] = []  # (loss, optimizer, global step) since the check

    # -- StepContext ------------------------------------------------------------------------------
    def autocast(self) -> AbstractContextManager[Any]:
        if self._amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def backward(self, loss: torch.Tensor, optimizer: str) -> None:
        """Backpropagate; the loss is kept for ``raise_if_nonfinite`` instead of checked here.

        Checking each loss on the spot waits for the device at every step (``.item()``); the
        engine checks the kept ones before it logs, validates or saves (and every
        ``CHECK_EVERY`` losses), so a NaN still stops the run before anything records it.
        """
        self._unchecked.append((loss.detach(), optimizer, self.global_step))
        if len(self._unchecked) >= self.CHECK_EVERY:
            self.raise_if_nonfinite()
        if self.accumulate > 1:
            loss = loss / self.accumulate
        (self.scaler.scale(loss) if self._scaling else loss).backward()

    def check_finite(self, loss: torch.Tensor, optimizer: str) -> None:
        """Raise ``NonFiniteLoss`` now if ``loss`` is NaN or Inf (one wait for the device)."""
        if not torch.isfinite(loss.detach()).all():
            raise self._nonfinite(loss.detach().float().item(), optimizer, self.global_step)

    def raise_if_nonfinite(self) -> None:
        """Raise ``NonFiniteLoss`` for the first NaN/Inf among the losses since the last call (one wait)."""
        if not self._unchecked:
            return
        losses, self._unchecked = self._unchecked, []
        values = torch.stack([v.float().reshape(()) for v, _, _ in losses])
        bad = ~torch.isfinite(values)
        if bad.any():
            i = int(bad.nonzero()[0, 0])
            raise self._nonfinite(values[i].item(), losses[i][1], losses[i][2])

    def _nonfinite(self, value: float, optimizer: str, step: int) -> NonFiniteLoss:
        return NonFiniteLoss(
            f"non-finite loss ({value}) for optimizer '{optimizer}' at step {step + 1} (stage "
            f"'{self.stage.name}'); the run stops here and the last checkpoint is left as it was. Lower the "
            "learning rate, enable grad_clip, or use amp=bf16."
        )

    def optimizer_step(self, optimizer: str) -> None:
        if self.micro != self.accumulate - 1:
            return
        opt = self.optimizers[optimizer]
        if self._scaling:
            self.scaler.unscale_(opt)
        if self.stage.grad_clip is not None:
            params = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
            self.grad_norms[optimizer] = torch.nn.utils.clip_grad_norm_(params, self.stage.grad_clip)
        if self._scaling:
            self.scaler.step(opt)
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        if optimizer in self.schedulers:
            self.schedulers[optimizer].step()
        if optimizer == "generator" and self.ema is not None:
            self.ema.update(self.generator)

    # -- engine side ------------------------------------------------------------------------------
    def end_step(self) -> None:
        """After the last micro-batch: one scale update per iteration, whatever the optimizers."""
        if self._scaling:
            self.scaler.update()

    def register_optimizers(
        self, optimizers: dict[str, torch.optim.Optimizer], schedules: dict[str, ScheduleConfig]
    ) -> None:
        self.optimizers = dict(optimizers)
        for name, opt in optimizers.items():
            cfg = schedules.get(name, self.stage.schedule)
            self.schedulers[name] = make_scheduler(opt, cfg, self.stage.steps)

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, o in self.optimizers.items():
            if k in state["optimizers"]:
                o.load_state_dict(state["optimizers"][k])
        for k, s in self.schedulers.items():
            if k in state["schedulers"]:
                s.load_state_dict(state["schedulers"][k])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def lrs(self) -> dict[str, float]:
        return {f"lr/{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()}

