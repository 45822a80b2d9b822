"""Colour conversion, MATLAB imresize and image I/O (srcore.data.color/resize/io)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from srcore.data.color import quantize, rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from srcore.data.io import ImageReadError, read_image, tensor_to_array, write_image
from srcore.data.resize import imresize
from srcore.testing import shared_data_dir as shared_data

MATS = shared_data() / "Set5" / "matlab_reference_mats_twtygqyy"


# -- colour -----------------------------------------------------------------------------------

def test_ycbcr_matches_skimage_and_roundtrips():
    from skimage.color import rgb2ycbcr

    x = torch.rand(2, 3, 7, 9, dtype=torch.float64)
    ours = rgb_to_ycbcr(x) * 255
    ref = np.stack([rgb2ycbcr(im.permute(1, 2, 0).numpy()) for im in x]).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-10)
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)).numpy(), x.numpy(), atol=1e-12)
    np.testing.assert_allclose(rgb_to_y(x).numpy(), rgb_to_ycbcr(x)[:, :1].numpy(), atol=1e-15)
    assert rgb_to_y(x[0]).shape == (1, 7, 9)


def test_y_range_and_quantize_rounds_half_to_even():
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert rgb_to_y(white).item() == pytest.approx(235 / 255, abs=1e-6)
    assert rgb_to_y(black).item() == pytest.approx(16 / 255, abs=1e-7)
    v = torch.tensor([0.5, 1.5, 2.5, 254.5], dtype=torch.float64) / 255
    assert (quantize(v) * 255).tolist() == [0.0, 2.0, 2.0, 254.0]  # as np.round / cv2.imwrite


# -- MATLAB imresize -------------------------------------------------------------------------

@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["bird", "butterfly", "head", "woman"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_imresize_matches_real_matlab(name: str, scale: int):
    scipy_io = pytest.importorskip("scipy.io")
    path = MATS / f"{name}_GT_x{scale}.mat"
    if not path.is_file():
        pytest.skip(f"MATLAB reference files not found at {MATS} (set SRCORE_SHARED_DATA)")
    m = scipy_io.loadmat(path)
    gt = torch.from_numpy(m["im_gt_y"])[None, None]
    lr = imresize(gt, 1 / scale)[0, 0].numpy()
    assert lr.shape == m["im_l_y"].shape
    np.testing.assert_allclose(lr, m["im_l_y"], rtol=0, atol=1e-10)
    up = imresize(torch.from_numpy(m["im_l_y"])[None, None], scale)[0, 0].numpy()
    np.testing.assert_allclose(up, m["im_b_y"], rtol=0, atol=1e-10)


def test_imresize_sizes_constant_and_linear_ramp():
    x = torch.full((1, 3, 10, 7), 0.3, dtype=torch.float64)
    y = imresize(x, 1 / 3)
    assert y.shape == (1, 3, 4, 3)  # ceil(10/3), ceil(7/3) as MATLAB
    torch.testing.assert_close(y, torch.full_like(y, 0.3))
    assert imresize(x, size=(5, 14)).shape == (1, 3, 5, 14)
    # bicubic (a=-0.5) reproduces a linear ramp exactly away from the mirrored borders
    ramp = torch.arange(40, dtype=torch.float64).view(1, 1, 1, 40).expand(1, 1, 4, 40)
    up = imresize(ramp, 2)[0, 0, 0]
    expected = (torch.arange(80, dtype=torch.float64) + 0.5) / 2 - 0.5
    torch.testing.assert_close(up[4:-4], expected[4:-4])
    assert imresize(torch.rand(3, 8, 8), 0.5).shape == (3, 4, 4)


# -- I/O --------------------------------------------------------------------------------------

def test_write_read_roundtrip_8_and_16_bit(tmp_path: Path):
    x = torch.rand(3, 5, 6)
    p8 = write_image(tmp_path / "a.png", x)
    y8 = read_image(p8)
    assert y8.dtype == torch.float32 and y8.shape == (3, 5, 6)
    assert (y8 - x).abs().max() <= 0.5 / 255 + 1e-6
    assert torch.equal(read_image(write_image(tmp_path / "b.png", y8)), y8)  # lossless
    p16 = write_image(tmp_path / "c.png", x, bits=16)
    assert cv2.imread(str(p16), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    assert (read_image(p16) - x).abs().max() <= 0.5 / 65535 + 1e-6
    # channel order: red stays red
    red = torch.zeros(3, 2, 2)
    red[0] = 1
    assert cv2.imread(str(write_image(tmp_path / "r.png", red)))[0, 0].tolist() == [0, 0, 255]


def test_saved_levels_round_half_to_even_like_cv2_imwrite(tmp_path: Path):
    """Exact halves (and their float32 neighbours) as cv2.imwrite rounds a float array, 8 and 16 bit."""
    half = torch.arange(255, dtype=torch.float32) + 0.5
    levels = torch.stack([torch.nextafter(half, torch.tensor(0.0)), half, torch.nextafter(half, torch.tensor(1e9))])
    x = (levels / 255).expand(3, -1, -1)
    assert torch.equal(x[0, 1] * 255, half)  # the halves survive the [0, 1] round trip exactly
    ok, png = cv2.imencode(".png", np.ascontiguousarray(levels.numpy()))
    ours = cv2.imread(str(write_image(tmp_path / "h.png", x)), cv2.IMREAD_UNCHANGED)
    assert ok and np.array_equal(ours[:, :, 0], cv2.imdecode(png, cv2.IMREAD_UNCHANGED))
    assert ours[1, :4, 0].tolist() == [0, 2, 2, 4]
    x16 = torch.tensor([0.5, 1.5, 2.5, 65534.5]) / 65535
    assert tensor_to_array(x16.view(1, 1, 4), bits=16).tolist() == [[0, 2, 2, 65534]]


def test_gray_and_rgba_inputs(tmp_path: Path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    cv2.imwrite(str(tmp_path / "g.png"), gray)
    g = read_image(tmp_path / "g.png")
    assert g.shape == (3, 3, 4) and torch.equal(g[0], g[2])
    assert g[1, 2, 3].item() == pytest.approx(gray[2, 3] / 255)
    bgra = np.zeros((2, 2, 4), np.uint8)
    bgra[..., 0] = 200  # blue
    bgra[..., 3] = 10  # nearly transparent: alpha is dropped, colour kept
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    a = read_image(tmp_path / "a.png")
    assert a.shape == (3, 2, 2) and a[2, 0, 0].item() == pytest.approx(200 / 255) and a[0].max() == 0


def test_bad_files_name_the_file(tmp_path: Path):
    with pytest.raises(ImageReadError, match="not found.*missing.png"):
        read_image(tmp_path / "missing.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty.*empty.png"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "junk.png").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="junk.png"):
        read_image(tmp_path / "junk.png")
    good = write_image(tmp_path / "t.png", torch.rand(3, 32, 32)).read_bytes()
    (tmp_path / "trunc.png").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageReadError, match="trunc.png"):
        read_image(tmp_path / "trunc.png")
    _ok, jpg = cv2.imencode(".jpg", (np.random.rand(32, 32, 3) * 255).astype(np.uint8))
    (tmp_path / "trunc.jpg").write_bytes(jpg.tobytes()[:300])
    with pytest.raises(ImageReadError, match="trunc.jpg"):
        read_image(tmp_path / "trunc.jpg")
    assert not list(tmp_path.glob(".*tmp*"))
