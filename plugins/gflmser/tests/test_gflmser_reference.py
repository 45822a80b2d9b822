"""GFLmser nets against an independent re-implementation of the authors' forward equations.

The reference below is written from the authors' ``v1_lmser.py`` (``Lmser_up``/``Lmser_down``),
their joint ``Lmser/lmser_gate.py`` / ``lmser_skip.py`` and the gate of ``lmser_gate.py`` (loops
over samples and channels, Pearson correlation from 1 x HW matmuls), working directly on
official-format state dicts with every tensor of the authors' modules (unused layers included:
1,447,619 per v1 module, 3,572,166 for the joint one). Nothing is shared with the plugin's code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sr_plugin_gflmser.checkpoint import official_joint_to_srcore, official_to_srcore
from sr_plugin_gflmser.lmser import JointLmser
from sr_plugin_gflmser.nets import GFLmser, correlation_gate, count_parameters

# -- an official-format state dict ---------------------------------------------------------------


def official_shapes(prefix: str) -> dict[str, tuple[int, ...]]:
    """Every tensor of the authors' Lmser_up (prefix 'up') or Lmser_down ('down') module."""
    rescales = (0, 1, 2, 5) if prefix == "up" else (0, 3, 4, 5)
    shapes = {
        f"{prefix}_process.weight": (64, 3, 3, 3),
        f"{prefix}_process.bias": (64,),
        f"{prefix}_final_process.weight": (3, 64, 3, 3),
        f"{prefix}_final_process.bias": (3,),
    }
    return {**shapes, **groups_and_rescales(prefix, rescales)}


def groups_and_rescales(prefix: str, rescales: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """Groups 0-6 (two BasicBlocks each) and the given Rescale units, both branches of each."""
    shapes = {}
    for g in range(7):
        for u in range(2):
            for c in (1, 2):
                shapes[f"{prefix}_layer_{g}.layers.{u}.conv{c}.weight"] = (64, 64, 3, 3)
                shapes[f"{prefix}_layer_{g}.layers.{u}.conv{c}.bias"] = (64,)
    for r in rescales:
        shapes[f"{prefix}_rescale_{r}.conv.weight"] = (64, 64, 3, 3)
        shapes[f"{prefix}_rescale_{r}.conv.bias"] = (64,)
        shapes[f"{prefix}_rescale_{r}.de_conv.weight"] = (64, 64, 4, 4)
        shapes[f"{prefix}_rescale_{r}.de_conv.bias"] = (64,)
    return shapes


def official_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights at PyTorch's default conv scale (outputs far from trivial)."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for prefix in ("up", "down"):
        for key, shape in official_shapes(prefix).items():
            fan_in = 3 * 9 if shape[-1] == 3 and len(shape) == 4 and shape[1] == 3 else 64 * 9
            bound = 1.0 / fan_in**0.5
            sd[key] = (torch.rand(shape, generator=gen) * 2 - 1) * bound
    return sd


# -- the authors' forward equations ----------------------------------------------------------------


def conv(sd, name, x, stride=1):
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=stride, padding=1)


def basic_block(sd, name, x):
    out = conv(sd, f"{name}.conv1", torch.relu(x))
    out = conv(sd, f"{name}.conv2", torch.relu(out))
    return out + x


def group_layers(sd, name, x):
    return basic_block(sd, f"{name}.layers.1", basic_block(sd, f"{name}.layers.0", x))


def rescale(sd, name, x, down):
    if down:
        return conv(sd, f"{name}.conv", x, stride=2)
    return F.conv_transpose2d(x, sd[f"{name}.de_conv.weight"], sd[f"{name}.de_conv.bias"], stride=2, padding=1)


def lmser_up(sd, hr):
    out = conv(sd, "up_process", hr)
    ups = {}
    for g, (r, down) in zip((0, 1, 2, 3), ((0, True), (1, True), (2, True), (5, False))):
        ups[g] = group_layers(sd, f"up_layer_{g}", out)
        out = rescale(sd, f"up_rescale_{r}", out + ups[g], down)
    ups[6] = group_layers(sd, "up_layer_6", out)
    out = out + ups[6]
    lr = torch.tanh(conv(sd, "up_final_process", out))
    return lr, [ups[0], ups[1], ups[2], ups[3], ups[6]]


def map_corrcoef(a, b):
    a = a - torch.mean(a)
    b = b - torch.mean(b)
    cov = torch.matmul(a, b.transpose(1, 0))
    var_a = torch.matmul(a, a.transpose(1, 0))
    var_b = torch.matmul(b, b.transpose(1, 0))
    return cov * torch.rsqrt(var_a * var_b)


def corrcoef(a, trans_b):
    n, c, h, w = trans_b.shape
    new_b = trans_b.clone()
    for i in range(n):
        for j in range(c):
            cor = map_corrcoef(trans_b[i][j].reshape(1, h * w), a[i][j].reshape(1, h * w)).squeeze()
            if cor > 0:
                new_b[i][j] = trans_b[i][j].mul(cor)
    return new_b


