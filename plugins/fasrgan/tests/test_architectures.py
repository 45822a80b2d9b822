"""FASRGAN / Fs-SRGAN networks against independent re-implementations of the official code.

The references below are written from the authors' ``architecture.py`` equations with
functional ops, reading weights by the *official* key names (old BasicSR flattened sequentials,
``UNet`` module names). The tests create random official state dicts, load them through the
plugin's checkpoint detection/conversion and compare outputs (max abs difference <= 1e-5).
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from sr_plugin_fasrgan.arch import FsSRGANNet, UNetDiscriminator
from sr_plugin_fasrgan.official import detect, merge_fssrgan
from sr_plugin_fasrgan.plugin import RRDBNetConfig, UNetConfig
from srcore.plugins import PluginManager
from srcore.testing import randomise_batchnorm


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(scope="module")
def registries():
    return PluginManager().load(only=["core", "fasrgan"]).registries


# -- official RRDBNet / model_ex: key generation and functional forward ------------------------

def official_rrdb_keys(prefix: str, nf: int, gc: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for j in (1, 2, 3):
        for k in range(1, 6):
            c_in = nf + (k - 1) * gc
            c_out = gc if k < 5 else nf
            shapes[f"{prefix}.RDB{j}.conv{k}.0.weight"] = (c_out, c_in, 3, 3)
            shapes[f"{prefix}.RDB{j}.conv{k}.0.bias"] = (c_out,)
    return shapes


def official_rrdbnet_state(
    in_nc: int, nf: int, nb: int, gc: int, n_up: int, seed: int | None
) -> dict[str, torch.Tensor]:
    """Random weights under the released RRDB_net names: model.0, model.1.sub.{i}, model.{3k}, ..."""
    shapes: dict[str, tuple[int, ...]] = {"model.0.weight": (nf, in_nc, 3, 3), "model.0.bias": (nf,)}
    for i in range(nb):
        shapes.update(official_rrdb_keys(f"model.1.sub.{i}", nf, gc))
    shapes[f"model.1.sub.{nb}.weight"], shapes[f"model.1.sub.{nb}.bias"] = (nf, nf, 3, 3), (nf,)
    for idx in [3 * k for k in range(1, n_up + 1)] + [3 * n_up + 2]:
        shapes[f"model.{idx}.weight"], shapes[f"model.{idx}.bias"] = (nf, nf, 3, 3), (nf,)
    shapes[f"model.{3 * n_up + 4}.weight"], shapes[f"model.{3 * n_up + 4}.bias"] = (3, nf, 3, 3), (3,)
    return _random(shapes, seed)


def official_extractor_state(nf: int, nb: int, gc: int, seed: int) -> dict[str, torch.Tensor]:
    """model_ex: model.0 + model.1.sub[.i]; one RRDB loses its index (B.sequential returns it)."""
    shapes: dict[str, tuple[int, ...]] = {"model.0.weight": (nf, 3, 3, 3), "model.0.bias": (nf,)}
    for i in range(nb):
        shapes.update(official_rrdb_keys("model.1.sub" if nb == 1 else f"model.1.sub.{i}", nf, gc))
    return _random(shapes, seed)


def _random(shapes: dict[str, tuple[int, ...]], seed: int | None) -> dict[str, torch.Tensor]:
    if seed is None:  # shapes and names only (fast for the full-size model)
        return {k: torch.zeros(s) for k, s in shapes.items()}
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=g) * (0.05 if len(s) > 1 else 0.02) for k, s in shapes.items()}


def _conv(x: torch.Tensor, sd: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    return F.conv2d(x, sd[f"{key}.weight"], sd[f"{key}.bias"], padding=1)


def ref_rrdb(x: torch.Tensor, sd: dict[str, torch.Tensor], prefix: str) -> torch.Tensor:
    """block.RRDB: three ResidualDenseBlock_5C, each out = 0.2 * conv5 + x; out = 0.2 * rdb3 + x."""
    out = x
    for j in (1, 2, 3):
        feats = [out]
        for k in range(1, 5):
            feats.append(F.leaky_relu(_conv(torch.cat(feats, 1), sd, f"{prefix}.RDB{j}.conv{k}.0"), 0.2))
        out = _conv(torch.cat(feats, 1), sd, f"{prefix}.RDB{j}.conv5.0") * 0.2 + out
    return out * 0.2 + x


def ref_rrdbnet(x: torch.Tensor, sd: dict[str, torch.Tensor], nb: int, n_up: int) -> torch.Tensor:
    fea = _conv(x, sd, "model.0")
    trunk = fea
    for i in range(nb):
        trunk = ref_rrdb(trunk, sd, f"model.1.sub.{i}")
    fea = fea + _conv(trunk, sd, f"model.1.sub.{nb}")
    for k in range(1, n_up + 1):
        fea = F.leaky_relu(_conv(F.interpolate(fea, scale_factor=2, mode="nearest"), sd, f"model.{3 * k}"), 0.2)
    fea = F.leaky_relu(_conv(fea, sd, f"model.{3 * n_up + 2}"), 0.2)
    return _conv(fea, sd, f"model.{3 * n_up + 4}")


def ref_extractor(x: torch.Tensor, sd: dict[str, torch.Tensor], nb: int) -> torch.Tensor:
    fea = _conv(x, sd, "model.0")
    trunk = fea
    for i in range(nb):
        trunk = ref_rrdb(trunk, sd, "model.1.sub" if nb == 1 else f"model.1.sub.{i}")
    return fea + trunk


# -- generator tests ---------------------------------------------------------------------------

def test_rrdbnet_full_size_params_and_official_names(registries) -> None:
    net = registries.build("model", "fasrgan:rrdbnet", {})
    assert n_params(net) == 16_697_987
    official = official_rrdbnet_state(3, 64, 23, 32, 2, seed=None)
    assert sum(v.numel() for v in official.values()) == 16_697_987
    match = detect(official)
    assert match is not None and match.model == "fasrgan:rrdbnet"
    assert match.params == {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23, "gc": 32, "scale": 4}
    net.load_state_dict(match.state_dict)  # strict: every key mapped, nothing left over
    RRDBNetConfig(**match.params)


@pytest.mark.parametrize("n_up", [1, 2])
def test_rrdbnet_matches_official_equations(registries, n_up: int) -> None:
    nb, nf, gc = 2, 16, 8
    official = official_rrdbnet_state(3, nf, nb, gc, n_up, seed=n_up)
    match = detect({f"module.{k}": v for k, v in official.items()})  # DataParallel prefix too
    assert match is not None and match.params["scale"] == 2**n_up
    net = registries.build("model", "fasrgan:rrdbnet", match.params)
    net.load_state_dict(match.state_dict)
    x = torch.rand(2, 3, 10, 12, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        out, ref = net(x), ref_rrdbnet(x, official, nb, n_up)
    assert out.shape == (2, 3, 10 * 2**n_up, 12 * 2**n_up)
    assert (out - ref).abs().max() <= 1e-5


def test_fssrgan_params_and_official_equations(registries) -> None:
    full = registries.build("model", "fasrgan:fssrgan", {})
    assert (n_params(full.E), n_params(full.G), n_params(full)) == (721_216, 11_697_155, 12_418_371)
    nf, gc = 16, 8
    for nb_e in (1, 2):
        e_off = official_extractor_state(nf, nb_e, gc, seed=10 + nb_e)
        g_off = official_rrdbnet_state(nf, nf, 2, gc, 2, seed=20)  # G's fea_conv takes E's nf channels
        match = detect({**{f"E.{k}": v for k, v in e_off.items()}, **{f"G.{k}": v for k, v in g_off.items()}})
        assert match is not None and match.model == "fasrgan:fssrgan"
        assert match.params == {"nf": nf, "nb_e": nb_e, "nb": 2, "gc": gc, "scale": 4}
        assert match.state_dict.keys() == merge_fssrgan(e_off, g_off).keys()
        net = FsSRGANNet(**match.params)
        net.load_state_dict(match.state_dict)
        x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(nb_e))
        with torch.no_grad():
            ref = ref_rrdbnet(ref_extractor(x, e_off, nb_e), g_off, 2, 2)
            assert (net(x) - ref).abs().max() <= 1e-5


def test_detection_leaves_other_formats_alone() -> None:
    g_alone = official_rrdbnet_state(16, 16, 1, 8, 2, seed=1)  # Fs-SRGAN G without E: not usable alone
    assert detect(g_alone) is None
    assert detect({"conv_first.weight": torch.zeros(64, 3, 3, 3),
                   "RRDB_trunk.0.RDB1.conv1.weight": torch.zeros(32, 64, 3, 3),
                   "RRDB_trunk.0.RDB1.sft0.SFT_scale_conv0.weight": torch.zeros(32, 32, 1, 1)}) is None
    assert detect({"body.0.weight": torch.zeros(1)}) is None


# -- U-Net discriminator -----------------------------------------------------------------------

def _bn(x: torch.Tensor, sd: dict[str, torch.Tensor], key: str, eps: float) -> torch.Tensor:
    return F.batch_norm(x, sd[f"{key}.running_mean"], sd[f"{key}.running_var"], sd[f"{key}.weight"],
                        sd[f"{key}.bias"], False, 0.0, eps)


def ref_double_conv(x: torch.Tensor, sd: dict[str, torch.Tensor], key: str) -> torch.Tensor:
    """double_conv: Conv -> BatchNorm2d(out_ch, out_ch) (eps = out_ch) -> ReLU -> Conv -> BN -> ReLU."""
    out_ch = sd[f"{key}.0.weight"].shape[0]
    x = F.relu(_bn(F.conv2d(x, sd[f"{key}.0.weight"], sd[f"{key}.0.bias"], padding=1), sd, f"{key}.1", float(out_ch)))
    return F.relu(_bn(F.conv2d(x, sd[f"{key}.3.weight"], sd[f"{key}.3.bias"], padding=1), sd, f"{key}.4", 1e-5))


def ref_unet(x: torch.Tensor, sd: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    x1 = ref_double_conv(x, sd, "inc.conv.conv")
    x2 = ref_double_conv(F.max_pool2d(x1, 2), sd, "down1.mpconv.1.conv")
    x3 = ref_double_conv(F.max_pool2d(x2, 2), sd, "down2.mpconv.1.conv")
    x4 = ref_double_conv(F.max_pool2d(x3, 2), sd, "down3.mpconv.1.conv")
    h = F.leaky_relu(F.linear(x4.reshape(x4.shape[0], -1), sd["classifier.0.weight"], sd["classifier.0.bias"]), 0.2)
    logit = F.linear(h, sd["classifier.2.weight"], sd["classifier.2.bias"])
    y = x4
    for name, skip in (("up2", x3), ("up3", x2), ("up4", x1)):
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        y = ref_double_conv(torch.cat([skip, y], 1), sd, f"{name}.conv.conv")
    return logit, F.conv2d(y, sd["outc.conv.weight"], sd["outc.conv.bias"])


def test_unet_params_shapes_and_code_details(registries) -> None:
    d = registries.build("discriminator", "fasrgan:unet", {})
    assert n_params(d) == 70_473_220
    assert n_params(d.classifier) == 67_110_913
    assert d.outc.conv.kernel_size == (1, 1)  # code: outconv = Conv2d(64, 3, 1)
    assert d.inc.conv.conv[1].eps == 64 and d.down2.mpconv[1].conv[1].eps == 256 and d.inc.conv.conv[4].eps == 1e-5
    logit, mask = d(torch.rand(1, 3, 128, 128))
    assert logit.shape == (1, 1) and mask.shape == (1, 3, 128, 128)
    fig = UNetDiscriminator(mask_kernel=3, first_bn_eps=1e-5, input_size=32)
    assert fig.outc.conv.kernel_size == (3, 3) and fig.inc.conv.conv[1].eps == 1e-5
    assert UNetConfig(mask_kernel=3).mask_kernel == 3
    with pytest.raises(ValueError, match="128x128"):
        d(torch.rand(1, 3, 64, 64))


def test_unet_matches_official_equations() -> None:
    d = UNetDiscriminator(input_size=32).eval()  # same equations; a smaller image head
    randomise_batchnorm(d)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        logit, mask = d(x)
        ref_logit, ref_mask = ref_unet(x, d.state_dict())
        assert (logit - ref_logit).abs().max() <= 1e-5
        assert (mask - ref_mask).abs().max() <= 1e-5
        torch.testing.assert_close(d.mask(x), mask)  # decoder-only path = forward's map


def test_official_pth_loads_through_the_engine(tmp_path) -> None:
    """An authors'-format .pth (DataParallel prefix included) -> srcore's load_checkpoint -> same output."""
    from srcore.engine.checkpoint import load_checkpoint

    official = official_rrdbnet_state(3, 16, 2, 8, 2, seed=5)
    path = tmp_path / "FASRGAN_G.pth"
    torch.save({f"module.{k}": v for k, v in official.items()}, path)
    loaded = load_checkpoint(path, manager=PluginManager().load(only=["core", "fasrgan"]))
    assert loaded.component.id == "fasrgan:rrdbnet" and loaded.scale == 4
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        assert (loaded.module(x) - ref_rrdbnet(x, official, 2, 2)).abs().max() <= 1e-5
