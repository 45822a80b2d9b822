"""Every model builds, runs forward and backward at each scale, and has the spec's parameter count."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sr_plugin_srcnn.models.blocks import Upsampler, count_parameters
from srcore.registry import Registries
from srcore.testing import check_conformance

# seed004_classics.md, section 3 (RCAN x2/x3, WDSR and the BN-DRRN are this plugin's own counts).
SPEC_COUNTS = {
    ("srcnn", 2): 57_281,
    ("fsrcnn", 2): 12_809,
    ("fsrcnn", 3): 12_809,
    ("fsrcnn", 4): 12_809,
    ("vdsr", 2): 664_704,
    ("espcn", 2): 21_284,
    ("espcn", 3): 22_729,
    ("espcn", 4): 24_752,
    ("lapsrn", 4): 870_112,
    ("rdn", 2): 22_123_395,
    ("rdn", 3): 22_308_035,
    ("rdn", 4): 22_271_107,
    ("rcan", 4): 15_592_355,
}


def build(registries, name: str, **params):
    return registries.build("model", f"srcnn:{name}", params)


# Narrower/shallower configs of the big models for the forward/backward check (their full-size
# parameter counts are asserted below); every other model runs at its default (paper) size.
REDUCED = {
    "drcn": {"channels": 16, "recursions": 4},
    "drrn": {"channels": 16, "units": 3},
    "rcan": {"n_resgroups": 2, "n_resblocks": 2, "n_feats": 32, "reduction": 8},
    "rdn": {"config": "A", "G0": 16},
    "glean": {
        "in_size": 8,
        "num_rrdbs": 1,
        "max_channels": 16,
        "style_channels": 16,
        "channel_multiplier": 1,
        "num_mlps": 2,
    },
}


def reduced(comp):
    """The component with REDUCED[name] applied on top of the config the conformance check passes."""
    if comp.name not in REDUCED:
        return comp
    extra = REDUCED[comp.name]
    info = comp.info.model_copy(update={"fixed_size": 8, "min_size": 8}) if comp.name == "glean" else comp.info
    return dataclasses.replace(comp, builder=lambda cfg: comp.builder(cfg.model_copy(update=extra)), info=info)


def test_every_model_conforms_at_every_scale(registries) -> None:
    """srcore.testing.check_conformance (shape, finite, gradients at every declared scale) on the
    plugin's models, the big ones in REDUCED form."""
    regs = Registries()
    for comp in registries.models:
        if comp.plugin == "srcnn":
            regs.models.add(reduced(comp))
    assert len(regs.models) == 12
    assert check_conformance(regs, "srcnn") == []


@pytest.mark.parametrize(("name", "scale"), sorted(SPEC_COUNTS))
def test_parameter_count_matches_spec(registries, name: str, scale: int) -> None:
    assert count_parameters(build(registries, name, scale=scale)) == SPEC_COUNTS[(name, scale)]


def test_srcnn_915_variant_count(registries) -> None:
    assert count_parameters(build(registries, "srcnn", variant="9-1-5")) == 8_129


def test_drcn_counts_and_recursive_outputs(registries) -> None:
    """Paper: D = 16 recursions -> 16 predictions and 16 ensemble weights (1,775,121 parameters).
    The spec's 1,775,122 counts the collection's 17 predictions: recursions=17 reproduces it."""
    model = build(registries, "drcn", channels=256)
    assert count_parameters(model) == 1_775_121
    assert count_parameters(build(registries, "drcn", recursions=17)) == 1_775_122
    small = build(registries, "drcn", channels=8, recursions=3)
    x = torch.rand(1, 1, 10, 10)
    preds, out = small.forward_all(x)
    assert len(preds) == 3
    w = small.weights.detach()
    torch.testing.assert_close(out, sum(wi * p for wi, p in zip(w, preds)) / w.sum())
    # the skip connection: with a zeroed reconstruction every prediction is the input
    with torch.no_grad():
        small.reconstruct[-1].weight.zero_()
        small.reconstruct[-1].bias.zero_()
    torch.testing.assert_close(small(x), x)


def test_drrn_shares_weights_across_units(registries) -> None:
    """Conv weights are shared: the count does not depend on U; BN adds 2x128x2 per unit + 256."""
    assert count_parameters(build(registries, "drrn", batch_norm=False)) == 297_216
    assert count_parameters(build(registries, "drrn", batch_norm=False, units=9)) == 297_216
    assert count_parameters(build(registries, "drrn")) == 297_216 + 25 * 512 + 256


def test_lapsrn_levels_are_progressive(registries) -> None:
    model = build(registries, "lapsrn", scale=8, depth=1, channels=8)
    outs, final = model.forward_all(torch.rand(1, 1, 6, 7))
    assert [tuple(o.shape[-2:]) for o in outs] == [(12, 14), (24, 28), (48, 56)]
    assert final is outs[-1]
    with pytest.raises(Exception, match="scale must be 2, 4 or 8"):
        build(registries, "lapsrn", scale=3)


def test_lapsrn_image_branch_starts_bilinear(registries) -> None:
    """With a zero residual, the x2 image branch is a bilinear upsampler: a constant stays constant."""
    model = build(registries, "lapsrn", scale=2, depth=1, channels=4)
    with torch.no_grad():
        model.levels[0].residual.weight.zero_()
    out = model(torch.full((1, 1, 8, 8), 0.5))
    torch.testing.assert_close(out[..., 1:-1, 1:-1], torch.full((1, 1, 14, 14), 0.5))


def test_wdsr_counts_and_weight_norm(registries) -> None:
    counts = {(k, s): count_parameters(build(registries, f"wdsr_{k}", scale=s)) for k in "ab" for s in (2, 3, 4)}

    # 16 blocks x 32 feats; A: 2 x (32*128*9 + 128) + ..., computed layer by layer below
    def expected(kind: str, s: int) -> int:
        c, out = 32, 3 * s * s
        wn = lambda i, o, k: o * i * k * k + o + o  # weight_v, bias, weight_g  # noqa: E731
        block = wn(c, 4 * c, 3) + wn(4 * c, c, 3) if kind == "a" else wn(c, 6 * c, 1) + wn(6 * c, 25, 1) + wn(25, c, 3)
        return wn(3, c, 3) + 16 * block + wn(c, out, 3) + wn(3, out, 5)

    assert counts == {key: expected(*key) for key in counts}


def test_rdn_rcan_forward_on_tiny_input(registries) -> None:
    for name in ("rdn", "rcan"):
        out = build(registries, name, scale=3)(torch.rand(1, 3, 4, 5))
        assert out.shape == (1, 3, 12, 15)


def test_upsampler_rejects_unsupported_scale() -> None:
    with pytest.raises(ValueError, match="2\\^n and 3"):
        Upsampler(5, 8)


def test_model_infos(registries) -> None:
    info = {c.name: c.info for c in registries.models if c.plugin == "srcnn"}
    assert {n for n, i in info.items() if i.in_channels == 1 and i.out_channels == 1} == {
        "srcnn",
        "fsrcnn",
        "vdsr",
        "espcn",
        "drcn",
        "drrn",
        "lapsrn",
    }
    assert {n for n, i in info.items() if i.pre_upsampled} == {"srcnn", "vdsr", "drcn", "drrn"}
    assert info["lapsrn"].scales == (2, 4, 8)
    assert info["glean"].fixed_size == 32 and info["glean"].scales == (8, 16, 32)
