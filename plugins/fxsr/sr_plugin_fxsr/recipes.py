"""FxSR recipes: PSNR-oriented pre-training, then the conditional GAN stage.

Schedules follow ESRGAN's (RRDB_PSNR: Adam 2e-4, halved every 200k of 1M steps) for the first
stage and the author's SROT code (same generator; Adam 1e-4 betas (0.9, 0.99) for G and D,
halved at 50k/100k/200k/300k of 400k steps, batch 16, HR patches 128, RaGAN, VGG-128 D) for the
second; FxSR itself does not publish them (spec section 3). Both stages use ``fxsr:conditional``,
so t is sampled and fed from the first step on.
"""

from __future__ import annotations

from typing import Any

from sr_plugin_fxsr.controller import DS, PD, PSNR, StyleController


def _weights(controller: StyleController) -> dict[str, Any]:
    return controller.model_dump(mode="json")


def conditional_recipe(name: str, scale: int, controller: StyleController) -> dict[str, Any]:
    """RunConfig defaults for one FxSR model: stage ``psnr`` then stage ``gan`` with ``controller``."""
    adam_g = {"type": "adam", "lr": 1e-4, "betas": [0.9, 0.99]}
    return {
        "name": name,
        "plugins": ["fxsr"],
        "model": {"id": "fxsr:fxsr", "params": {"scale": scale}},
        "data": {"train": {"patch_size": 128, "batch_size": 16}},
        "stages": [
            {
                "name": "psnr",
                "steps": 1_000_000,
                "step": "fxsr:conditional",
                "step_params": {"weights": _weights(PSNR)},
                "optim": {"type": "adam", "lr": 2e-4, "betas": [0.9, 0.99]},
                "schedule": {"type": "multistep", "milestones": [200_000, 400_000, 600_000, 800_000], "gamma": 0.5},
            },
            {
                "name": "gan",
                "steps": 400_000,
                "step": "fxsr:conditional",
                "step_params": {"weights": _weights(controller)},
                "optim": adam_g,
                "schedule": {"type": "multistep", "milestones": [50_000, 100_000, 200_000, 300_000], "gamma": 0.5},
                "discriminator": {"id": "core:vgg128"},
                "gan": {"type": "ragan"},
                "optim_d": adam_g,
                "schedule_d": {"type": "multistep", "milestones": [50_000, 100_000, 200_000, 300_000], "gamma": 0.5},
            },
        ],
        "val": {
            "select": "last",  # the final (GAN) stage's generator: best PSNR would favour t=0 only
            "sets": ["set5"],
            "condition": [0.0, 0.8],
            "metrics": [
                {"id": "core:psnr", "params": {"y_channel": True, "crop_border": scale}},
                {"id": "core:ssim", "params": {"y_channel": True, "crop_border": scale}},
            ],
            "every": 5000,
        },
    }


RECIPES: dict[str, tuple[str, int, StyleController]] = {
    "fxsr-pd-x4": ("FxSR-PD x4: t=0 distortion-oriented ... t=1 perception-oriented", 4, PD),
    "fxsr-ds-x4": ("FxSR-DS x4: t moves the perceptual loss from VGG22 (edges) to VGG44 (textures)", 4, DS),
    "fxsr-pd-x8": ("FxSR-PD x8: t=0 distortion-oriented ... t=1 perception-oriented", 8, PD),
}
