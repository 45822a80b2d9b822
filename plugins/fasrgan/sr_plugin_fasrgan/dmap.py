"""FASRGAN's per-pixel discriminator map as an image, the point of the method made visible.

``d_map`` runs the U-Net's decoder branch (no image head, so any image size works) in eval
mode and returns sigmoid(mask) averaged over the colour channels: 1 = the pixel looks real to
D, 0 = fake. During training the generator's attention L1 weights each pixel by
``1 - sigmoid(mask)``, so dark regions of the map are where G is pushed hardest.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn


@torch.no_grad()
def d_map(discriminator: nn.Module, image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) or (1, 3, H, W) RGB in [0, 1] -> (1, H, W) per-pixel realness in [0, 1]."""
    if not hasattr(discriminator, "mask"):
        raise TypeError(f"{type(discriminator).__name__} has no per-pixel output (use fasrgan:unet)")
    x = image.unsqueeze(0) if image.dim() == 3 else image
    was_training = discriminator.training
    discriminator.eval()
    try:
        param = next(discriminator.parameters())
        logits = discriminator.mask(x.to(param.device, param.dtype))
    finally:
        discriminator.train(was_training)
    return torch.sigmoid(logits).mean(dim=1)[0:1].cpu().float()


def save_d_map(path: str | Path, discriminator: nn.Module, image: torch.Tensor) -> Path:
    """Write ``d_map(discriminator, image)`` as an 8-bit grayscale PNG; returns the path."""
    from srcore.data.io import write_image

    return write_image(path, d_map(discriminator, image))


def load_discriminator(checkpoint: str | Path, manager: Any = None) -> nn.Module:
    """The per-pixel discriminator of a srcore run checkpoint (run folder, ``<run>/last`` or a step
    folder saved during a ``fasrgan:fasrgan`` stage), rebuilt from the checkpoint's own config."""
    from srcore.engine.checkpoint import load_safetensors, resolve_checkpoint_path
    from srcore.errors import CheckpointError

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
        raise CheckpointError(f"{p}: discriminator {ref['id']} has no per-pixel map (FASRGAN's is fasrgan:unet)")
    state, _ = load_safetensors(weights)
    disc.load_state_dict(state)
    return disc.eval()


def main(argv: list[str] | None = None) -> int:
    """``python -m sr_plugin_fasrgan.dmap --checkpoint RUN image.png -o map.png``: super-resolve the
    image with the run's generator and write D's per-pixel map of the result (``--no-sr``: of the
    image itself)."""
    import argparse

    from srcore.data.io import read_image, write_image
    from srcore.errors import SrcoreError

    ap = argparse.ArgumentParser(prog="python -m sr_plugin_fasrgan.dmap", description=main.__doc__)
    ap.add_argument("image")
    ap.add_argument("--checkpoint", required=True, help="run folder, <run>/last or a checkpoint folder")
    ap.add_argument("-o", "--output", required=True, help="PNG of the map")
    ap.add_argument("--no-sr", action="store_true", help="map the given image instead of its SR")
    ap.add_argument("--save-sr", help="also write the SR image here")
    args = ap.parse_args(argv)
    try:
        disc = load_discriminator(args.checkpoint)
        image = read_image(args.image)
        if not args.no_sr:
            from srcore.engine.checkpoint import load_checkpoint
            from srcore.infer import super_resolve

            image = super_resolve(load_checkpoint(args.checkpoint), image)[0]
            if args.save_sr:
                write_image(args.save_sr, image)
        save_d_map(args.output, disc, image)
    except SrcoreError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
