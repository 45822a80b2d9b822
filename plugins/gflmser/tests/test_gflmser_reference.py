"""GFLmser nets against an independent re-implementation of the authors' forward equations.

The reference below is written from the authors' ``v1_lmser.py`` (``Lmser_up``/``Lmser_down``)
and the gate of ``Lmser/lmser_gate.py`` (loops over samples and channels, Pearson correlation
from 1 x HW matmuls), working directly on an official-format state dict with all 1,447,619
tensors of each module (unused layers included). Nothing is shared with the plugin's code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from sr_plugin_gflmser.checkpoint import official_to_srcore
from sr_plugin_gflmser.nets import GFLmser, count_parameters

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
