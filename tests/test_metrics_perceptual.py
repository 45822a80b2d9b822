"""LPIPS, FID and NIQE: the real loading code paths with weights the tests create.

The ImageNet/Inception weights these metrics need cannot be downloaded here, so the tests write
randomly initialised weights of the right architecture into a temporary torch hub cache and
check that srcore loads them exactly where the libraries themselves would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from srcore.metrics.weights import MissingWeightsError
from srcore.testing import shared_data_dir as shared_data


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub cache for the test (TORCH_HOME)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    d = tmp_path / "torch" / "hub" / "checkpoints"
    d.mkdir(parents=True)
    assert Path(torch.hub.get_dir()) == tmp_path / "torch" / "hub"
    return d


@pytest.fixture
def regs(srcore_manager):
    return srcore_manager.registries


def test_missing_weights_messages_name_file_and_place(regs, hub: Path):
    with pytest.raises(MissingWeightsError, match=r"alexnet-owt-7be5be79\.pth.*" + str(hub)):
        regs.build("metric", "core:lpips", {})
    with pytest.raises(MissingWeightsError, match=r"vgg16-397923af\.pth"):
        regs.build("metric", "core:lpips", {"net": "vgg"})
    with pytest.raises(MissingWeightsError, match=r"pt_inception-2015-12-05-6726825d\.pth.*" + str(hub)):
        regs.build("metric", "core:fid", {})
    with pytest.raises(MissingWeightsError, match="not found at /nowhere/w.pth"):
        regs.build("metric", "core:lpips", {"backbone_weights": "/nowhere/w.pth"})


def test_lpips_loads_backbone_like_the_library(regs, hub: Path):
    import lpips
    import torchvision

    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), hub / "alexnet-owt-7be5be79.pth")
    metric = regs.build("metric", "core:lpips", {})
    assert metric.higher_is_better is False
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 64, 64, generator=g, dtype=torch.float64)
    sr = (hr + 0.1 * torch.randn(hr.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    ours = metric.update(sr, hr)
    # reference: the lpips package loading its ImageNet trunk through torchvision from the same hub cache
    ref_net = lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()
    with torch.no_grad():
        ref = ref_net(sr.float(), hr.float(), normalize=True).flatten().double()
    torch.testing.assert_close(ours, ref)
    assert ours.shape == (2,) and (ours > 0).all()
    assert metric.update(hr, hr).abs().max() < 1e-6


def _fake_inception(path: Path) -> None:
    import torchvision

    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(net.state_dict(), path)


def test_fid_streaming_stats_and_cached_reference(regs, hub: Path, tmp_path: Path):
    from pytorch_fid.fid_score import calculate_frechet_distance

    torch.manual_seed(0)
    _fake_inception(hub / "pt_inception-2015-12-05-6726825d.pth")
    stats = tmp_path / "ref.npz"
    # dims=64 (an earlier Inception block) keeps scipy's sqrtm in the reference fast; same code path
    fid = regs.build("metric", "core:fid", {"ref_stats": str(stats), "batch_size": 2, "dims": 64})
    assert fid.higher_is_better is False
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(5, 3, 32, 32, generator=g)
    sr = (hr + 0.2 * torch.randn(hr.shape, generator=g)).clamp(0, 1)
    assert fid.update(sr[:3], hr[:3]) is None  # set-level: no per-image value
    fid.update(sr[3:], hr[3:])
    value = fid.compute()
    # reference: features of all images at once, numpy mean/cov, pytorch-fid's distance (scipy sqrtm)
    with torch.no_grad():
        f_sr = fid.model(sr)[0].mean(dim=(2, 3)).double().numpy()
        f_hr = fid.model(hr)[0].mean(dim=(2, 3)).double().numpy()
    mu_hr, cov_hr = f_hr.mean(0), np.cov(f_hr, rowvar=False)
    ref = calculate_frechet_distance(f_sr.mean(0), np.cov(f_sr, rowvar=False), mu_hr, cov_hr)
    assert value == pytest.approx(ref, rel=1e-5)
    with np.load(stats) as cached:  # the reference statistics were cached
        np.testing.assert_allclose(cached["mu"], mu_hr, atol=1e-9)
        np.testing.assert_allclose(cached["sigma"], cov_hr, atol=1e-9)
    again = regs.build("metric", "core:fid", {"ref_stats": str(stats), "dims": 64})
    again.update(sr, None)  # the reference now comes from the cache
    assert again.compute() == pytest.approx(value, rel=1e-9)


def test_niqe_code_path_with_test_params(regs, tmp_path: Path):
    from skimage import data

    from srcore.metrics.niqe import MissingNIQEParams, block_features, matlab_gaussian

    with pytest.raises(MissingNIQEParams, match="not found at"):
        regs.build("metric", "core:niqe", {"params": str(tmp_path / "none.npz")})
    img = torch.from_numpy(data.astronaut()[:200, :300].astype(np.float64) / 255).permute(2, 0, 1)[None]
    # a "pristine" model made from this very image's features gives a small distance
    from srcore.metrics.niqe import _smooth
    from srcore.metrics.prepare import to_measured

    y = to_measured(img, crop_border=0, y_channel=True)[0, 0][:192, :288]
    win = torch.from_numpy(matlab_gaussian())
    mu = _smooth(y, win)
    mscn = (y - mu) / (torch.sqrt((_smooth(y * y, win) - mu * mu).abs()) + 1)
    f1 = block_features(mscn.reshape(2, 96, 3, 96).permute(0, 2, 1, 3).reshape(-1, 96, 96))
    assert f1.shape == (6, 18) and torch.isfinite(f1).all()
    params = {"mu_pris_param": np.zeros(36), "cov_pris_param": np.eye(36), "gaussian_window": matlab_gaussian()}
    np.savez(tmp_path / "p.npz", **params)
    metric = regs.build("metric", "core:niqe", {"params": str(tmp_path / "p.npz")})
    v = metric.update(img).item()
    assert np.isfinite(v) and v > 0 and metric.higher_is_better is False


@pytest.mark.shared_data
def test_niqe_matches_matlab_on_baboon(regs):
    from srcore.data.io import read_image
    from srcore.metrics.niqe import basicsr_params_path

    if basicsr_params_path() is None:
        pytest.skip("NIQE pristine model not installed (pip install --no-deps basicsr)")
    path = shared_data() / "Set14" / "HR" / "baboon.png"
    if not path.is_file():
        pytest.skip(f"{path} not found (set SRCORE_SHARED_DATA)")
    niqe = regs.build("metric", "core:niqe", {})
    value = niqe.update(read_image(path)).item()
    assert value == pytest.approx(5.7296, abs=2e-3)  # MATLAB R2021a on this image: 5.72957338
