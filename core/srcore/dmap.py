"""Per-pixel discriminator maps: where a trained discriminator thinks an image looks real.

A discriminator that has a per-pixel output exposes ``mask(x) -> logits (N, C, H, W)`` (FASRGAN's
U-Net does). ``discriminator_map`` turns it into sigmoid(mask) averaged over channels, in [0, 1]:
1 = looks real, 0 = looks fake. ``load_discriminator`` rebuilds the discriminator of a srcore
checkpoint of a GAN stage from the checkpoint's own config, so no plugin is imported here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from srcore.errors import CheckpointError


@torch.no_grad()
def discriminator_map(discriminator: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, 3, H, W) RGB in [0, 1] -> (1, H, W) per-pixel realness in [0, 1]."""
    if not hasattr(discriminator, "mask"):
        raise CheckpointError(f"{type(discriminator).__name__} has no per-pixel output (no mask() method)")
    x = image.unsqueeze(0) if image.dim() == 3 else image
    was_training = discriminator.training
    discriminator.eval()
    try:
        param = next(discriminator.parameters())
        logits = discriminator.mask(x.to(param.device, param.dtype))
    finally:
        discriminator.train(was_training)
    return torch.sigmoid(logits).mean(dim=1)[0:1].cpu().float()


def save_discriminator_map(path: str | Path, discriminator: nn.Module, image: torch.Tensor) -> Path:
    """Write ``discriminator_map(discriminator, image)`` as an 8-bit grayscale PNG."""
    from srcore.data.io import write_image

    return write_image(path, discriminator_map(discriminator, image))


def load_discriminator(checkpoint: str | Path, manager: Any = None) -> nn.Module:
    """The discriminator saved with a srcore checkpoint of a GAN stage (run folder, ``<run>/last``
    or a step folder), rebuilt from the stage's ``discriminator`` config and put in eval mode."""
    from srcore.engine.checkpoint import load_safetensors, resolve_checkpoint_path

    p = resolve_checkpoint_path(checkpoint)
    meta_file, weights = p / "meta.json", p / "discriminator.safetensors"
    if not meta_file.is_file() or not weights.is_file():
        raise CheckpointError(f"{p}: not a checkpoint of a GAN stage (needs meta.json and discriminator.safetensors)")
    meta = json.loads(meta_file.read_text())
    ref = meta["config"]["stages"][int(meta.get("stage", 0))].get("discriminator")
    if ref is None:
        raise CheckpointError(f"{p}: its stage has no discriminator")
    if manager is None:
        from srcore.plugins import load_plugins

        manager = load_plugins()
    disc = manager.registries.build("discriminator", ref["id"], ref.get("params", {}))
    if not hasattr(disc, "mask"):
        raise CheckpointError(f"{p}: discriminator {ref['id']} has no per-pixel map (a mask() method)")
    state, _ = load_safetensors(weights)
    disc.load_state_dict(state)
    return disc.eval()