def lmser_down(sd, lr, up_list, gated):
    out = conv(sd, "down_process", lr)
    plan = ((0, -1, 0, True), (3, -2, 3, False), (4, -3, 4, False), (5, -4, 5, False), (6, -5, None, None))
    for g, k, r, down in plan:
        skip = corrcoef(out, up_list[k]) if gated else up_list[k]
        out = group_layers(sd, f"down_layer_{g}", out + skip) + out
        if r is not None:
            out = rescale(sd, f"down_rescale_{r}", out, down)
    return torch.tanh(conv(sd, "down_final_process", out))


# -- tests ----------------------------------------------------------------------------------------


def test_official_state_dict_sizes_and_used_parameter_counts():
    sd = official_state_dict()
    up = sum(v.numel() for k, v in sd.items() if k.startswith("up_"))
    down = sum(v.numel() for k, v in sd.items() if k.startswith("down_"))
    assert (up, down) == (1_447_619, 1_447_619)
    net = GFLmser()
    assert count_parameters(net.h2l) == 918_467
    assert count_parameters(net.l2h) == 975_811
    converted = official_to_srcore(sd)
    assert set(converted) == set(net.state_dict())
    assert all(converted[k].shape == v.shape for k, v in net.state_dict().items())


def _loaded(skip: str, sd: dict[str, torch.Tensor]) -> GFLmser:
    net = GFLmser(skip=skip)
    net.load_state_dict(official_to_srcore(sd), strict=True)
    return net.eval()


def test_h2l_and_l2h_match_the_official_forward_on_real_faces(hr_faces):
    sd = official_state_dict(seed=1)
    x = hr_faces * 2 - 1  # the authors' x/255*2-1
    with torch.no_grad():
        ref_lr, ref_skips = lmser_up(sd, x)
        for skip, gated in (("ungated", False), ("gated", True)):
            net = _loaded(skip, sd)
            lr, skips = net.h2l(x)
            assert lr.shape == (4, 3, 16, 16)
            assert [tuple(s.shape[-2:]) for s in skips] == [(64, 64), (32, 32), (16, 16), (8, 8), (16, 16)]
            assert (lr - ref_lr).abs().max() <= 1e-5
            for ours, theirs in zip(skips, ref_skips):
                assert (ours - theirs).abs().max() <= 1e-5
            ref_hr = lmser_down(sd, ref_lr, ref_skips, gated)
            hr = net.l2h(lr, skips)
            assert hr.shape == (4, 3, 64, 64)
            assert ref_hr.std() > 0.05  # a non-trivial output, so the comparison can fail
            assert (hr - ref_hr).abs().max() <= 1e-5
        # the gate changes the result (it is not a no-op on these features)
        assert (lmser_down(sd, ref_lr, ref_skips, True) - lmser_down(sd, ref_lr, ref_skips, False)).abs().max() > 1e-3


def test_sr_model_is_l2h_with_skips_of_h2l_on_the_upsampled_lr(hr_faces):
    sd = official_state_dict(seed=2)
    lr01 = F.interpolate(hr_faces, size=(16, 16), mode="bicubic", align_corners=False).clamp(0, 1)
    net = _loaded("gated", sd)
    with torch.no_grad():
        sr = net(lr01)
        lr = lr01 * 2 - 1
        up = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)
        ref = (lmser_down(sd, lr, lmser_up(sd, up)[1], gated=True) + 1) / 2
    assert sr.shape == (4, 3, 64, 64)
    assert (sr - ref).abs().max() <= 1e-5


# -- the joint Lmser of Lmser/lmser_gate.py (gated) and Lmser/lmser_skip.py (ungated) ---------------

JOINT_H2L_DOWN = (True, True, True, True, False, False)  # Rescale(down=...) of up_rescale_0..5
JOINT_L2H_DOWN = (True, True, False, False, False, False)  # down_rescale_0..5


def official_joint_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor of the authors' joint ``Lmser`` module (both branches of each Rescale)."""
    shapes = {"fully_connect.weight": (4096, 64), "fully_connect.bias": (4096,)}
    for name, cin, cout in (("up_process", 4, 64), ("up_final_process", 64, 3),
                            ("down_process", 3, 64), ("down_final_process", 64, 3)):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, 3, 3), (cout,)
    for prefix in ("up", "down"):
        shapes.update(groups_and_rescales(prefix, tuple(range(6))))
    return shapes


def official_joint_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Uniform random weights at PyTorch's default scale 1/sqrt(fan_in) of each layer."""
    gen = torch.Generator().manual_seed(seed)
    shapes = official_joint_shapes()
    sd = {}
    for key, shape in shapes.items():
        w = shapes[key.replace(".bias", ".weight")]
        fan_in = w[0] * w[2] * w[3] if ".de_conv." in key else w[1] * (w[2] * w[3] if len(w) == 4 else 1)
        sd[key] = (torch.rand(shape, generator=gen) * 2 - 1) / fan_in**0.5
    return sd


