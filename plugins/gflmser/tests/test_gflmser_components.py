"""Discriminators, the correlation gate, registration, checkpoint detection and the h2l degradation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import sr_plugin_gflmser.plugin as gflmser_plugin
from sr_plugin_gflmser.nets import GFLmser, correlation_gate, count_parameters
from srcore.errors import CheckpointError, ConfigError
from srcore.testing import check_conformance

# -- discriminators: the authors' forward equations on their key names ---------------------------


def ref_discriminator(sd, x, unit_indices):
    """v1_discriminator.py / low_to_high/Discriminator.py on [-1, 1] inputs."""
    out = F.conv2d(x, sd["pre_process.weight"], sd["pre_process.bias"], padding=1)
    for i in range(max(unit_indices) + 1):
        if i in unit_indices:
            h = F.conv2d(torch.relu(out), sd[f"layers.{i}.conv_1.weight"], sd[f"layers.{i}.conv_1.bias"], padding=1)
            h = F.conv2d(torch.relu(h), sd[f"layers.{i}.conv_2.weight"], sd[f"layers.{i}.conv_2.bias"], padding=1)
            out = h + out
        else:
            out = F.max_pool2d(out, 3, stride=2, padding=1)
    out = F.linear(out.reshape(-1, 64 * 4 * 4), sd["fully_connect.weight"], sd["fully_connect.bias"])
    return torch.sigmoid(out)


@pytest.mark.parametrize(
    ("name", "size", "units"), [("d_lr", 16, (0, 1, 2, 3, 5, 7)), ("d_hr", 64, (0, 1, 3, 5, 7, 9))]
)
def test_discriminators_match_the_official_forward(srcore_plugin, hr_faces, real_lr_faces, name, size, units):
    registries = srcore_plugin(gflmser_plugin, "gflmser")
    d = registries.build("discriminator", f"gflmser:{name}", {}).eval()
    assert count_parameters(d) == 445_953
    expected = {"pre_process.weight", "pre_process.bias", "fully_connect.weight", "fully_connect.bias"}
    expected |= {f"layers.{i}.conv_{c}.{t}" for i in units for c in (1, 2) for t in ("weight", "bias")}
    assert set(d.state_dict()) == expected
    faces = real_lr_faces if size == 16 else hr_faces
    with torch.no_grad():
        ours = d(faces)
        ref = ref_discriminator(d.state_dict(), faces * 2 - 1, set(units))
    assert ours.shape == (4, 1)
    assert (ours - ref).abs().max() <= 1e-6
    with pytest.raises(ValueError, match="expects"):
        d(torch.rand(1, 3, size * 2, size * 2))


# -- the gate ---------------------------------------------------------------------------------------


def test_gate_scales_positively_correlated_channels_and_passes_the_others():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    skip = torch.stack([0.5 * x[:, 0] + torch.randn(2, 5, 5, generator=gen, dtype=torch.float64),
                        -x[:, 1],  # rho = -1: passed unchanged
                        torch.full((2, 5, 5), 3.0, dtype=torch.float64)], 1)  # constant: unchanged
    out = correlation_gate(skip, x)
    rho = torch.tensor([[torch.corrcoef(torch.stack([skip[b, 0].flatten(), x[b, 0].flatten()]))[0, 1]
                         for b in range(2)]])[0]
    assert torch.all(rho > 0)
    assert torch.allclose(out[:, 0], skip[:, 0] * rho[:, None, None])
    assert torch.equal(out[:, 1:], skip[:, 1:])


def test_gate_is_differentiable_in_both_inputs():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1, 2, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    skip = (x.detach() + 0.3 * torch.randn(1, 2, 4, 4, generator=gen, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(correlation_gate, (skip, x))


def test_gated_skips_carry_gradient_into_the_h2l(hr_faces):
    """In the SR model the H2L output is unused: the H2L learns only through the (gated) skips."""
    hr = hr_faces[:1]
    lr = F.interpolate(hr, size=(16, 16), mode="area")
    torch.manual_seed(0)
    for skip in ("gated", "ungated"):
        net = GFLmser(skip=skip)
        F.mse_loss(net(lr), hr).backward()
        for level in (0, 1, 2, 3, 6):  # every skip level reaches its H2L group
            g = getattr(net.h2l, f"up_layer_{level}").layers[0].conv1.weight.grad
            assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
        assert net.h2l.up_final_process.weight.grad is None  # the H2L's LR head is not on this path
    no_skip = GFLmser(skip="none")
    F.mse_loss(no_skip(lr), hr).backward()
    assert all(p.grad is None for p in no_skip.h2l.parameters())


# -- registration, conformance, config ---------------------------------------------------------------


def test_components_register_and_conform(srcore_plugin):
    registries = srcore_plugin(gflmser_plugin, "gflmser")
    assert registries.of_plugin("gflmser") == {
        "model": ["gflmser:gflmser", "gflmser:lmser"],
        "discriminator": ["gflmser:d_hr", "gflmser:d_lr"],
        "degradation": ["gflmser:h2l"],
        "recipe": ["gflmser:gflmser-faces-x4", "gflmser:lmser-faces-x4"],
        "step": ["gflmser:bidirectional", "gflmser:joint"],
    }
    assert check_conformance(registries, "gflmser") == []
    with pytest.raises(ConfigError, match="scale"):
        registries.build("model", "gflmser", {"scale": 2})
    with pytest.raises(ConfigError, match="skip"):
        registries.build("model", "gflmser", {"skip": "sometimes"})


def test_face_size_resizes_any_crop_and_returns_4x_its_size(real_lr_faces):
    net = GFLmser(face_size=16).eval()
    crop = F.interpolate(real_lr_faces[:1], size=(37, 29), mode="bilinear", align_corners=False)
    with torch.no_grad():
        out = net(crop)
        direct = net(F.interpolate(crop, size=(16, 16), mode="bicubic", antialias=True, align_corners=False))
    assert out.shape == (1, 3, 148, 116)
    back = F.interpolate(out, size=(64, 64), mode="bicubic", antialias=True, align_corners=False)
    assert (back - direct).abs().mean() < 0.05  # the same face, resized back


# -- checkpoints ---------------------------------------------------------------------------------------


def _official(net: GFLmser) -> dict[str, torch.Tensor]:
    """Our weights under the authors' key names, plus their never-used tensors."""
    sd = {k.split(".", 1)[1]: v for k, v in net.state_dict().items()}
    sd["up_layer_4.layers.0.conv1.weight"] = torch.zeros(64, 64, 3, 3)
    sd["up_rescale_0.de_conv.weight"] = torch.zeros(64, 64, 4, 4)
    sd["down_rescale_3.conv.bias"] = torch.zeros(64)
    return sd


