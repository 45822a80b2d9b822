"""BasicSR / Real-ESRGAN RRDBNet files (``params_ema``, x1/x2/x4) load as ``core:rrdbnet``.

The reference is BasicSR's RRDBNet forward written here on its own key names (``body.N.rdbK``,
``conv_body``, ``conv_up1/2``, ``conv_hr``), with ``F.pixel_unshuffle`` for x2/x1 as in
``basicsr.archs.arch_util.pixel_unshuffle``; it never goes through srcore's module.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from srcore import load_checkpoint
from srcore.data.io import read_image, write_image

NF, NB, GC = 8, 1, 4


def basicsr_state(scale: int, nb: int = NB, in_ch: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights with BasicSR's RRDBNet key names and shapes."""
    g = torch.Generator().manual_seed(seed)
    first_in = in_ch * {1: 16, 2: 4, 4: 1}[scale]

    def conv(name: str, cin: int, cout: int) -> dict[str, torch.Tensor]:
        return {f"{name}.weight": torch.randn(cout, cin, 3, 3, generator=g) * 0.1,
                f"{name}.bias": torch.randn(cout, generator=g) * 0.01}

    sd = conv("conv_first", first_in, NF)
    for i in range(nb):
        for r in (1, 2, 3):
            for k in range(1, 6):
                cin, cout = NF + (k - 1) * GC, GC if k < 5 else NF
                sd |= conv(f"body.{i}.rdb{r}.conv{k}", cin, cout)
    for name in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        sd |= conv(name, NF, NF)
    return sd | conv("conv_last", NF, in_ch)


def basicsr_forward(x: torch.Tensor, sd: dict[str, torch.Tensor], scale: int, nb: int = NB) -> torch.Tensor:
    """BasicSR's ``RRDBNet.forward`` on the raw state dict."""

    def conv(name: str, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    def lrelu(t: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(t, 0.2)

    def rdb(prefix: str, t: torch.Tensor) -> torch.Tensor:
        feats = [t]
        for k in range(1, 5):
            feats.append(lrelu(conv(f"{prefix}.conv{k}", torch.cat(feats, 1))))
        return conv(f"{prefix}.conv5", torch.cat(feats, 1)) * 0.2 + t

    feat = F.pixel_unshuffle(x, {1: 4, 2: 2, 4: 1}[scale]) if scale < 4 else x
    feat = conv("conv_first", feat)
    body = feat
    for i in range(nb):
        block_in = body
        for r in (1, 2, 3):
            body = rdb(f"body.{i}.rdb{r}", body)
        body = body * 0.2 + block_in
    feat = feat + conv("conv_body", body)
    feat = lrelu(conv("conv_up1", F.interpolate(feat, scale_factor=2, mode="nearest")))
    feat = lrelu(conv("conv_up2", F.interpolate(feat, scale_factor=2, mode="nearest")))
    return conv("conv_last", lrelu(conv("conv_hr", feat)))


def lr_image() -> torch.Tensor:
    from skimage import data

    img = torch.from_numpy(data.astronaut()[100:124, 180:212].copy())  # 24 x 32: multiples of 4
    return img.permute(2, 0, 1).float()[None] / 255


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_params_ema_file_is_detected_and_equals_basicsr_forward(tmp_path: Path, scale: int) -> None:
    sd = basicsr_state(scale)
    path = tmp_path / f"RealESRGAN_x{scale}.pth"
    torch.save({"params_ema": sd, "params": basicsr_state(scale, seed=1)}, path)
    loaded = load_checkpoint(path)
    assert loaded.component.id == "core:rrdbnet"
    assert loaded.params == {"scale": scale, "in_nc": 3, "out_nc": 3, "nf": NF, "nb": NB, "gc": GC}
    x = lr_image()
    with torch.no_grad():
        diff = (loaded.module(x) - basicsr_forward(x, sd, scale)).abs().max().item()
    assert diff < 1e-5, diff


@pytest.mark.parametrize("nb", [6, 23])
def test_anime_6_and_23_block_layouts_and_odd_sizes(tmp_path: Path, nb: int) -> None:
    sd = basicsr_state(2, nb=nb)
    torch.save({"params_ema": sd}, tmp_path / "x2.pth")
    loaded = load_checkpoint(tmp_path / "x2.pth")
    assert loaded.params["nb"] == nb and loaded.scale == 2
    x = lr_image()[..., :23, :31]  # not a multiple of the unshuffle: padded inside, cropped back
    with torch.no_grad():
        out = loaded.module(x)
    assert out.shape[-2:] == (46, 62)


def test_naming_the_model_loads_basicsr_keys_without_detection(tmp_path: Path) -> None:
    sd = basicsr_state(4)
    torch.save({"params_ema": sd}, tmp_path / "x4.pth")
    loaded = load_checkpoint(tmp_path / "x4.pth", model="core:rrdbnet", params={"nf": NF, "nb": NB, "gc": GC})
    x = lr_image()
    with torch.no_grad():
        assert (loaded.module(x) - basicsr_forward(x, sd, 4)).abs().max() < 1e-5


def test_srcore_upscale_cli_on_a_basicsr_file(tmp_path: Path) -> None:
    sd = basicsr_state(2, seed=3)
    torch.save({"params_ema": sd}, tmp_path / "x2.pth")
    x = lr_image()
    write_image(tmp_path / "lr.png", x[0])
    lr = read_image(tmp_path / "lr.png")[None]  # the 8-bit image the CLI reads
    res = subprocess.run(
        [sys.executable, "-m", "srcore", "upscale", str(tmp_path / "x2.pth"), str(tmp_path / "lr.png"),
         "-o", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "core:rrdbnet" in res.stdout + res.stderr
    out = read_image(next((tmp_path / "out").glob("*.png")))
    with torch.no_grad():
        ref = basicsr_forward(lr, sd, 2).clamp(0, 1)[0]
    assert out.shape == ref.shape
    assert np.abs(out.numpy() - ref.numpy()).max() <= 1 / 255 + 1e-6
