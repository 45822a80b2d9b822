"""Recipes: the seed collection's training setup for every model (seed004_classics.md, section 3).

The collection counts epochs over pre-made patch files; the engine counts optimizer steps, so
``steps = epochs x steps_per_epoch`` where ``steps_per_epoch = patches / batch``. Patch counts
are the collection's where it states them (FSRCNN), exact where the protocol fixes them
(RDN/RCAN/WDSR: 800 DIV2K images x repeat 20 / batch 16 = 1000) and estimated otherwise (marked
"est." in ``EPOCH_STEPS``; the README shows the arithmetic). Data defaults to the built-in
photographs so every recipe runs as is; point ``data.train.hr`` at the collection's training set
(an HDF5 from ``srcore data prepare`` or an image folder) to reproduce it.

Deliberate differences from the collection (its bugs, seed004 section 4): VDSR uses momentum 0.9
(the code passed the weight decay as momentum); DRCN's recursive supervision starts at alpha = 1
(the config had 0) and follows the paper's wiring; DRRN has the paper's BN; LapSRN supervises
each level against the HR downscaled to that level (the code compared HR/2 with the x4 target) and
trains with twtygqyy's Adam (SGD on its summed Charbonnier diverges: README);
ReduceLROnPlateau (ESPCN, DRCN) has no step-based equivalent and is left constant.
"""

from __future__ import annotations

from typing import Any

EPOCH_STEPS: dict[str, tuple[int, str]] = {
    "srcnn": (775, "91 images, 33x33 stride 14: 24,800 sub-images (paper) / batch 32"),
    "fsrcnn-x2": (228_629, "14,632,248 patches (collection README) / batch 64"),
    "fsrcnn-x3": (101_156, "6,473,984 patches / batch 64"),
    "fsrcnn-x4": (55_416, "3,546,584 patches / batch 64"),
    "vdsr": (
        22_900,
        "est.: 291 images, 41/41 grid, rescales 1/.7/.5, 16 flip-rotation sets, x2/3/4, 2 methods / batch 128",
    ),
    "espcn": (43, "est.: 91 images, 17r patches stride 14r (~2,730) / batch 64"),
    "drcn": (1_350, "est.: 91 images, 41 stride 21, rescales 1/.7/.5, 4 rotations (~86k) / batch 64"),
    "drrn": (26_200, "est.: 291 images, 31 stride 28, 12 flip-rotation sets, x2/3/4 (~1.68M) / batch 64"),
    "lapsrn": (1_000, "est.: 291 images, random 128x128 crops / batch 64 (twtygqyy: 1000 iterations/epoch)"),
    "div2k": (1_000, "800 DIV2K images x repeat 20 / batch 16"),
}


def _steps(key: str, epochs: float) -> int:
    return round(EPOCH_STEPS[key][0] * epochs)


