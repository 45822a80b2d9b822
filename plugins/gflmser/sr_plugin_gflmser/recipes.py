"""Recipes ``gflmser-faces-x4`` (the v1 schedule of the authors' ``v1_main.py`` in steps) and
``lmser-faces-x4`` (the joint gated model of ``Lmser/lmser_gate_main.py``).

An authors' epoch is 182,866 faces / batch 128 = 1,428 iterations. Epochs 1-2: H2L content
(lr 1e-3); 3-49: H2L adversarial (H2L lr 1e-4 after the x0.1 at epoch 3, D lr 1e-3); 50-149:
L2H (lr 1e-4 after the x0.1 at epoch 50). Their second L2H decay at epoch 150 rounds the lr to
0 (``np.round(1e-5, 4)``), so epochs 150-200 change no weight and are left out.

Joint model: batch 256, so an epoch (10 shards, 182,866 faces) is about 714 iterations; the
authors' loop ``range(1, 200)`` runs epochs 1-199 with lr = 1e-3 * 0.1 ** (epoch // 50) for
both nets (x0.1 at epochs 50, 100, 150), Adam (0.9, 0.999).
"""

from __future__ import annotations

from typing import Any

STEPS_PER_EPOCH = 1428
JOINT_STEPS_PER_EPOCH = 714
BIDIRECTIONAL = "gflmser:bidirectional"


def _stage(name: str, epochs: int, phase: str, lr: float, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "steps": epochs * STEPS_PER_EPOCH,
        "step": BIDIRECTIONAL,
        "step_params": {"phase": phase},
        "losses": [],  # the step's MSE terms and weights are in its step_params
        "optim": {"type": "adam", "lr": lr, "betas": [0.9, 0.999]},
        "optim_d": {"type": "adam", "lr": 1e-3, "betas": [0.9, 0.999]},
        "gan": {"type": "lsgan", "weight": 0.5},  # the authors' LSGAN: MSE of D's sigmoid output
        **extra,
    }


FACES_X4: dict[str, Any] = {
    "name": "gflmser-faces-x4",
    "plugins": ["gflmser"],
    "model": {"id": "gflmser:gflmser", "params": {"skip": "gated", "face_size": 16}},
    "nets": {"d_lr": {"id": "gflmser:d_lr", "kind": "discriminator"}},
    "data": {
        "train": {
            "hr": "faces/celeba_hq",
            "lr_real": "faces/real_lq",
            "degradation": {"id": "core:bicubic_cv"},
            "patch_size": 1024,  # whole aligned faces; the step resizes them to 64x64
            "batch_size": 128,
            "flip": True,
            "rot90": False,
        }
    },
    "stages": [
        _stage("h2l", 2, "h2l", 1e-3),
        _stage("h2l_adversarial", 47, "h2l_adversarial", 1e-4),
        _stage("l2h", 100, "l2h", 1e-4),
    ],
    "val": {
        "select": "last",  # the adversarially trained nets of the final stage, not a PSNR pick
        "sets": ["faces/ffhq10"],
        "metrics": [
            {"id": "core:psnr", "params": {"y_channel": True, "crop_border": 0, "y_convention": "float"}},
            {"id": "core:fid", "params": {}},
        ],
        "every": 5 * STEPS_PER_EPOCH,
    },
}

FACES_X4_DESCRIPTION = (
    "GFLmser x4 faces (16->64): H2L learns realistic LR against real unpaired LR faces, then the "
    "gated-skip L2H learns SR from H2L outputs (v1 staged schedule); val PSNR (Y, no crop) + FID"
)


def _joint_data() -> dict[str, Any]:
    train = dict(FACES_X4["data"]["train"], batch_size=256)
    return {"train": train}


_JOINT_SCHEDULE = {
    "type": "multistep",
    "gamma": 0.1,
    "milestones": [(e - 1) * JOINT_STEPS_PER_EPOCH for e in (50, 100, 150)],
}

LMSER_FACES_X4: dict[str, Any] = {
    "name": "lmser-faces-x4",
    "plugins": ["gflmser"],
    "model": {"id": "gflmser:lmser", "params": {"skip": "gated"}},
    "nets": {"d_lr": {"id": "gflmser:d_lr", "kind": "discriminator"}},
    "data": _joint_data(),
    "stages": [
        {
            "name": "joint",
            "steps": 199 * JOINT_STEPS_PER_EPOCH,
            "step": "gflmser:joint",
            "step_params": {"lr_weight": 5.0, "hr_weight": 0.1, "authors_gradients": True},
            "losses": [],  # the step's terms and weights are in its step_params
            "optim": {"type": "adam", "lr": 1e-3, "betas": [0.9, 0.999]},
            "optim_d": {"type": "adam", "lr": 1e-3, "betas": [0.9, 0.999]},
            "schedule": _JOINT_SCHEDULE,
            "schedule_d": _JOINT_SCHEDULE,
            "gan": {"type": "lsgan", "weight": 1.0},  # g_loss = MSE(D(fake), 1), unweighted
        }
    ],
    "val": {**FACES_X4["val"], "every": 5 * JOINT_STEPS_PER_EPOCH},
}

LMSER_FACES_X4_DESCRIPTION = (
    "GFLmser joint gated Lmser x4 faces (Lmser/lmser_gate_main.py): H2L (HR + z map) and L2H in one "
    "net, trained jointly: 5 MSE to avg-pooled HR + 0.1 MSE to HR + LSGAN vs real LR; Adam 1e-3, x0.1/50 ep"
)
