"""PSNR/SSIM against an independent numpy implementation, scikit-image, and the Y conventions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from srcore.metrics.base import Metric
from srcore.testing import shared_data_dir as shared_data

# -- independent reference (plain numpy, no srcore code) -------------------------------------

def np_y_matlab(rgb_u8: np.ndarray) -> np.ndarray:
    """MATLAB rgb2ycbcr on uint8 HxWx3: Y rounded (half up) to an integer, in exact integer math."""
    r, g, b = (rgb_u8[..., i].astype(np.int64) for i in range(3))
    return ((65481 * r + 128553 * g + 24966 * b + 127500) // 255000 + 16).astype(np.float64)


def np_psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def np_ssim_2d(a: np.ndarray, b: np.ndarray) -> float:
    """Wang's ssim_index: 2-D Gaussian window 11/1.5 applied to every valid 11x11 block."""
    ax = np.arange(11) - 5.0
    w = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    pa, pb = sliding_window_view(a.astype(np.float64), (11, 11)), sliding_window_view(b.astype(np.float64), (11, 11))
    mu_a, mu_b = (pa * w).sum((-1, -2)), (pb * w).sum((-1, -2))
    var_a = (pa**2 * w).sum((-1, -2)) - mu_a**2
    var_b = (pb**2 * w).sum((-1, -2)) - mu_b**2
    cov = (pa * pb * w).sum((-1, -2)) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(m.mean())


def np_ssim(a: np.ndarray, b: np.ndarray) -> float:
    if a.ndim == 2:
        return np_ssim_2d(a, b)
    return float(np.mean([np_ssim_2d(a[..., i], b[..., i]) for i in range(a.shape[-1])]))


def to_t(img_u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img_u8.astype(np.float64) / 255.0).permute(2, 0, 1).unsqueeze(0)


@pytest.fixture
def regs(srcore_manager):
    return srcore_manager.registries


def pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Random uint8 pairs and real photographs with a realistic distortion."""
    from skimage import data

    rng = np.random.default_rng(0)
    out = []
    a = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).round().astype(np.uint8)
    out.append(("random", a, b))
    for name in ("astronaut", "coffee"):
        hr = getattr(data, name)()[:120, :150]
        dist = np.clip(hr.astype(float) + rng.normal(0, 6, hr.shape) - 3, 0, 255).round().astype(np.uint8)
        out.append((name, hr, dist))
    return out


@pytest.mark.parametrize("case", range(3))
@pytest.mark.parametrize("y_channel", [True, False])
def test_psnr_ssim_match_numpy_reference(regs, case: int, y_channel: bool):
    _, hr, sr = pairs()[case]
    crop = 3
    psnr = regs.build("metric", "core:psnr", {"crop_border": crop, "y_channel": y_channel})
    ssim = regs.build("metric", "core:ssim", {"crop_border": crop, "y_channel": y_channel})
    assert isinstance(psnr, Metric) and psnr.higher_is_better
    p = psnr.update(to_t(sr), to_t(hr))
    s = ssim.update(to_t(sr), to_t(hr))
    if y_channel:
        ra, rb = np_y_matlab(sr), np_y_matlab(hr)
    else:
        ra, rb = sr, hr
    ra, rb = ra[crop:-crop, crop:-crop], rb[crop:-crop, crop:-crop]
    assert abs(p.item() - np_psnr(ra, rb)) < 1e-6
    assert abs(s.item() - np_ssim(ra, rb)) < 1e-7
    assert psnr.compute() == pytest.approx(p.item(), abs=0) and ssim.compute() == s.item()


def test_ssim_matches_skimage_gaussian(regs):
    from skimage.metrics import structural_similarity

    for _, hr, sr in pairs():
        y_hr, y_sr = np_y_matlab(hr), np_y_matlab(sr)
        ref = structural_similarity(
            y_sr, y_hr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
        )
        ours = regs.build("metric", "core:ssim", {"y_channel": True}).update(to_t(sr), to_t(hr))
        assert abs(ours.item() - ref) < 1e-7


def test_batched_mean_over_images_and_reset(regs):
    cases = pairs()
    hr = torch.cat([to_t(c[1][:30, :40]) for c in cases])
    sr = torch.cat([to_t(c[2][:30, :40]) for c in cases])
    m = regs.build("metric", "core:psnr", {"crop_border": 2})
    per = m.update(sr, hr)
    assert per.shape == (3,) and per.dtype == torch.float64
    singles = [np_psnr(c[2][2:28, 2:38], c[1][2:28, 2:38]) for c in cases]
    np.testing.assert_allclose(per.numpy(), singles, atol=1e-6)
    assert m.compute() == pytest.approx(np.mean(singles), abs=1e-6)  # mean of per-image PSNRs
    m.reset()
    assert np.isnan(m.compute())
    m.update(sr[0], hr[0])  # CHW accepted
    assert m.compute() == pytest.approx(singles[0], abs=1e-6)
    with pytest.raises(ValueError, match="differs"):
        m.update(sr[:, :, :20], hr)


def test_y_conventions_differ_as_documented(regs):
    rng = np.random.default_rng(1)
    hr = torch.from_numpy(rng.random((1, 3, 40, 40)))
    sr = (hr + 0.02 * torch.from_numpy(rng.standard_normal((1, 3, 40, 40)))).clamp(0, 1)
    f = regs.build("metric", "core:psnr", {"y_channel": True, "y_convention": "float"}).update(sr, hr).item()
    m = regs.build("metric", "core:psnr", {"y_channel": True, "y_convention": "matlab"}).update(sr, hr).item()
    # float: Y of the float values, unrounded (BasicSR)
    def y_float(t: torch.Tensor) -> np.ndarray:
        r, g, b = (t[0, i].numpy() * 255 for i in range(3))
        return (65.481 * r + 128.553 * g + 24.966 * b) / 255.0 + 16.0

    assert abs(f - np_psnr(y_float(sr), y_float(hr))) < 1e-6
    u8 = lambda t: np.floor(t[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)  # noqa: E731
    assert abs(m - np_psnr(np_y_matlab(u8(sr)), np_y_matlab(u8(hr)))) < 1e-6
    assert abs(f - m) > 1e-3
    # 1-channel input is Y already
    y = torch.from_numpy(y_float(hr) / 255)[None, None]
    y2 = torch.from_numpy(y_float(sr) / 255)[None, None]
    one = regs.build("metric", "core:psnr", {"y_channel": True, "y_convention": "float"}).update(y2, y).item()
    assert one == pytest.approx(f, abs=1e-9)


def test_identical_images_and_bad_crop(regs):
    x = torch.rand(1, 3, 16, 16)
    assert regs.build("metric", "core:psnr", {}).update(x, x).item() == float("inf")
    assert regs.build("metric", "core:ssim", {}).update(x, x).item() == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(ValueError, match="leaves nothing"):
        regs.build("metric", "core:psnr", {"crop_border": 8}).update(x, x)


@pytest.mark.shared_data
def test_metrics_on_real_set5_against_numpy(regs):
    import cv2

    hr_dir = shared_data() / "Set5" / "HR"
    if not hr_dir.is_dir():
        pytest.skip(f"Set5 not found at {hr_dir} (set SRCORE_SHARED_DATA)")
    img = cv2.cvtColor(cv2.imread(str(hr_dir / "butterfly.png")), cv2.COLOR_BGR2RGB)
    blurred = cv2.GaussianBlur(img, (5, 5), 1.0)
    p = regs.build("metric", "core:psnr", {"crop_border": 4, "y_channel": True}).update(to_t(blurred), to_t(img))
    s = regs.build("metric", "core:ssim", {"crop_border": 4, "y_channel": True}).update(to_t(blurred), to_t(img))
    ya, yb = np_y_matlab(blurred)[4:-4, 4:-4], np_y_matlab(img)[4:-4, 4:-4]
    assert abs(p.item() - np_psnr(ya, yb)) < 1e-6
    assert abs(s.item() - np_ssim(ya, yb)) < 1e-7
