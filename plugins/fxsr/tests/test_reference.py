"""The FxSR generator against an independent functional re-implementation of the spec's equations.

The weights dict is built here from the spec's key list (section 1.4) and shapes, not from the
model, so loading it with ``strict=True`` also checks the released key names.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from sr_plugin_fxsr.model import FxSRNet


def spec_shapes(nb: int, scale: int, nf: int = 64, gc: int = 32) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes as the spec lists them (3x3 convs unless 1x1 noted)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv(name: str, cin: int, cout: int, k: int = 3) -> None:
        shapes[f"{name}.weight"] = (cout, cin, k, k)
        shapes[f"{name}.bias"] = (cout,)

    conv("conv_first", 3, nf)
    for i in range(nb):
        for j in (1, 2, 3):
            p = f"RRDB_trunk.{i}.RDB{j}"
            for k in range(1, 5):
                conv(f"{p}.conv{k}", nf + (k - 1) * gc, gc)
            conv(f"{p}.conv5", nf + 4 * gc, nf)
            for s in range(5):
                width = nf if s == 0 else gc
                for kind in ("scale", "shift"):
                    conv(f"{p}.sft{s}.SFT_{kind}_conv0", 32, 32, 1)
                    conv(f"{p}.sft{s}.SFT_{kind}_conv1", 32, width, 1)
    conv("trunk_conv", nf, nf)
    for k in range(1, int(math.log2(scale)) + 1):
        conv(f"upconv{k}", nf, nf)
    conv("HRconv", nf, nf)
    conv("conv_last", nf, 3)
    conv("CondNet.0", 1, 1, 1)
    conv("CondNet.2", 1, 32, 1)
    return shapes


def random_weights(shapes: dict[str, tuple[int, ...]], seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in shapes.items():
        if name.endswith(".weight"):
            fan_in = math.prod(shape[1:])
            out[name] = torch.randn(shape, generator=gen) / fan_in**0.5
        else:
            out[name] = 0.1 * torch.randn(shape, generator=gen)
    return out


# -- the spec's equations, written from scratch --------------------------------------------------

def lrelu(x: torch.Tensor, slope: float) -> torch.Tensor:
    return torch.where(x >= 0, x, slope * x)


def conv(w: dict[str, torch.Tensor], name: str, x: torch.Tensor) -> torch.Tensor:
    weight = w[f"{name}.weight"]
    return F.conv2d(x, weight, w[f"{name}.bias"], padding=weight.shape[-1] // 2)


def sft(w: dict[str, torch.Tensor], name: str, feat: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """scale/shift = conv1(lrelu_0.1(conv0(cond))) each; out = F * (scale + 1) + shift."""
    scale = conv(w, f"{name}.SFT_scale_conv1", lrelu(conv(w, f"{name}.SFT_scale_conv0", cond), 0.1))
    shift = conv(w, f"{name}.SFT_shift_conv1", lrelu(conv(w, f"{name}.SFT_shift_conv0", cond), 0.1))
    return feat * (scale + 1) + shift


def rdb(w: dict[str, torch.Tensor], p: str, x: torch.Tensor, c: torch.Tensor, dense_uses_modulated: bool = False):
    """Spec 1.3: conv1 sees SFT0(x); concatenations use the unmodulated x and modulated b1..b4."""
    a0 = sft(w, f"{p}.sft0", x, c)
    head = a0 if dense_uses_modulated else x  # True = the tempting but wrong reading
    b1 = sft(w, f"{p}.sft1", lrelu(conv(w, f"{p}.conv1", a0), 0.2), c)
    b2 = sft(w, f"{p}.sft2", lrelu(conv(w, f"{p}.conv2", torch.cat([head, b1], 1)), 0.2), c)
    b3 = sft(w, f"{p}.sft3", lrelu(conv(w, f"{p}.conv3", torch.cat([head, b1, b2], 1)), 0.2), c)
    b4 = sft(w, f"{p}.sft4", lrelu(conv(w, f"{p}.conv4", torch.cat([head, b1, b2, b3], 1)), 0.2), c)
    x5 = conv(w, f"{p}.conv5", torch.cat([head, b1, b2, b3, b4], 1))
    return 0.2 * x5 + x


def reference_forward(w: dict[str, torch.Tensor], x: torch.Tensor, t_map: torch.Tensor, nb: int, scale: int,
                      dense_uses_modulated: bool = False) -> torch.Tensor:
    cond = conv(w, "CondNet.2", lrelu(conv(w, "CondNet.0", t_map), 0.1))
    fea = conv(w, "conv_first", x)
    h = fea
    for i in range(nb):
        r = h
        for j in (1, 2, 3):
            r = rdb(w, f"RRDB_trunk.{i}.RDB{j}", r, cond, dense_uses_modulated)
        h = 0.2 * r + h
    fea = fea + conv(w, "trunk_conv", h)
    for k in range(1, int(math.log2(scale)) + 1):
        up = fea.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)  # nearest x2
        fea = lrelu(conv(w, f"upconv{k}", up), 0.2)
    return conv(w, "conv_last", lrelu(conv(w, "HRconv", fea), 0.2))


# -- tests -----------------------------------------------------------------------------------------

def _maps(h: int, w: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    ramp = torch.linspace(0, 1, w).expand(h, w)[None, None]
    return {
        "uniform 0.0": torch.zeros(1, 1, h, w),
        "uniform 0.8": torch.full((1, 1, h, w), 0.8),
        "horizontal ramp": ramp.clone(),
        "random per pixel": torch.rand(1, 1, h, w, generator=gen),
    }


def test_generator_matches_spec_equations_on_a_real_image(set5_lr) -> None:
    nb = 2
    for scale in (4, 8):
        weights = random_weights(spec_shapes(nb, scale))
        model = FxSRNet(scale=scale, nb=nb).eval()
        model.load_state_dict(weights, strict=True)  # the released key names and shapes
        x = set5_lr(12, 16)
        outs = {}
        with torch.no_grad():
            for label, t_map in _maps(12, 16).items():
                ours = model(x, t_map)
                ref = reference_forward(weights, x, t_map, nb, scale)
                assert ours.shape == (1, 3, 12 * scale, 16 * scale)
                diff = (ours - ref).abs().max().item()
                assert diff <= 1e-5, f"x{scale} {label}: max abs diff {diff:.3g} > 1e-5"
                outs[label] = ours
            # the comparison is sensitive: the condition changes the output, and reading the
            # dense concatenation the wrong way (modulated a0 instead of x) is caught
            assert (outs["uniform 0.0"] - outs["uniform 0.8"]).abs().max() > 1e-2
            wrong = reference_forward(weights, x, _maps(12, 16)["random per pixel"], nb, scale, True)
            assert (outs["random per pixel"] - wrong).abs().max() > 1e-3


def test_full_size_parameter_counts_and_key_names() -> None:
    for scale, expected in ((4, 18_301_061), (8, 18_337_989)):
        model = FxSRNet(scale=scale)
        assert sum(p.numel() for p in model.parameters()) == expected
        assert sum(p.numel() for p in model.CondNet.parameters()) == 66
        sft = sum(p.numel() for k, p in model.named_parameters() if ".sft" in k)
        assert sft == 1_603_008
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert shapes == spec_shapes(23, scale)


def test_training_init_follows_the_release() -> None:
    """Dense convs: Kaiming-normal (fan_in) x 0.1, zero bias; SFT and CondNet convs: PyTorch's
    default init (the release initialises only conv1..conv5 of each dense block)."""
    torch.manual_seed(0)
    model = FxSRNet(nb=1)
    rdb = model.RRDB_trunk[0].RDB2
    for k in range(1, 6):
        conv = getattr(rdb, f"conv{k}")
        fan_in = conv.weight[0].numel()
        assert torch.count_nonzero(conv.bias) == 0
        assert conv.weight.std().item() == pytest.approx(0.1 * (2 / fan_in) ** 0.5, rel=0.1)
    for name in ("sft0.SFT_scale_conv0", "sft3.SFT_shift_conv1", "sft1.SFT_scale_conv1"):
        conv = rdb.get_submodule(name)
        fan_in = conv.weight[0].numel()
        default_std = 1 / (3 * fan_in) ** 0.5  # kaiming_uniform_(a=sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert conv.weight.std().item() == pytest.approx(default_std, rel=0.15), name
        assert torch.count_nonzero(conv.bias) == conv.bias.numel(), name