def test_merged_official_state_dict_is_detected_and_loads(srcore_plugin, tmp_path, real_lr_faces):
    from srcore.engine.checkpoint import load_checkpoint

    srcore_plugin(gflmser_plugin, "gflmser")
    torch.manual_seed(3)
    net = GFLmser(skip="ungated").eval()
    official = _official(net)
    torch.save({f"module.{k}": v for k, v in official.items()}, tmp_path / "lmser_v1.pth")
    from srcore.plugins import load_plugins

    loaded = load_checkpoint(tmp_path / "lmser_v1.pth", manager=load_plugins())
    assert loaded.component.id == "gflmser:gflmser"
    assert loaded.params["skip"] == "ungated"
    with torch.no_grad():
        assert torch.equal(loaded.module(real_lr_faces), net(real_lr_faces))
    h2l_only = {k: v for k, v in official.items() if k.startswith("up_")}
    assert gflmser_plugin.srcore_detect_checkpoint(h2l_only) is None
    joint = dict(official, **{"up_process.weight": torch.zeros(64, 4, 3, 3)})
    with pytest.raises(CheckpointError, match="gflmser:lmser"):  # a joint H2L head without the z layer
        gflmser_plugin.srcore_detect_checkpoint(joint)


def test_h2l_degradation_from_official_and_srcore_files(srcore_plugin, tmp_path, hr_faces):
    from safetensors.torch import save_file

    registries = srcore_plugin(gflmser_plugin, "gflmser")
    torch.manual_seed(4)
    net = GFLmser().eval()
    up = {k: v for k, v in _official(net).items() if k.startswith("up_")}
    torch.save(up, tmp_path / "lmser_up.pth")
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp_path / "gflmser.safetensors"))
    with torch.no_grad():
        x = hr_faces * 2 - 1
        noisy = F.interpolate(F.interpolate(x, size=(16, 16), mode="bicubic", align_corners=False),
                              size=(64, 64), mode="bicubic", align_corners=False).clamp(-1, 1)
        expected = ((net.h2l(noisy)[0] + 1) / 2).clamp(0, 1)
    for name in ("lmser_up.pth", "gflmser.safetensors"):
        deg = registries.build("degradation", "gflmser:h2l", {"checkpoint": str(tmp_path / name)})
        assert deg.scale == 4
        lr = deg(hr_faces)
        assert lr.shape == (4, 3, 16, 16)
        assert (lr - expected).abs().max() <= 1e-6
        assert deg(hr_faces[0]).shape == (3, 16, 16)
    odd = deg(hr_faces[:, :, :60, :52])  # not multiples of 8: padded, then cropped to side // 4
    assert odd.shape == (4, 3, 15, 13)
    with pytest.raises(CheckpointError, match="not found"):
        registries.build("degradation", "gflmser:h2l", {"checkpoint": str(tmp_path / "missing.pth")})
    with pytest.raises(CheckpointError, match="no H2L weights"):
        save_file({"conv.weight": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
        registries.build("degradation", "gflmser:h2l", {"checkpoint": str(tmp_path / "other.safetensors")})
