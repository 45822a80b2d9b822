"""The contract between the training loop and training steps (built-in or a plugin's).

A step factory, registered with ``register.step(name, factory, config=Params)`` in
``srcore_register_recipes``, is called as ``factory(setup)`` and returns a ``TrainStep``. The
engine owns devices, DDP wrapping, AMP, accumulation, clipping, schedulers, EMA, checkpoints and
logging; the step owns the method's forward/backward logic and asks the context to do the rest.

Distributed training (DDP): a step passes every module whose parameters it trains to
``setup.wrap(module)`` when it is built and calls the module that returns, never the bare one,
for the forwards whose backward must average gradients over ranks. Outside a distributed run
(and in preflight) ``wrap`` returns the module itself. Under DDP it returns a
``DistributedDataParallel`` wrapper: the gradients are averaged by bucketed all-reduces that
overlap the backward, and the engine runs accumulation micro-batches under ``no_sync()``. So:

* wrap what the forward goes through: a step that calls submodules (``net.h2l``) wraps those,
  and one that trains through another method wraps with ``setup.wrap(net, method="joint")``;
* every forward through a wrapper with gradients on needs a backward that reaches all its
  trainable parameters (several forwards before one backward are fine; a forward with the
  parameters frozen by ``requires_grad_(False)``, as a D during the G update, is fine);
  a network with parameters a step legitimately leaves without gradient is wrapped with
  ``setup.wrap(module, find_unused_parameters=True)`` (slower: the graph is searched each step);
* ``networks`` may hold the wrappers: checkpoints, EMA and validation see the bare modules.
The engine refuses, before step 1, a distributed step whose optimizers hold parameters that no
wrapper covers (their gradients would not be averaged and the ranks would drift apart).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from pydantic import BaseModel
from torch import nn

from srcore.config import ComponentRef, OptimConfig, RunConfig, StageConfig
from srcore.registry import Kind, Registries

Batch = Mapping[str, torch.Tensor]
"""Keys: ``lr`` (N,C,h,w), ``hr`` (N,C,H,W), optional ``lr_real`` (unpaired real LR domain),
``cond`` (N,1,h,w) condition map; all float in [0, 1] on the run's device."""


class StepContext(Protocol):
    """What the engine offers a step during one optimizer step."""

    device: torch.device
    global_step: int
    stage_step: int
    stage: StageConfig
    rng: torch.Generator  # seeded, checkpointed: sample conditions/noise from it (CPU generator)

    def autocast(self) -> AbstractContextManager[Any]:
        """Mixed-precision context (a no-op on CPU or when AMP is off)."""

    def backward(self, loss: torch.Tensor, optimizer: str) -> None:
        """Scale (AMP), divide by accumulation and backpropagate ``loss`` for that optimizer."""

    def optimizer_step(self, optimizer: str) -> None:
        """Unscale, clip, step and zero the named optimizer (skipped mid-accumulation)."""


class TrainStep(ABC):
    """One method's training step. ``networks['generator']`` is the SR model being trained."""

    networks: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    @abstractmethod
    def __call__(self, batch: Batch, ctx: StepContext) -> Mapping[str, float | torch.Tensor]:
        """Run forward/backward/optimizer steps; return the values to log (losses, D outputs)."""

    def generator_forward(self, lr: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """SR output used by validation and samples (override for multi-network methods)."""
        gen = self.networks["generator"]
        return gen(lr) if cond is None else gen(lr, cond)


class MethodForward(nn.Module):
    """``module.<method>`` as a ``forward``: DDP only reduces gradients of what goes through ``forward``."""

    def __init__(self, module: nn.Module, method: str) -> None:
        super().__init__()
        self.module, self.method = module, method

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.module, self.method)(*args, **kwargs)


@dataclass
class StepSetup:
    """Everything a step factory needs to build its networks, losses and optimizers."""

    run: RunConfig
    stage: StageConfig
    params: BaseModel  # the step's validated ``stage.step_params``
    generator: nn.Module  # built from ``run.model``; carried over between stages
    registries: Registries
    device: torch.device
    extra_networks: dict[str, nn.Module] = field(default_factory=dict)  # carried between stages
    make_optimizer: Callable[[Iterator[nn.Parameter] | list[Any], OptimConfig], torch.optim.Optimizer] | None = None
    distributed: bool = False  # set by the engine under torch.distributed; preflight leaves it off
    wrapped: list[nn.Module] = field(default_factory=list)  # the DDP wrappers ``wrap`` made
    load_pretrained: bool = True  # ``ref.pretrained`` weights are read at a stage's start, not on resume
    notes: list[str] = field(default_factory=list)  # what ``build`` loaded, for the engine to print

    def wrap(self, module: nn.Module, find_unused_parameters: bool = False, method: str = "forward") -> nn.Module:
        """The module the step calls: DDP-wrapped when distributed (see the module doc), else itself.

        ``method``: train through another method of ``module`` (``forward_all``): calling the result
        calls that method, so DDP sees it as the forward.
        """
        if method != "forward":
            module = MethodForward(module, method)
        if not self.distributed:
            return module
        from srcore.engine.dist import ddp_wrap

        wrapper = ddp_wrap(module, self.device, find_unused_parameters)
        if wrapper is not module:
            self.wrapped.append(wrapper)
        return wrapper

    def build(self, kind: Kind, ref: ComponentRef) -> Any:
        """The component ``ref`` names; a discriminator with ``pretrained`` starts from those weights."""
        built = self.registries.build(kind, ref.id, ref.params)
        if getattr(ref, "pretrained", None) is not None and self.load_pretrained:
            from srcore.engine.finetune import load_pretrained

            where = f"stages.{self.run.stages.index(self.stage)}.{kind}" if self.stage in self.run.stages else kind
            self.notes.append(load_pretrained(built, ref, where))
        return built

    def network(self, role: str) -> nn.Module:
        """A network of ``run.nets`` by role, built once and reused by later stages."""
        if role not in self.extra_networks:
            ref = self.run.nets[role]
            self.extra_networks[role] = self.build(ref.kind, ref).to(self.device)
        return self.extra_networks[role]

    def optimizer(self, params: Iterator[nn.Parameter] | list[Any], cfg: OptimConfig) -> torch.optim.Optimizer:
        if self.make_optimizer is not None:
            return self.make_optimizer(params, cfg)
        cls = torch.optim.AdamW if cfg.type == "adamw" else torch.optim.Adam
        return cls(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay, eps=cfg.eps)
