"""Recognition of released state dicts: shapes -> hyper-parameters, release names -> ours, and the
converted weights compute what the release's own architecture computes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_plugin_srcnn.detect import (
    ESPCN_TABLE,
    detect,
    fsrcnn_table,
    lapsrn_table,
    to_release,
    vdsr_table,
)

torch.manual_seed(0)


def release_fsrcnn(d: int, s: int, m: int) -> dict[str, torch.Tensor]:
    """A random state dict in yjn870's layout, written from its published key list (not from our table)."""
    sd = {
        "first_part.0.weight": torch.randn(d, 1, 5, 5) * 0.1,
        "first_part.0.bias": torch.randn(d) * 0.1,
        "first_part.1.weight": torch.rand(d) * 0.3,
        "mid_part.0.weight": torch.randn(s, d, 1, 1) * 0.1,
        "mid_part.0.bias": torch.randn(s) * 0.1,
        "mid_part.1.weight": torch.rand(s) * 0.3,
    }
    for i in range(m):
        sd[f"mid_part.{2 + 2 * i}.weight"] = torch.randn(s, s, 3, 3) * 0.1
        sd[f"mid_part.{2 + 2 * i}.bias"] = torch.randn(s) * 0.1
        sd[f"mid_part.{3 + 2 * i}.weight"] = torch.rand(s) * 0.3
    sd[f"mid_part.{2 * m + 2}.weight"] = torch.randn(d, s, 1, 1) * 0.1
    sd[f"mid_part.{2 * m + 2}.bias"] = torch.randn(d) * 0.1
    sd[f"mid_part.{2 * m + 3}.weight"] = torch.rand(d) * 0.3
    sd["last_part.weight"] = torch.randn(d, 1, 9, 9) * 0.1
    sd["last_part.bias"] = torch.randn(1) * 0.1
    return sd


