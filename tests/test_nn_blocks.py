"""Shared building blocks: VGG19 feature extractor / perceptual loss and VGG-style discriminators.

ImageNet VGG19 weights are not available here, so the perceptual-loss test saves a random
torchvision-layout state dict to a temporary file and loads it through the real path-loading
code; the expected value comes from torchvision's own VGG19 ``features`` with those weights.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F
from torchvision.models import vgg as tv_vgg

from srcore.errors import SrcoreError
from srcore.nn.discriminators import DiscriminatorVGG128, DiscriminatorVGG192
from srcore.nn.vgg import VGG19_FILE, VGGFeatureExtractor, layer_index
from srcore.testing import randomise_batchnorm

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def tv_features() -> torch.nn.Sequential:
    """torchvision's VGG19 feature stack (config "E"), randomly initialised, in eval mode."""
    torch.manual_seed(0)
    feats = tv_vgg.make_layers(tv_vgg.cfgs["E"], batch_norm=False).eval()
    for m in feats.modules():  # larger biases make differences between layers visible
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.normal_(m.bias, 0.0, 0.1)
    return feats


@pytest.fixture(scope="module")
def vgg_file(tv_features: torch.nn.Sequential, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A torchvision-layout VGG19 checkpoint (features + a dummy classifier entry) made by the test."""
    state = {f"features.{k}": v.clone() for k, v in tv_features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)
    path = tmp_path_factory.mktemp("hub") / VGG19_FILE
    torch.save(state, path)
    return path


def test_layer_names_match_torchvision_indices(tv_features: torch.nn.Sequential) -> None:
    assert layer_index("conv5_4") == 34 and isinstance(tv_features[34], torch.nn.Conv2d)
    assert layer_index("relu5_4") == 35 and isinstance(tv_features[35], torch.nn.ReLU)
    assert layer_index("relu2_2") == 8 and isinstance(tv_features[8], torch.nn.ReLU)
    assert layer_index("relu3_4") == 17 and layer_index("relu4_4") == 26
    assert layer_index("conv2_2") == 7 and tv_features[7].out_channels == 128
    with pytest.raises(SrcoreError, match="unknown VGG19 layer 'conv6_1'"):
        layer_index("conv6_1")


def test_extractor_loads_path_and_matches_torchvision(tv_features: torch.nn.Sequential, vgg_file: Path) -> None:
    ext = VGGFeatureExtractor(["relu2_2", "conv5_4", "relu5_4"], weights=str(vgg_file))
    assert len(ext.features) == 36  # only what is needed: up to relu5_4, no pool5
    assert all(not p.requires_grad for p in ext.parameters())
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    out = ext(x)
    xn = (x - MEAN) / STD
    with torch.no_grad():
        expected_conv54 = tv_features[:35](xn)
        expected_relu22 = tv_features[:9](xn)
    torch.testing.assert_close(out["conv5_4"], expected_conv54, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out["relu2_2"], expected_relu22, atol=1e-5, rtol=1e-5)
    # pre-ReLU conv5_4 keeps its negative values although relu5_4 is computed after it
    assert (out["conv5_4"] < 0).any()
    torch.testing.assert_close(out["relu5_4"], out["conv5_4"].clamp_min(0))
    # input_range: 0..255 inputs give the same features as [0, 1] inputs
    ext255 = VGGFeatureExtractor(["conv5_4"], weights=str(vgg_file), input_range=255.0)
    torch.testing.assert_close(ext255(x * 255)["conv5_4"], out["conv5_4"], atol=1e-4, rtol=1e-4)
    # without input normalisation, the raw input goes in
    raw = VGGFeatureExtractor(["relu2_2"], weights=str(vgg_file), use_input_norm=False)
    with torch.no_grad():
        torch.testing.assert_close(raw(x)["relu2_2"], tv_features[:9](x), atol=1e-5, rtol=1e-5)


def test_perceptual_loss_from_registry(srcore_manager, tv_features: torch.nn.Sequential, vgg_file: Path) -> None:
    loss = srcore_manager.registries.build(
        "loss",
        "core:perceptual",
        {"layers": {"conv5_4": 1.0, "relu2_2": 0.5}, "criterion": "l1", "weights": str(vgg_file)},
    )
    g = torch.Generator().manual_seed(2)
    sr = torch.rand(1, 3, 32, 32, generator=g, requires_grad=True)
    hr = torch.rand(1, 3, 32, 32, generator=g)
    value = loss(sr, hr)
    with torch.no_grad():
        a, b = (sr - MEAN) / STD, (hr - MEAN) / STD
        expected = F.l1_loss(tv_features[:35](a), tv_features[:35](b)) + 0.5 * F.l1_loss(
            tv_features[:9](a), tv_features[:9](b)
        )
    torch.testing.assert_close(value.detach(), expected, atol=1e-5, rtol=1e-5)
    value.backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss.parameters())
    mse = srcore_manager.registries.build(
        "loss", "core:perceptual", {"layers": {"relu2_2": 1.0}, "criterion": "mse", "weights": str(vgg_file)}
    )
    with torch.no_grad():
        expected_mse = F.mse_loss(tv_features[:9](a), tv_features[:9](b))
        torch.testing.assert_close(mse(sr, hr), expected_mse, atol=1e-5, rtol=1e-5)


def test_missing_weights_name_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with pytest.raises(SrcoreError) as info:
        VGGFeatureExtractor(["conv5_4"])
    msg = str(info.value)
    assert VGG19_FILE in msg and str(tmp_path / "th" / "hub" / "checkpoints") in msg
    with pytest.raises(SrcoreError, match="nothere.pth"):
        VGGFeatureExtractor(["conv5_4"], weights=str(tmp_path / "nothere.pth"))


def test_hub_cache_is_used(vgg_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    (ckpt / VGG19_FILE).write_bytes(vgg_file.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    from_cache = VGGFeatureExtractor(["relu1_2"])
    explicit = VGGFeatureExtractor(["relu1_2"], weights=str(vgg_file))
    torch.testing.assert_close(from_cache.features[0].weight, explicit.features[0].weight)


# -- discriminators ---------------------------------------------------------------------------

def _bn(x: torch.Tensor, sd: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    return F.batch_norm(
        x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"], sd[f"{key}.bias"], False, 0.0, 1e-5
    )


def ref_vgg128(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """mmsr Discriminator_VGG_128 written out from its layer list, reading weights by key."""
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    fea = lrelu(F.conv2d(x, sd["conv0_0.weight"], sd["conv0_0.bias"], 1, 1))
    fea = lrelu(_bn(F.conv2d(fea, sd["conv0_1.weight"], None, 2, 1), sd, "bn0_1"))
    for s in range(1, 5):
        fea = lrelu(_bn(F.conv2d(fea, sd[f"conv{s}_0.weight"], None, 1, 1), sd, f"bn{s}_0"))
        fea = lrelu(_bn(F.conv2d(fea, sd[f"conv{s}_1.weight"], None, 2, 1), sd, f"bn{s}_1"))
    fea = lrelu(F.linear(fea.flatten(1), sd["linear1.weight"], sd["linear1.bias"]))
    return F.linear(fea, sd["linear2.weight"], sd["linear2.bias"])


def ref_vgg192(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> torch.Tensor:
    """Old-BasicSR Discriminator_VGG_192: flat features (conv k at index 3k-1, BN at 3k)."""
    lrelu = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    fea = lrelu(F.conv2d(x, sd["features.0.weight"], sd["features.0.bias"], 1, 1))
    for k in range(1, 12):
        i = 3 * k - 1
        stride = 2 if k % 2 else 1
        fea = F.conv2d(fea, sd[f"features.{i}.weight"], sd[f"features.{i}.bias"], stride, 1)
        fea = lrelu(_bn(fea, sd, f"features.{i + 1}"))
    fea = lrelu(F.linear(fea.flatten(1), sd["classifier.0.weight"], sd["classifier.0.bias"]))
    return F.linear(fea, sd["classifier.2.weight"], sd["classifier.2.bias"])


def test_vgg128_params_names_and_equations() -> None:
    d = DiscriminatorVGG128()
    assert n_params(d) == 14_499_401
    keys = set(d.state_dict())
    assert {"conv0_0.bias", "bn4_1.running_var", "linear1.weight", "linear2.bias"} <= keys
    assert "conv0_1.bias" not in keys and "conv4_1.bias" not in keys
    small = DiscriminatorVGG128(3, 8).eval()
    randomise_batchnorm(small)
    x = torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        out = small(x)
        assert out.shape == (2, 1)
        assert (out - ref_vgg128(x, small.state_dict())).abs().max() <= 1e-5
    with pytest.raises(ValueError, match="128x128"):
        small(torch.rand(1, 3, 96, 96))


def test_vgg192_params_names_and_equations(srcore_manager) -> None:
    regs = srcore_manager.registries
    assert n_params(regs.build("discriminator", "core:vgg192", {"in_nc": 64})) == 20_735_689
    assert n_params(regs.build("discriminator", "core:vgg128", {})) == 14_499_401
    small = DiscriminatorVGG192(in_nc=5, nf=8).eval()
    randomise_batchnorm(small)
    assert "features.33.running_mean" in small.state_dict() and "classifier.2.weight" in small.state_dict()
    x = torch.rand(2, 5, 192, 192, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        out = small(x)
        assert out.shape == (2, 1)
        assert (out - ref_vgg192(x, small.state_dict())).abs().max() <= 1e-5