def _run(
    model: str,
    params: dict[str, Any],
    *,
    patch: int,
    batch: int,
    augment: bool,
    stage: dict[str, Any],
    repeat: int = 1,
    val_sets: list[str] | None = None,
    val_every: int = 10_000,
    crop: int | None = None,
) -> dict[str, Any]:
    scale = params.get("scale", 2)
    # HR patches are cut before the LR is made from them, so they must divide by the scale: the
    # collection's 33/41/31 (cut from pre-upsampled images) become the next multiple (e.g. 41 -> 42 at x2).
    patch = -(-patch // scale) * scale
    return {
        "plugins": ["srcnn"],
        "model": {"id": f"srcnn:{model}", "params": params},
        "data": {
            "train": {
                "hr": "builtin:skimage",
                "patch_size": patch,
                "batch_size": batch,
                "flip": augment,
                "rot90": augment,
                "repeat": repeat,
            }
        },
        "stages": [stage],
        "val": {
            "sets": val_sets if val_sets is not None else ["set5"],
            "every": val_every,
            "metrics": [
                {"id": "core:psnr", "params": {"y_channel": True, "crop_border": crop or scale}},
                {"id": "core:ssim", "params": {"y_channel": True, "crop_border": crop or scale}},
            ],
            "best_metric": "psnr",
        },
    }


def _stage(
    steps: int,
    loss: str,
    *,
    lr: float,
    step_params: dict[str, Any] | None = None,
    milestones: list[int] | None = None,
    gamma: float = 0.5,
    weight_decay: float = 0.0,
    grad_clip: float | None = None,
    loss_params: dict[str, Any] | None = None,
    classic: bool = True,
) -> dict[str, Any]:
    st: dict[str, Any] = {
        "name": "main",
        "steps": steps,
        "step": "srcnn:classic" if classic else "core:supervised",
        "losses": [{"id": loss, "params": loss_params or {}}],
        "optim": {"type": "adam", "lr": lr, "weight_decay": weight_decay},
        "schedule": {"type": "multistep", "milestones": milestones or [], "gamma": gamma}
        if milestones
        else {"type": "constant"},
    }
    if classic:
        st["step_params"] = step_params or {}
    if grad_clip is not None:
        st["grad_clip"] = grad_clip
    return st


def _epochs(key: str, epochs: list[int]) -> list[int]:
    return [_steps(key, e) for e in epochs]


def srcnn(scale: int) -> dict[str, Any]:
    """9-5-5, 33x33 patches, SGD lr 0.1 (last layer x0.1), momentum 0.9, wd 1e-4, 2000 epochs, batch 32."""
    st = _stage(
        _steps("srcnn", 2000),
        "core:mse",
        lr=0.1,
        weight_decay=1e-4,
        milestones=_epochs("srcnn", [1000, 1250, 1500, 2000]),
        gamma=0.95,
        step_params={"optimizer": "sgd", "momentum": 0.9, "lr_mult": {"conv3": 0.1}},
    )
    return _run("srcnn", {"scale": scale, "variant": "9-5-5"}, patch=33, batch=32, augment=False, stage=st)


def fsrcnn(scale: int) -> dict[str, Any]:
    """HR 20/21/24 patches, Adam 1e-3 (deconv x0.1), multistep [100,200,300] x0.5, 100 epochs, batch 64."""
    key = f"fsrcnn-x{scale}"
    st = _stage(
        _steps(key, 100),
        "core:mse",
        lr=1e-3,
        milestones=_epochs(key, [100, 200, 300]),
        step_params={"optimizer": "stage", "lr_mult": {"deconv": 0.1}},
    )
    return _run("fsrcnn", {"scale": scale}, patch={2: 20, 3: 21, 4: 24}[scale], batch=64, augment=True, stage=st)


def vdsr(scale: int) -> dict[str, Any]:
    """41x41 patches, SGD lr 0.1 momentum 0.9 wd 1e-4, grad-norm clip 0.4, MSE (sum), 50 epochs,
    lr x0.1 at epochs 10/20/30, batch 128 (the collection's canonical description.yaml)."""
    st = _stage(
        _steps("vdsr", 50),
        "core:mse",
        lr=0.1,
        weight_decay=1e-4,
        milestones=_epochs("vdsr", [10, 20, 30]),
        gamma=0.1,
        grad_clip=0.4,
        loss_params={"reduction": "sum"},
        step_params={"optimizer": "sgd", "momentum": 0.9},
    )
    return _run("vdsr", {"scale": scale}, patch=41, batch=128, augment=True, stage=st)


def espcn(scale: int) -> dict[str, Any]:
    """HR 17r patches, Adam 1e-3 (last layer x0.1), 3000 epochs, batch 64, no augmentation."""
    st = _stage(
        _steps("espcn", 3000), "core:mse", lr=1e-3, step_params={"optimizer": "stage", "lr_mult": {"subpixel": 0.1}}
    )
    return _run("espcn", {"scale": scale}, patch=17 * scale, batch=64, augment=False, stage=st)


def drcn(scale: int) -> dict[str, Any]:
    """41x41 patches, SGD lr 0.005 momentum 0.9 wd 1e-4, recursive supervision alpha 1 -> 0 over
    25 epochs, MSE, 100 epochs, batch 64."""
    st = _stage(
        _steps("drcn", 100),
        "core:mse",
        lr=0.005,
        weight_decay=1e-4,
        step_params={
            "optimizer": "sgd",
            "momentum": 0.9,
            "deep_supervision": True,
            "alpha": 1.0,
            "alpha_decay_steps": _steps("drcn", 25),
            "intermediate_reduce": "mean",
        },
    )
    return _run("drcn", {"scale": scale}, patch=41, batch=64, augment=True, stage=st)


def drrn(scale: int) -> dict[str, Any]:
    """31x31 patches, SGD lr 0.1 momentum 0.9 wd 1e-4, adjustable clipping 0.01/lr, MSE (sum),
    lr x0.1 at epochs 10..60, 100 epochs, batch 64."""
    st = _stage(
        _steps("drrn", 100),
        "core:mse",
        lr=0.1,
        weight_decay=1e-4,
        milestones=_epochs("drrn", [10, 20, 30, 40, 50, 60]),
        gamma=0.1,
        loss_params={"reduction": "sum"},
        step_params={"optimizer": "sgd", "momentum": 0.9, "clip_theta": 0.01},
    )
    return _run("drrn", {"scale": scale}, patch=31, batch=64, augment=True, stage=st)


def lapsrn(scale: int) -> dict[str, Any]:
    """128x128 HR patches, Charbonnier (eps 1e-3, summed over pixels and batch) on every level,
    Adam lr 1e-4, 100 epochs, batch 64: twtygqyy/pytorch-LapSRN's training of this layout."""
    st = _stage(
        _steps("lapsrn", 100),
        "core:charbonnier",
        lr=1e-4,
        loss_params={"eps": 1e-3, "reduction": "sum"},
        step_params={"optimizer": "stage", "deep_supervision": True, "alpha": 1.0, "intermediate_reduce": "sum"},
    )
    return _run("lapsrn", {"scale": scale}, patch=128, batch=64, augment=True, stage=st)


def _div2k(model: str, params: dict[str, Any], lr: float) -> dict[str, Any]:
    st = _stage(
        _steps("div2k", 1000), "core:l1", lr=lr, milestones=_epochs("div2k", [200, 400, 600, 800]), classic=False
    )
    return _run(model, params, patch=48 * params["scale"], batch=16, augment=True, stage=st, repeat=20)


def rdn(scale: int) -> dict[str, Any]:
    """DIV2K, LR patch 48, L1, Adam 1e-4, lr x0.5 every 200 epochs, 1000 epochs, batch 16."""
    return _div2k("rdn", {"scale": scale}, 1e-4)


def rcan(scale: int) -> dict[str, Any]:
    """Paper setup (no config in the collection): DIV2K, LR patch 48, L1, Adam 1e-4 halved every 2e5 steps, batch 16."""
    return _div2k("rcan", {"scale": scale}, 1e-4)


def wdsr(kind: str, scale: int) -> dict[str, Any]:
    """Paper setup: DIV2K, LR patch 48, L1, Adam 1e-3 (weight norm allows it), halved every 2e5 steps, batch 16."""
    return _div2k(f"wdsr_{kind}", {"scale": scale}, 1e-3)


def glean(scale: int) -> dict[str, Any]:
    """Pixel (MSE) + perceptual (VGG19) fine-tuning of the encoder/decoder around the frozen bank, Adam 1e-4,
    32x32 LR faces. The adversarial term of the paper needs a discriminator for 256..1024 px outputs; add it
    with stages.0.step=core:adversarial and a discriminator of that size."""
    st = _stage(300_000, "core:mse", lr=1e-4, classic=False)
    st["losses"].append({"id": "core:perceptual", "weight": 1e-2, "params": {}})
    st["schedule"] = {"type": "cosine", "min_lr": 1e-7}
    run = _run("glean", {"scale": scale}, patch=32 * scale, batch=8, augment=False, stage=st, val_sets=[], crop=0)
    run["data"]["train"]["flip"] = True
    return run


DEMO_HELDOUT = ("camera", "hubble_deep_field", "ihc", "coins", "moon")
"""scikit-image photographs `srcore demo` evaluates on; training (builtin:skimage) uses astronaut,
chelsea, coffee, rocket and motorcycle_left only."""


def demo(scale: int = 3) -> dict[str, Any]:
    """FSRCNN x3 on the built-in photographs, a few CPU minutes; evaluated on DEMO_HELDOUT."""
    st = _stage(
        3000,
        "core:mse",
        lr=2e-3,
        milestones=[2000, 2600],
        step_params={"optimizer": "stage", "lr_mult": {"deconv": 0.1}},
    )
    run = _run(
        "fsrcnn",
        {"scale": scale},
        patch=48,
        batch=16,
        augment=True,
        stage=st,
        val_every=1000,
        val_sets=[],  # `srcore demo` validates on held-out photographs it writes (see DEMO_HELDOUT)
    )
    run["name"] = "demo-x3"
    return run


def all_recipes() -> dict[str, tuple[dict[str, Any], str]]:
    """Recipe name -> (RunConfig defaults, description)."""
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for s in (2, 3, 4):
        for name, fn in (
            ("srcnn", srcnn),
            ("fsrcnn", fsrcnn),
            ("vdsr", vdsr),
            ("espcn", espcn),
            ("drcn", drcn),
            ("drrn", drrn),
            ("rdn", rdn),
            ("rcan", rcan),
        ):
            out[f"{name}-x{s}"] = (fn(s), f"{name.upper()} x{s}: " + (fn.__doc__ or "").split("\n")[0])
        for kind in ("a", "b"):
            out[f"wdsr_{kind}-x{s}"] = (
                wdsr(kind, s),
                f"WDSR-{kind.upper()} x{s}: " + (wdsr.__doc__ or "").split("\n")[0],
            )
    for s in (2, 4, 8):
        out[f"lapsrn-x{s}"] = (lapsrn(s), f"LapSRN x{s}: " + (lapsrn.__doc__ or "").split("\n")[0])
    for s in (8, 16, 32):
        out[f"glean-x{s}"] = (glean(s), f"GLEAN x{s}: " + (glean.__doc__ or "").split("\n")[0])
    out["demo-x3"] = (
        demo(3),
        "Demo: FSRCNN x3 trained a few CPU minutes on scikit-image's photographs, evaluated on held-out ones.",
    )
    return out
