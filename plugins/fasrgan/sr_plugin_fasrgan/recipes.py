"""Default run configurations: PSNR-oriented L1 pre-training, then the GAN stage (x4, DIV2K).

Schedules from the authors' JSON options (spec sections 2.4, 3.4) and, for the ESRGAN PSNR
stage (the ``RRDB_PSNR_x4.pth`` FASRGAN starts from), the ESRGAN paper: L1, Adam 2e-4, halved
every 200k of 1M iterations. Validation follows the paper: PSNR/SSIM on Y with crop = scale
(MATLAB BT.601), and LPIPS.
"""

from __future__ import annotations

from typing import Any

SCALE = 4

VAL: dict[str, Any] = {
    "select": "last",  # the run stands for its final GAN generator, not the PSNR stage's best
    "sets": ["Set14"],  # the authors validate on Set14 x4 during training
    "metrics": [
        {"id": "core:psnr", "params": {"y_channel": True, "crop_border": SCALE}},
        {"id": "core:ssim", "params": {"y_channel": True, "crop_border": SCALE}},
        {"id": "core:lpips"},
    ],
    "every": 5000,
}


def _adam(lr: float) -> dict[str, Any]:
    return {"type": "adam", "lr": lr, "betas": [0.9, 0.999], "weight_decay": 0.0}


def _multistep(milestones: list[int]) -> dict[str, Any]:
    return {"type": "multistep", "milestones": milestones, "gamma": 0.5}


GAN_MILESTONES = [50_000, 100_000, 200_000, 300_000]

GAN_LOSSES: list[dict[str, Any]] = [
    {"id": "core:l1", "weight": 1e-2, "label": "pix"},
    {"id": "core:perceptual", "weight": 1.0, "label": "fea",
     "params": {"layers": {"conv5_4": 1.0}, "criterion": "l1"}},  # VGG19 features[:35], before ReLU
]

ESRGAN_PSNR_STAGE: dict[str, Any] = {
    "name": "psnr",
    "step": "core:supervised",
    "steps": 1_000_000,
    "losses": [{"id": "core:l1", "weight": 1.0}],
    "optim": _adam(2e-4),
    "schedule": _multistep([200_000, 400_000, 600_000, 800_000]),
}


def _gan_stage(step: str, discriminator: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "name": "gan",
        "step": step,
        "steps": 500_000,
        "losses": GAN_LOSSES,
        "optim": _adam(1e-4),
        "schedule": _multistep(GAN_MILESTONES),
        "optim_d": _adam(1e-4),
        "schedule_d": _multistep(GAN_MILESTONES),
        "discriminator": discriminator,
        "gan": {"type": "ragan", "weight": 5e-3},
        **extra,
    }


def _data(patch: int, batch: int) -> dict[str, Any]:
    return {
        "train": {
            "hr": "DIV2K",
            "degradation": {"id": "core:bicubic"},  # MATLAB imresize, as generate_mod_LR_bic.m
            "patch_size": patch,
            "batch_size": batch,
            "flip": True,
            "rot90": True,
        }
    }


def recipes() -> dict[str, tuple[dict[str, Any], str]]:
    """name -> (defaults, description)."""
    rrdb = {"id": "fasrgan:rrdbnet", "params": {"scale": SCALE, "nb": 23}}
    fasrgan = {
        "model": rrdb,
        "plugins": ["fasrgan"],
        "data": _data(128, 16),
        "stages": [
            ESRGAN_PSNR_STAGE,
            _gan_stage(
                "fasrgan:fasrgan",
                {"id": "fasrgan:unet", "params": {"input_size": 128}},
                step_params={"mask_gan_weight": 5e-3, "atten_weight": 5e-2},
            ),
        ],
        "val": VAL,
    }
    esrgan = {
        "model": rrdb,
        "plugins": ["fasrgan"],
        "data": _data(128, 16),
        "stages": [
            ESRGAN_PSNR_STAGE,
            _gan_stage("core:adversarial", {"id": "core:vgg128", "params": {"in_nc": 3, "nf": 64}}),
        ],
        "val": VAL,
    }
    fssrgan = {
        "model": {"id": "fasrgan:fssrgan", "params": {"scale": SCALE, "nb_e": 1, "nb": 16}},
        "plugins": ["fasrgan"],
        # the GAN stage's batch 32 / HR 192 (the authors' PSNR stage used batch 16 / HR 192):
        # the run config has one data section for all stages
        "data": _data(192, 32),
        "stages": [
            {
                "name": "psnr",
                "step": "core:supervised",
                "steps": 1_000_000,
                "losses": [{"id": "core:l1", "weight": 1.0}],
                "optim": _adam(2e-4),
                "schedule": _multistep([50_000, 100_000, 200_000, 600_000, 800_000]),
            },
            _gan_stage("fasrgan:fssrgan", {"id": "core:vgg192", "params": {"in_nc": 64, "nf": 64}}),
        ],
        "val": VAL,
    }
    return {
        "fasrgan-x4": (fasrgan, "FASRGAN x4: L1 pre-training, then U-Net per-pixel D + attention L1 (TMM'21)."),
        "fssrgan-x4": (fssrgan, "Fs-SRGAN x4: E1+G16 L1 pre-training, then D on shared E features (TMM'21)."),
        "esrgan-x4": (esrgan, "ESRGAN x4 baseline: L1 pre-training, then VGG-128 D + RaGAN + VGG54."),
    }
