"""Registration through the entry point, conformance, recipes and the style controller config."""

from __future__ import annotations

import pytest
import torch

from sr_plugin_fxsr.config import ConditionalParams
from sr_plugin_fxsr.controller import DS, PD, StyleController, TSampling
from sr_plugin_fxsr.model import FxSRNet, uniform_map
from srcore.config import validate_run_config
from srcore.plugins import PluginManager
from srcore.testing import check_conformance


@pytest.fixture(scope="module")
def registries():
    return PluginManager().load(only=["fxsr"]).registries


def test_registered_components(registries) -> None:
    comp = registries.models.get("fxsr:fxsr")
    assert comp.info is not None and comp.info.condition == "t" and comp.info.scales == (4, 8)
    assert "fxsr:conditional" in registries.steps
    assert {c.id for c in registries.recipes if c.plugin == "fxsr"} == {
        "fxsr:fxsr-pd-x4", "fxsr:fxsr-ds-x4", "fxsr:fxsr-pd-x8"}


def test_conformance(registries) -> None:
    assert check_conformance(registries, "fxsr") == []


def test_recipes_validate_and_use_two_conditional_stages(registries) -> None:
    for rid, scale, preset in (("fxsr:fxsr-pd-x4", 4, PD), ("fxsr:fxsr-ds-x4", 4, DS), ("fxsr:fxsr-pd-x8", 8, PD)):
        cfg = validate_run_config(registries.recipes.get(rid).extra["defaults"], registries, source=rid)
        assert cfg.model.params["scale"] == scale
        psnr, gan = cfg.stages
        assert psnr.step == gan.step == "fxsr:conditional"
        assert ConditionalParams(**psnr.step_params).weights.active() == ("pixel",)
        assert ConditionalParams(**gan.step_params).weights == preset
        assert gan.discriminator is not None and gan.discriminator.id == "core:vgg128"


def test_controller_presets_follow_the_documented_endpoints() -> None:
    t = torch.tensor([0.0, 0.5, 1.0])
    pd, ds = PD.weights(t), DS.weights(t)
    assert pd["pixel"].tolist() == pytest.approx([1.0, 0.505, 0.01])
    assert pd["vgg54"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert pd["adv"].tolist() == pytest.approx([0.0, 2.5e-3, 5e-3])
    assert ds["vgg22"].tolist() == pytest.approx([1.0, 0.5, 0.0])
    assert ds["vgg44"].tolist() == pytest.approx([0.0, 0.5, 1.0])
    assert ds["pixel"].tolist() == pytest.approx([0.01] * 3) and "vgg54" not in ds


def test_piecewise_linear_weights_interpolate_between_knots() -> None:
    c = StyleController(vgg44=[[0, 0], [0.25, 0], [0.75, 2], [1, 2]])
    got = c.weights(torch.tensor([0.0, 0.2, 0.25, 0.5, 0.6, 0.75, 1.0]))["vgg44"]
    assert got.tolist() == pytest.approx([0, 0, 0, 1.0, 1.4, 2.0, 2.0])


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({"pixel": -1}, ">= 0"),
        ({"pixel": [[0, 1]]}, "at least two"),
        ({"pixel": [[0, 1], [0.5, 1]]}, "start at t=0 and end at t=1"),
        ({"pixel": [[0, 1], [0.6, 1], [0.4, 1], [1, 1]]}, "strictly increasing"),
        ({"vgg33": 1.0}, "Extra inputs"),
        ({"pixel": 0}, "every loss weight is zero"),
    ],
)
def test_controller_validation_names_the_problem(weights, message) -> None:
    with pytest.raises(ValueError, match=message):
        StyleController(**weights)


def test_t_sampling_uses_the_given_generator() -> None:
    a = TSampling().sample(1000, torch.Generator().manual_seed(5))
    b = TSampling().sample(1000, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and 0 <= a.min() and a.max() <= 1 and abs(a.mean() - 0.5) < 0.05
    assert len(set(a.tolist())) == 1000  # per sample, not one per batch
    c = TSampling(distribution="choice", values=[0.0, 0.5, 1.0]).sample(600, torch.Generator().manual_seed(0))
    counts = [(c == v).sum().item() for v in (0.0, 0.5, 1.0)]
    assert sum(counts) == 600 and min(counts) > 150
    batch = TSampling(per="batch", low=0.2, high=0.4).sample(8, torch.Generator().manual_seed(0))
    assert (batch == batch[0]).all() and 0.2 <= batch[0] <= 0.4
    with pytest.raises(ValueError, match="non-empty"):
        TSampling(distribution="choice")


def test_forward_rejects_a_map_of_the_wrong_size() -> None:
    model = FxSRNet(nb=1, nf=8, gc=4)
    x = torch.rand(2, 3, 6, 7)
    with pytest.raises(ValueError, match=r"t_map must be \(N, 1, 6, 7\)"):
        model(x, torch.zeros(2, 1, 24, 28))
    with pytest.raises(ValueError, match="needs a style map"):
        model(x)
    assert model(x, uniform_map(x[:1], 0.5)).shape == (2, 3, 24, 28)  # one map broadcast over the batch
