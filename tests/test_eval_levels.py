"""Issue 17: evaluation on 8-bit levels (uint8) gives the numbers of the [0, 1] float path, and the
cache-blocked SSIM / rounding / banded resize equal plain references."""

from __future__ import annotations

import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from numpy.lib.stride_tricks import sliding_window_view

from srcore.data.color import quantize, quantize_uint8
from srcore.data.io import array_to_tensor, array_to_uint8, read_image, read_image_exact
from srcore.metrics.fullref import _gauss1d, _ssim_torch, ssim
from srcore.metrics.prepare import to_measured, y_matlab_uint8


def _old_array_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """The reader before the one-pass conversion (convert the whole array, then pick channels)."""
    if arr.dtype == np.uint8:
        x = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        x = arr.astype(np.float32) / 65535.0
    else:
        x = np.clip(arr.astype(np.float32), 0.0, 1.0)
    x = x[:, :, None] if x.ndim == 2 else x
    x = np.repeat(x[:, :, :1], 3, axis=2) if x.shape[2] in (1, 2) else x[:, :, 2::-1]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


@pytest.mark.parametrize(("shape", "dtype"), list(itertools.product(
    [(5, 7), (5, 7, 1), (5, 7, 2), (5, 7, 3), (5, 7, 4)], [np.uint8, np.uint16, np.float32, np.float64])))
def test_reader_values_unchanged_and_uint8_levels(shape: tuple[int, ...], dtype: type):
    rng = np.random.default_rng(len(shape) * 10 + shape[-1])
    if dtype in (np.uint8, np.uint16):
        arr = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    else:
        arr = (rng.random(shape) * 1.4 - 0.2).astype(dtype)
    got = array_to_tensor(arr)
    assert got.dtype == torch.float32 and got.is_contiguous() and torch.equal(got, _old_array_to_tensor(arr))
    u8 = array_to_uint8(arr)
    if dtype is np.uint8:
        assert u8.dtype == torch.uint8 and u8.is_contiguous() and torch.equal(u8.float() / 255, got)
    else:
        assert u8 is None


def test_read_image_exact(tmp_path: Path):
    rgb = np.random.default_rng(1).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), rgb[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "b.png"), (rgb.astype(np.uint16) * 257)[:, :, ::-1])
    a = read_image_exact(tmp_path / "a.png")
    assert a.dtype == torch.uint8 and torch.equal(a, torch.from_numpy(rgb).permute(2, 0, 1))
    b = read_image_exact(tmp_path / "b.png")  # 16-bit: floats, as read_image
    assert b.dtype == torch.float32 and torch.equal(b, read_image(tmp_path / "b.png"))


def test_integer_y_of_every_colour():
    """All 2^24 colours: Y from uint8, from exact and from float32 k / 255, against int64 numpy."""
    c = np.arange(2**24, dtype=np.int32)  # the numerator stays below 56e6
    r, g, b = c >> 16, (c >> 8) & 255, c & 255
    ref = (65481 * r + 128553 * g + 24966 * b + 127500) // 255000 + 16
    rgb = torch.from_numpy(np.stack([r, g, b]).astype(np.uint8).reshape(1, 3, 4096, 4096))
    expected = torch.from_numpy(ref.astype(np.float64).reshape(1, 1, 4096, 4096))
    assert torch.equal(y_matlab_uint8(rgb), expected)
    assert torch.equal(y_matlab_uint8(rgb[:, :, :64].double() / 255), expected[:, :, :64])
    assert torch.equal(y_matlab_uint8(rgb[:, :, :64].float() / 255), expected[:, :, :64])


@pytest.mark.parametrize(
    ("y_channel", "convention", "crop"), list(itertools.product((False, True), ("matlab", "float"), (0, 2))))
def test_measured_levels_equal_exact_floats(y_channel: bool, convention: str, crop: int):
    u8 = torch.randint(0, 256, (2, 3, 9, 11), generator=torch.Generator().manual_seed(3), dtype=torch.uint8)
    for x in (u8, u8[:, :1]):
        got = to_measured(x, crop_border=crop, y_channel=y_channel, y_convention=convention)
        ref = to_measured(x.double() / 255, crop_border=crop, y_channel=y_channel, y_convention=convention)
        assert got.dtype == torch.float64 and torch.equal(got, ref)


