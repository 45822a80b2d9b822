"""Released weights on Set5, the protocol of issue 5: HR cropped to a multiple of the scale,
LR = MATLAB bicubic stored as uint8, VDSR's input = MATLAB bicubic upsampling of that LR kept in
float, Y in float from the images (BasicSR), PSNR on Y with crop = scale, SR clamped to [0, 1].
LapSRN x4 is checked end to end through `srcore eval` in test_cli_eval.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sr_plugin_srcnn.detect import detect

pytestmark = pytest.mark.shared_data

# The targets the issue states (within 0.02 dB).
FSRCNN = {2: 37.15, 3: 32.60, 4: 30.52}
VDSR = {2: 37.62, 3: 33.76, 4: 31.44}


def set5(data_root: Path, scale: int) -> list[torch.Tensor]:
    from srcore.data.io import read_image

    files = sorted((data_root / "Set5" / "HR").glob("*.png"))
    assert len(files) == 5
    out = []
    for f in files:
        hr = read_image(f)[None]
        h, w = hr.shape[-2:]
        out.append(hr[..., : h - h % scale, : w - w % scale])
    return out


def load_release(registries, path: Path, **params):
    state = torch.load(path, map_location="cpu", weights_only=True)
    match = detect(state)
    assert match is not None, f"{path.name} not recognised"
    model = registries.build("model", match.model, {**match.params, **params})
    model.load_state_dict(match.state_dict)
    return model.eval()


def y_psnr(model, hr: torch.Tensor, scale: int, pre_upsampled: bool) -> tuple[float, float]:
    """(model PSNR, bicubic PSNR) on Y in float, crop = scale."""
    from srcore.data.color import quantize, rgb_to_y
    from srcore.data.resize import imresize
    from srcore.metrics.fullref import psnr

    lr = quantize(imresize(hr.double(), 1 / scale)).float()
    up_y = rgb_to_y(imresize(lr, scale))
    with torch.no_grad():
        sr = model(up_y if pre_upsampled else rgb_to_y(lr)).clamp(0, 1)
    c = scale
    ref = (rgb_to_y(hr)[..., c:-c, c:-c] * 255).double()
    measure = lambda x: psnr((x[..., c:-c, c:-c] * 255).double(), ref).item()  # noqa: E731
    return measure(sr), measure(up_y.clamp(0, 1))


def mean_psnr(model, images: list[torch.Tensor], scale: int, pre: bool = False) -> tuple[float, float]:
    vals = [y_psnr(model, hr, scale, pre) for hr in images]
    return sum(v[0] for v in vals) / len(vals), sum(v[1] for v in vals) / len(vals)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_fsrcnn_yjn870_on_set5(registries, data_root, weights, scale) -> None:
    model = load_release(registries, weights / f"fsrcnn_x{scale}_yjn870.pth", scale=scale)
    got, bicubic = mean_psnr(model, set5(data_root, scale), scale)
    assert got == pytest.approx(FSRCNN[scale], abs=0.02)
    assert got > bicubic + 2.0


@pytest.mark.slow
def test_vdsr_twtygqyy_on_set5_all_scales(registries, data_root, weights) -> None:
    model = load_release(registries, weights / "vdsr_x234_twtygqyy.pth")
    got = {s: mean_psnr(model, set5(data_root, s), s, pre=True)[0] for s in (2, 3, 4)}
    assert got == {s: pytest.approx(v, abs=0.02) for s, v in VDSR.items()}


def test_espcn_dekelv_x3_beats_bicubic(registries, data_root, weights) -> None:
    model = load_release(registries, weights / "espcn_x3_Dekelv_epoch111.pth")
    got, bicubic = mean_psnr(model, set5(data_root, 3), 3)
    assert got > bicubic, (got, bicubic)