def yjn870_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, m: int, scale: int) -> torch.Tensor:
    """yjn870's FSRCNN.forward, spelled out with functional ops on the release's own keys."""
    x = F.prelu(F.conv2d(x, sd["first_part.0.weight"], sd["first_part.0.bias"], padding=2), sd["first_part.1.weight"])
    for i in range(0, 2 * m + 4, 2):
        w = sd[f"mid_part.{i}.weight"]
        x = F.prelu(F.conv2d(x, w, sd[f"mid_part.{i}.bias"], padding=w.shape[-1] // 2), sd[f"mid_part.{i + 1}.weight"])
    return F.conv_transpose2d(
        x, sd["last_part.weight"], sd["last_part.bias"], stride=scale, padding=4, output_padding=scale - 1
    )


@pytest.mark.parametrize(("d", "s", "m", "scale"), [(56, 12, 4, 3), (32, 5, 1, 2), (16, 8, 3, 4)])
def test_fsrcnn_release_detected_and_equivalent(registries, d, s, m, scale) -> None:
    sd = release_fsrcnn(d, s, m)
    match = detect(sd)
    assert match is not None and match.model == "srcnn:fsrcnn"
    assert {k: match.params[k] for k in "dsm"} == {"d": d, "s": s, "m": m}
    assert "not stored" in match.note  # the stride is not in the shapes (random weights: maybe not inferable)
    model = registries.build("model", match.model, {**match.params, "scale": scale})
    model.load_state_dict(match.state_dict)
    x = torch.rand(1, 1, 9, 11)
    torch.testing.assert_close(model(x), yjn870_forward(sd, x, m, scale))


def test_vdsr_release_equivalent(registries) -> None:
    sd = {"input.weight": torch.randn(8, 1, 3, 3) * 0.3, "output.weight": torch.randn(1, 8, 3, 3) * 0.3}
    sd.update({f"residual_layer.{i}.conv.weight": torch.randn(8, 8, 3, 3) * 0.3 for i in range(3)})
    match = detect(sd)
    assert match is not None and match.model == "srcnn:vdsr" and match.params == {"depth": 5, "channels": 8}
    model = registries.build("model", match.model, match.params)
    model.load_state_dict(match.state_dict)
    x = torch.rand(1, 1, 12, 12)
    h = F.relu(F.conv2d(x, sd["input.weight"], padding=1))
    for i in range(3):
        h = F.relu(F.conv2d(h, sd[f"residual_layer.{i}.conv.weight"], padding=1))
    torch.testing.assert_close(model(x), F.conv2d(h, sd["output.weight"], padding=1) + x)


def test_espcn_release_equivalent(registries) -> None:
    sd = {
        "first_part.0.weight": torch.randn(8, 1, 5, 5),
        "first_part.0.bias": torch.randn(8),
        "first_part.2.weight": torch.randn(4, 8, 3, 3),
        "first_part.2.bias": torch.randn(4),
        "last_part.0.weight": torch.randn(16, 4, 3, 3),
        "last_part.0.bias": torch.randn(16),
    }
    match = detect(sd)
    assert match is not None and match.params == {"scale": 4, "n1": 8, "n2": 4}
    model = registries.build("model", match.model, match.params)
    model.load_state_dict(match.state_dict)
    x = torch.rand(1, 1, 6, 7)
    h = torch.tanh(F.conv2d(x, sd["first_part.0.weight"], sd["first_part.0.bias"], padding=2))
    h = torch.tanh(F.conv2d(h, sd["first_part.2.weight"], sd["first_part.2.bias"], padding=1))
    ref = F.pixel_shuffle(F.conv2d(h, sd["last_part.0.weight"], sd["last_part.0.bias"], padding=1), 4)
    torch.testing.assert_close(model(x), ref)


@pytest.mark.parametrize(
    ("name", "params", "table"),
    [
        ("fsrcnn", {"scale": 2, "d": 20, "s": 6, "m": 2}, fsrcnn_table(2)),
        ("vdsr", {"depth": 6, "channels": 8}, vdsr_table(4)),
        ("lapsrn", {"scale": 8, "depth": 2, "channels": 8}, lapsrn_table(3, 2)),
        ("espcn", {"scale": 3, "n1": 8, "n2": 4}, ESPCN_TABLE),
    ],
)
def test_round_trip_ours_to_release_and_back(registries, name, params, table) -> None:
    """Our weights exported in the release layout are detected with the same hyper-parameters and
    come back to exactly our state dict."""
    ours = registries.build("model", f"srcnn:{name}", params).state_dict()
    match = detect(to_release(ours, table))
    assert match is not None and match.model == f"srcnn:{name}"
    assert {k: v for k, v in params.items() if k in match.params} == match.params
    assert set(params) - set(match.params) <= {"scale"}  # VDSR (and untrained FSRCNN) leave it to the user
    assert match.state_dict.keys() == ours.keys()
    assert all(torch.equal(match.state_dict[k], ours[k]) for k in ours)


def test_foreign_state_dicts_are_not_claimed() -> None:
    assert detect({"conv_first.weight": torch.zeros(64, 3, 3, 3), "conv_first.bias": torch.zeros(64)}) is None
    bad = release_fsrcnn(8, 4, 1)
    bad["extra_layer.weight"] = torch.zeros(1)
    assert detect(bad) is None  # an unknown key means it is not this architecture
    espcn = {
        "first_part.0.weight": torch.zeros(8, 1, 5, 5),
        "first_part.2.weight": torch.zeros(4, 8, 3, 3),
        "last_part.0.weight": torch.zeros(5, 4, 3, 3),
    }
    assert detect(espcn) is None  # 5 output channels is no r^2


@pytest.mark.shared_data
def test_released_files_detected_through_the_plugin_manager(weights) -> None:
    from srcore.plugins import PluginManager

    pm = PluginManager().load(only=["srcnn"])
    expected = {
        "fsrcnn_x2_yjn870.pth": ("srcnn:fsrcnn", {"d": 56, "s": 12, "m": 4, "scale": 2}),
        "fsrcnn_x3_yjn870.pth": ("srcnn:fsrcnn", {"d": 56, "s": 12, "m": 4, "scale": 3}),
        "fsrcnn_x4_yjn870.pth": ("srcnn:fsrcnn", {"d": 56, "s": 12, "m": 4, "scale": 4}),
        "vdsr_x234_twtygqyy.pth": ("srcnn:vdsr", {"depth": 20, "channels": 64}),
        "lapsrn_x4_twtygqyy.pth": ("srcnn:lapsrn", {"scale": 4, "depth": 10, "channels": 64}),
        "espcn_x3_Dekelv_epoch111.pth": ("srcnn:espcn", {"scale": 3, "n1": 64, "n2": 32}),
    }
    for name, (model, params) in expected.items():
        match = pm.detect_checkpoint(torch.load(weights / name, map_location="cpu", weights_only=True))
        assert match is not None and (match.model, match.params) == (model, params), name
    other = torch.load(weights / "srrescgan_x4_RaoUmer.pth", map_location="cpu", weights_only=True)
    from sr_plugin_srcnn.detect import detect as ours

    assert ours(other) is None


def test_fsrcnn_stride_inferred_from_a_flat_field(registries) -> None:
    """A deconvolution whose r x r phases all sum to the same value is flat at stride r only."""
    from sr_plugin_srcnn.detect import fsrcnn_scale_from_flat_field, to_release

    torch.manual_seed(1)
    for r in (2, 3, 4):
        model = registries.build("model", "srcnn:fsrcnn", {"scale": r, "d": 8, "s": 4, "m": 1})
        with torch.no_grad():
            w = torch.zeros(8, 1, 9, 9)
            w[:, 0, 4 - r // 2 : 4 - r // 2 + r, 4 - r // 2 : 4 - r // 2 + r] = torch.rand(8, 1, 1) + 0.5  # r x r box
            model.deconv.weight.copy_(w)
        params = {"d": 8, "s": 4, "m": 1}
        assert fsrcnn_scale_from_flat_field(params, model.state_dict()) == r
        assert detect(to_release(model.state_dict(), fsrcnn_table(1))).params["scale"] == r