def joint_h2l(sd, hr, z):
    """``Lmser.forward`` up to LR_out: z through the FC to a 64x64 map, 7 groups, 6 rescales."""
    z_map = F.linear(z, sd["fully_connect.weight"], sd["fully_connect.bias"]).reshape((-1, 1, 64, 64))
    out = conv(sd, "up_process", torch.cat([hr, z_map], dim=1))
    ups = []
    for g in range(7):
        up = group_layers(sd, f"up_layer_{g}", out)
        ups.append(up)
        out = up + out
        if g < 6:
            out = rescale(sd, f"up_rescale_{g}", out, JOINT_H2L_DOWN[g])
    return torch.tanh(conv(sd, "up_final_process", out)), ups


def joint_l2h(sd, lr, ups, gated):
    """The rest of ``Lmser.forward``: down_layer_g takes up(6-g), gated by ``self.corrcoef(out, up)``."""
    out = conv(sd, "down_process", lr)
    for g in range(7):
        up = corrcoef(out, ups[6 - g]) if gated else ups[6 - g]
        out = group_layers(sd, f"down_layer_{g}", out + up) + out
        if g < 6:
            out = rescale(sd, f"down_rescale_{g}", out, JOINT_L2H_DOWN[g])
    return torch.tanh(conv(sd, "down_final_process", out))


def _joint_loaded(skip: str, sd: dict[str, torch.Tensor]) -> JointLmser:
    net = JointLmser(skip=skip)
    net.load_state_dict(official_joint_to_srcore(sd), strict=True)
    return net.eval()


def test_joint_state_dict_sizes_and_used_parameter_counts():
    sd = official_joint_state_dict()
    assert sum(v.numel() for v in sd.values()) == 3_572_166
    net = JointLmser()
    assert count_parameters(net) == 2_956_998
    assert set(official_joint_to_srcore(sd)) == set(net.state_dict())


def test_vectorised_gate_equals_the_authors_loops():
    gen = torch.Generator().manual_seed(5)
    for shape in ((3, 64, 4, 4), (2, 64, 16, 16)):
        x, skip = torch.randn(shape, generator=gen), torch.randn(shape, generator=gen)
        skip[:, ::2] += 0.5 * x[:, ::2]  # half the channels clearly correlated, so both branches run
        assert (correlation_gate(skip, x) - corrcoef(x, skip)).abs().max() < 1e-5


def test_joint_lmser_matches_the_authors_forward_on_random_weights():
    sd = official_joint_state_dict(seed=7)
    gen = torch.Generator().manual_seed(8)
    hr = torch.rand(2, 3, 64, 64, generator=gen) * 2 - 1
    z = torch.randn(2, 64, generator=gen)
    with torch.no_grad():
        ref_lr, ups = joint_h2l(sd, hr, z)
        ref_pool = torch.nn.AvgPool2d(kernel_size=3, stride=4, padding=1)(hr)
        assert [tuple(u.shape[-2:]) for u in ups] == [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (8, 8), (16, 16)]
        refs = {skip: joint_l2h(sd, ref_lr, ups, skip == "gated") for skip in ("gated", "ungated")}
        for skip, ref_hr in refs.items():
            lr, sr, pool = _joint_loaded(skip, sd).joint(hr, z)
            assert ref_hr.std() > 0.05  # a non-trivial output, so the comparison can fail
            assert (lr - ref_lr).abs().max() < 1e-5
            assert (sr - ref_hr).abs().max() < 1e-5, skip
            assert torch.equal(pool, ref_pool)
    assert (refs["gated"] - refs["ungated"]).abs().max() > 1e-3  # the gate is not a no-op here


def test_joint_sr_model_is_l2h_with_skips_of_the_h2l_on_the_upsampled_lr_and_zero_z():
    sd = official_joint_state_dict(seed=9)
    lr01 = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(10))
    with torch.no_grad():
        sr = _joint_loaded("gated", sd)(lr01)
        lr = lr01 * 2 - 1
        up = F.interpolate(lr, scale_factor=4, mode="bicubic", align_corners=False).clamp(-1, 1)
        ref = (joint_l2h(sd, lr, joint_h2l(sd, up, torch.zeros(2, 64))[1], gated=True) + 1) / 2
    assert sr.shape == (2, 3, 64, 64)
    assert (sr - ref).abs().max() < 1e-5


def test_authors_joint_state_dict_loads_through_srcore_load_checkpoint(tmp_path):
    import srcore
    from srcore.plugins import load_plugins

    sd = official_joint_state_dict(seed=11)
    torch.save(sd, tmp_path / "lmser_200.pth")  # ckpt["model"].state_dict() of lmser_gate_main.py
    loaded = srcore.load_checkpoint(tmp_path / "lmser_200.pth", manager=load_plugins(only=["gflmser"]))
    assert loaded.component.id == "gflmser:lmser" and loaded.params["skip"] == "gated"
    lr01 = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        assert torch.equal(loaded.module(lr01), _joint_loaded("gated", sd)(lr01))
    ungated = srcore.load_checkpoint(tmp_path / "lmser_200.pth", params={"skip": "ungated"},
                                     manager=load_plugins(only=["gflmser"]))
    assert ungated.params["skip"] == "ungated" and ungated.module.skip == "ungated"
