"""Default run configurations (recipes) of the plugin; values from the original code.

``srrescgan-x4``: main_sr_color.py. Pairs are made on the fly by the DSGAN degradation
(``srrescgan:dsgan``; point ``data.train.degradation.params.checkpoint`` at the released
``300_G.pth`` or a run of ``srrescgan-dsgan``). All losses and D work on 0..255 images
(``range_255``), and ``core:perceptual`` keeps ``input_range: 1`` so VGG19 sees 0..255 values
normalised as if they were [0, 1]: the original's quirk, reproduced on purpose (set
``input_range: 255`` in the perceptual term to feed VGG correctly scaled images instead).
``init_generator`` is empty: the original starts from its G_perceptual.pth.

``srrescgan-dsgan``: dsgan/train.py defaults. The run's model is G_d (scale 1): the step makes
its input z = MATLAB-bicubic /4 of the 512x512 clean HR patch (128x128) and compares G_d(z)
with a 128x128 window of a real-domain patch (``lr_real``, cropped at 512 by the dataset, so
real-domain images must be at least 512 pixels on each side).
The original keeps the learning rate for epochs 1-150 and decays it linearly to 0 over epochs
150-300 (~32.5k of ~65k iterations on DF2K): the core's ``linear`` schedule from step 32,500.
"""

from __future__ import annotations

from typing import Any

_MILESTONES = {"type": "multistep", "milestones": [5000, 10000, 20000, 30000], "gamma": 0.5}
_ADAM_SR = {"type": "adam", "lr": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.0}
_LINEAR_SECOND_HALF = {"type": "linear", "decay_start": 32500, "min_lr": 0.0}
_RGB_NO_CROP = {"crop_border": 0, "y_channel": False}

SR_RECIPE: dict[str, Any] = {
    "name": "srrescgan-x4",
    "plugins": ["srrescgan"],
    "model": {"id": "srrescgan:srrescgan", "params": {"scale": 4}},
    "data": {
        "train": {
            "hr": "builtin:skimage",
            "degradation": {"id": "srrescgan:dsgan", "params": {"checkpoint": "pretrained_nets/DSGAN/300_G.pth"}},
            "patch_size": 128,
            "batch_size": 16,
            "flip": True,
            "rot90": True,
        }
    },
    "stages": [
        {
            "name": "sr",
            "steps": 51000,
            "step": "srrescgan:sr",
            "step_params": {"mixup_prob": 0.5, "mixup_alpha": 1.2, "range_255": True, "highpass_kernel": 9},
            "losses": [
                {"id": "core:l1", "weight": 10.0, "label": "pixel"},
                {
                    "id": "core:perceptual",
                    "weight": 1.0,
                    "label": "vgg54",
                    "params": {"layers": {"conv5_4": 1.0}, "criterion": "l1", "input_range": 1.0},
                },
                {"id": "srrescgan:tv_diff", "weight": 1.0, "label": "tv"},
            ],
            "optim": _ADAM_SR,
            "schedule": _MILESTONES,
            "discriminator": {"id": "core:vgg128", "params": {"in_nc": 3, "nf": 64}},
            "gan": {"type": "ragan", "weight": 1.0},
            "optim_d": _ADAM_SR,
            "schedule_d": _MILESTONES,
        }
    ],
    "val": {
        "select": "last",  # trained with a GAN term throughout: the last generator, as the authors release
        "metrics": [
            {"id": "core:psnr", "params": _RGB_NO_CROP},
            {"id": "core:ssim", "params": _RGB_NO_CROP},
        ],
        "every": 1000,
        "best_metric": "psnr",
    },
}

_ADAM_DSGAN = {"type": "adam", "lr": 2e-4, "betas": [0.5, 0.999]}

DSGAN_RECIPE: dict[str, Any] = {
    "name": "srrescgan-dsgan",
    "plugins": ["srrescgan"],
    "model": {"id": "srrescgan:dsgan_g", "params": {"n_res_blocks": 8}},
    "data": {
        "train": {
            "hr": "builtin:skimage",
            "lr_real": "realworld_lr",
            "patch_size": 512,
            "batch_size": 16,
            "flip": True,
            "rot90": False,
        }
    },
    "stages": [
        {
            "name": "dsgan",
            "steps": 65000,
            "step": "srrescgan:dsgan",
            "step_params": {"downscale": 4},
            "losses": [
                {"id": "srrescgan:dsgan_color", "weight": 1.0, "label": "color"},
                {"id": "srrescgan:lpips", "weight": 0.01, "label": "perceptual"},
            ],
            "optim": _ADAM_DSGAN,
            "schedule": _LINEAR_SECOND_HALF,
            "discriminator": {"id": "srrescgan:dsgan_patch"},
            "gan": {"type": "vanilla", "weight": 0.005},
            "optim_d": _ADAM_DSGAN,
            "schedule_d": _LINEAR_SECOND_HALF,
        }
    ],
    "val": {"sets": [], "metrics": []},
}