def test_quantize_uint8_is_quantize():
    g = torch.Generator().manual_seed(4)
    levels = torch.arange(256, dtype=torch.float64)
    near = torch.cat([(levels + 0.5 + e) / 255 for e in (0.0, -1e-11, 1e-11, -1e-6, 1e-6)])
    odd = torch.tensor([-5.0, -1e-300, 0.0, 1.0, 1 + 1e-15, 7.0], dtype=torch.float64)
    for x in (torch.rand(3, 70, 1100, generator=g, dtype=torch.float64) * 1.2 - 0.1,
              torch.cat([near, levels / 255, odd]).reshape(1, 1, 1, -1), near.float().reshape(-1, 2), near):
        got = quantize_uint8(x)
        assert got.dtype == torch.uint8 and got.shape == x.shape
        assert torch.equal(got.double() / 255, quantize(x.double()))


def _np_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Wang's ssim_index with the 2-D window on every valid 11x11 block (plain numpy)."""
    ax = np.arange(11) - 5.0
    w = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.5**2))
    w /= w.sum()
    pa, pb = sliding_window_view(a, (11, 11)), sliding_window_view(b, (11, 11))
    mu_a, mu_b = (pa * w).sum((-1, -2)), (pb * w).sum((-1, -2))
    var_a, var_b = (pa**2 * w).sum((-1, -2)) - mu_a**2, (pb**2 * w).sum((-1, -2)) - mu_b**2
    cov = (pa * pb * w).sum((-1, -2)) - mu_a * mu_b
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float((((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))).mean())


@pytest.mark.parametrize(("h", "w"), [(11, 11), (75, 30), (140, 33)])  # one strip, several, a short last strip
def test_ssim_strips_and_torch_path_equal_numpy(h: int, w: int):
    g = torch.Generator().manual_seed(h)
    x = torch.randint(16, 236, (2, 3, h, w), generator=g).double()
    y = (x + torch.randint(-20, 21, x.shape, generator=g)).clamp(16, 235)
    ref = torch.tensor([np.mean([_np_ssim(x[n, c].numpy(), y[n, c].numpy()) for c in range(3)]) for n in range(2)])
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    assert (ssim(x, y) - ref).abs().max() < 1e-12
    assert (_ssim_torch(x, y, _gauss1d(11, 1.5), c1, c2) - ref).abs().max() < 1e-12


def test_eval_set_gives_levels_and_the_lr_of_the_exact_hr(tmp_path: Path):
    from srcore.data.datasets import make_eval_dataset
    from srcore.data.degrade import BicubicMatlab

    rgb = np.random.default_rng(5).integers(0, 256, (66, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "im.png"), rgb[:, :, ::-1])
    item = make_eval_dataset(str(tmp_path), scale=4, root=None)[0]
    hr8 = torch.from_numpy(rgb).permute(2, 0, 1)[:, :64, :48]
    assert item["hr8"].dtype == torch.uint8 and torch.equal(item["hr8"], hr8)
    assert torch.equal(item["hr"], hr8.float() / 255)
    assert torch.equal(item["lr"], BicubicMatlab(4)(hr8.double() / 255).float())  # im2double, not float32 k / 255


def test_nan_sr_has_no_level_and_shows_in_the_metrics(srcore_manager):
    from srcore.metrics import evaluate as ev

    hr = torch.randint(0, 256, (3, 24, 24), generator=torch.Generator().manual_seed(6), dtype=torch.uint8)
    sr = hr.double() / 255
    sr[1, 5, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        quantize_uint8(sr)
    specs = ev.build_metrics(["psnr"], srcore_manager.registries, crop_border=0, y_channel=True, y_convention="matlab")
    res = ev.evaluate([("a", sr, hr), ("b", hr.double() / 255, hr)], specs, model="m", set_name="s", scale=1, workers=1)
    assert np.isnan(res.images[0]["psnr"]) and res.images[1]["psnr"] == float("inf")


def test_tight_and_loose_resize_blocks_agree():
    """One intra-op thread takes tight band blocks, several take ~128-input ones: same values."""
    from srcore.data.resize import band_matrices, imresize

    assert len(band_matrices(300, 75, 0.25, True, True)) > len(band_matrices(300, 75, 0.25, True, False))
    x = torch.rand(2, 3, 300, 200, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    before = torch.get_num_threads()
    try:
        out = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            out[threads] = (imresize(x, 0.25), imresize(x[..., :60, :50], 4))
    finally:
        torch.set_num_threads(before)
    for a, b in zip(out[1], out[2]):
        assert (a - b).abs().max() < 1e-13


def test_unquantized_float_rgb_is_stored_half_to_even_before_the_matlab_y():
    from srcore.metrics.prepare import y_matlab_uint8

    halves = torch.tensor([2.5, 3.5, 100.5, 254.5], dtype=torch.float64)
    x = (halves / 255.0).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    stored = torch.tensor([2, 4, 100, 254], dtype=torch.uint8).view(1, 1, 1, 4).expand(1, 3, 1, 4)
    assert torch.equal(y_matlab_uint8(x), y_matlab_uint8(stored.contiguous()))
