"""Registered degradations: MATLAB/OpenCV/PIL bicubic, blur, noise, JPEG, seeded chains."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from srcore.data.degrade import gaussian_kernel
from srcore.data.resize import imresize


@pytest.fixture
def regs(srcore_manager):
    return srcore_manager.registries


def _u8(x: torch.Tensor) -> np.ndarray:
    return np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8)


def test_bicubic_is_matlab_imresize_rounded(regs):
    hr = torch.rand(2, 3, 24, 36, dtype=torch.float64)
    lr = regs.build("degradation", "core:bicubic", {"scale": 3})(hr)
    assert lr.shape == (2, 3, 8, 12)
    ref = np.round(np.clip(imresize(hr, 1 / 3).numpy(), 0, 1) * 255) / 255
    np.testing.assert_allclose(lr.numpy(), ref, atol=1e-12)
    raw = regs.build("degradation", "core:bicubic", {"scale": 3, "quantize": False})(hr[0])
    assert raw.shape == (3, 8, 12) and not torch.allclose(raw * 255, torch.round(raw * 255))
    with pytest.raises(ValueError, match="multiple of the scale 3"):
        regs.build("degradation", "core:bicubic", {"scale": 3})(torch.rand(1, 3, 10, 9))


def test_cv_and_pil_bicubic_match_their_libraries(regs):
    hr = torch.rand(3, 20, 16)
    cv = regs.build("degradation", "core:bicubic_cv", {"scale": 2, "quantize": False})(hr)
    ref = cv2.resize(hr.permute(1, 2, 0).numpy(), (8, 10), interpolation=cv2.INTER_CUBIC)
    np.testing.assert_allclose(cv.numpy(), np.clip(ref, 0, 1).transpose(2, 0, 1), atol=1e-6)
    pil = regs.build("degradation", "core:bicubic_pil", {"scale": 2})(hr)
    ref = np.asarray(Image.fromarray(_u8(hr)).resize((8, 10), Image.Resampling.BICUBIC))
    assert np.array_equal(_u8(pil), ref)
    # the three bicubics really are different
    mat = regs.build("degradation", "core:bicubic", {"scale": 2, "quantize": False})(hr)
    assert (mat - cv).abs().max() > 1e-3


def test_blur_isotropic_anisotropic_and_decimation(regs):
    k = gaussian_kernel(21, 2.0)
    ax = torch.arange(21, dtype=torch.float64) - 10
    g = torch.exp(-(ax**2) / 8)
    torch.testing.assert_close(k, torch.outer(g, g) / torch.outer(g, g).sum())
    ka = gaussian_kernel(21, 4.0, 1.0, theta=0.0)
    assert ka[10, 14] > 5 * ka[14, 10]  # wider along x
    kr = gaussian_kernel(21, 4.0, 1.0, theta=math.pi / 2)
    torch.testing.assert_close(kr, ka.T)
    x = torch.zeros(1, 1, 41, 41, dtype=torch.float64)
    x[0, 0, 20, 20] = 1  # impulse response = kernel (far from the reflected borders)
    out = regs.build("degradation", "core:blur", {"sigma": 4.0, "sigma_y": 1.0})(x)
    torch.testing.assert_close(out[0, 0, 10:31, 10:31], ka)
    flat = torch.full((1, 3, 16, 16), 0.4)
    down = regs.build("degradation", "core:blur", {"scale": 4, "sigma": 1.2})(flat)
    assert down.shape == (1, 3, 4, 4) and torch.allclose(down, torch.full_like(down, 0.4))


def test_noise_sigma_in_255_units_and_seeded(regs):
    x = torch.full((1, 3, 128, 128), 0.5, dtype=torch.float64)
    n = regs.build("degradation", "core:noise", {"sigma": 10})
    out = n(x, generator=torch.Generator().manual_seed(1))
    assert abs((out - x).std().item() * 255 - 10) < 0.3
    again = n(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(out, again)
    gray = regs.build("degradation", "core:noise", {"sigma": 10, "gray": True})(x)
    assert torch.equal(gray[0, 0], gray[0, 1])


def test_jpeg_quality_orders_error(regs):
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 64), indexing="ij")
    img = torch.stack([xx, yy, (xx * yy) ** 0.5]).unsqueeze(0)
    img = img + 0.1 * torch.rand(img.shape, generator=torch.Generator().manual_seed(0))
    img = img.clamp(0, 1)
    errs = [
        (regs.build("degradation", "core:jpeg", {"quality": q})(img) - img).abs().mean().item() for q in (10, 50, 95)
    ]
    assert errs[0] > errs[1] > errs[2] > 0


def test_chain_seed_reproducible_and_scale_checked(regs):
    spec = {
        "steps": [
            {"id": "core:blur", "params": {"sigma": 0.5, "sigma_max": 2.0}},
            {"id": "core:bicubic", "params": {"scale": 2}},
            {"id": "core:noise", "params": {"sigma": 1, "sigma_max": 20}},
            {"id": "core:jpeg", "params": {"quality": 30, "quality_max": 90}},
        ],
        "seed": 7,
    }
    x = torch.rand(3, 3, 32, 32)
    a = regs.build("degradation", "core:chain", spec)
    b = regs.build("degradation", "core:chain", spec)
    assert a.scale == 2
    la, lb = a(x), b(x)
    assert la.shape == (3, 3, 16, 16) and torch.equal(la, lb)
    assert not torch.equal(la, a(x))  # the stream advances
    other = regs.build("degradation", "core:chain", {**spec, "seed": 8})
    assert not torch.equal(la, other(x))
    from srcore.errors import ConfigError

    with pytest.raises(ConfigError, match="steps downscale by 2"):
        regs.build("degradation", "core:chain", {**spec, "scale": 4})
