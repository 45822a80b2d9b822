"""``srcnn:classic``: the supervised step of the classic papers, with what the core step lacks.

* SGD with momentum (SRCNN, VDSR, DRCN, DRRN, LapSRN) or the stage's Adam/AdamW;
* per-layer learning-rate multipliers (SRCNN/FSRCNN/ESPCN train their last layer at lr x 0.1);
* adjustable gradient clipping, norm <= theta / current lr (VDSR paper, DRRN);
* deep supervision for models with ``forward_all(x) -> (intermediates, final)``: DRCN's
  recursive supervision  L = a * mean_d l(y_d, hr) + (1 - a) * l(y, hr), with ``a`` decaying
  linearly to 0, and LapSRN's per-level loss  L = sum_l l(y_l, hr downscaled to level l).
The stage's loss terms (``stages[i].losses``) give ``l``; schedules, AMP and EMA stay the engine's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from srcore.builtin.steps import build_losses, weighted_sum
from srcore.engine.api import Batch, StepContext, StepSetup, TrainStep
from srcore.registry import StrictModel


class ClassicParams(StrictModel):
    optimizer: Literal["sgd", "stage"] = Field(
        "sgd",
        description="'sgd': SGD with `momentum`, lr and weight_decay of stages[i].optim; 'stage': its Adam/AdamW.",
    )
    momentum: float = Field(0.9, ge=0, description="SGD momentum.")
    lr_mult: dict[str, float] = Field(
        default_factory=dict, description="Parameter-name prefix -> learning-rate multiplier, e.g. {'conv3': 0.1}."
    )
    clip_theta: float | None = Field(
        None, gt=0, description="Adjustable clipping: gradient norm <= clip_theta / current lr (DRRN 0.01, VDSR 0.4)."
    )
    deep_supervision: bool = Field(
        False, description="Supervise every output of the model's forward_all (DRCN, LapSRN)."
    )
    alpha: float = Field(
        1.0, ge=0, le=1, description="Weight of the intermediate outputs at the start (DRCN paper: 1)."
    )
    alpha_decay_steps: int = Field(0, ge=0, description="Steps over which alpha decays linearly to 0 (0 = constant).")
    intermediate_reduce: Literal["mean", "sum"] = Field(
        "mean", description="Average (DRCN) or sum (LapSRN) the intermediate losses."
    )


def param_groups(model: nn.Module, lr: float, lr_mult: Mapping[str, float]) -> list[dict]:
    """One group per multiplier (first matching prefix wins), the rest at the base lr."""
    groups: dict[float, list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        mult = next((m for prefix, m in lr_mult.items() if name.startswith(prefix)), 1.0)
        groups.setdefault(mult, []).append(p)
    unknown = [pre for pre in lr_mult if not any(n.startswith(pre) for n, _ in model.named_parameters())]
    if unknown:
        from srcore.errors import ConfigError

        raise ConfigError([f"step_params.lr_mult: no parameter name starts with {unknown[0]!r}"])
    return [{"params": ps, "lr": lr * m, "lr_mult": m} for m, ps in groups.items()]


def level_targets(hr: torch.Tensor, outputs: list[torch.Tensor]) -> list[torch.Tensor]:
    """HR downscaled (MATLAB bicubic) to the size of each output; the HR itself where sizes match."""
    from srcore.data.resize import imresize

    return [hr if o.shape[-2:] == hr.shape[-2:] else imresize(hr, size=tuple(o.shape[-2:])) for o in outputs]


class ClassicStep(TrainStep):
    def __init__(self, setup: StepSetup) -> None:
        self.p: ClassicParams = setup.params  # type: ignore[assignment]
        gen = setup.generator
        self.losses = build_losses(setup)
        optim = setup.stage.optim
        groups = param_groups(gen, optim.lr, self.p.lr_mult)
        if self.p.optimizer == "sgd":
            opt: torch.optim.Optimizer = torch.optim.SGD(
                groups, lr=optim.lr, momentum=self.p.momentum, weight_decay=optim.weight_decay
            )
        else:
            opt = setup.optimizer(groups, optim)
        self.optimizers = {"generator": opt}
        if self.p.deep_supervision and not hasattr(gen, "forward_all"):
            from srcore.errors import ConfigError

            raise ConfigError([f"step_params.deep_supervision: {type(gen).__name__} has no intermediate outputs"])
        # one DDP wrapper per parameter set: the forward the step trains through
        self.deep = setup.wrap(gen, method="forward_all") if self.p.deep_supervision else None
        self.networks = {"generator": gen if self.deep is not None else setup.wrap(gen)}

    def alpha(self, stage_step: int) -> float:
        if not self.p.alpha_decay_steps:
            return self.p.alpha
        return self.p.alpha * max(0.0, 1.0 - stage_step / self.p.alpha_decay_steps)

    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        gen = self.networks["generator"]
        hr = batch["hr"]
        with ctx.autocast():
            if self.p.deep_supervision:
                assert self.deep is not None
                inter, final = self.deep(batch["lr"])
                a = self.alpha(ctx.stage_step)
                parts = [weighted_sum(self.losses, o.float(), t)[0] for o, t in zip(inter, level_targets(hr, inter))]
                inter_loss = (
                    torch.stack(parts).mean() if self.p.intermediate_reduce == "mean" else torch.stack(parts).sum()
                )
                final_loss, logs = weighted_sum(self.losses, final.float(), hr)
                total = a * inter_loss + (1 - a) * final_loss
                logs["loss/intermediate"] = inter_loss.detach()
                logs["alpha"] = torch.tensor(a)
            else:
                total, logs = weighted_sum(self.losses, gen(batch["lr"]).float(), hr)
        ctx.backward(total, "generator")
        if self.p.clip_theta is not None:
            opt = self.optimizers["generator"]
            group = opt.param_groups[0]
            lr = group["lr"] / group.get("lr_mult", 1.0)  # the current base lr, after the schedule
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.p.clip_theta / lr)
        ctx.optimizer_step("generator")
        logs["loss/total"] = total.detach()
        return logs


def build_classic_step(setup: StepSetup) -> ClassicStep:
    """Supervised step with SGD, per-layer lr, adjustable clipping and deep supervision."""
    return ClassicStep(setup)
