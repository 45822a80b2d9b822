"""``variant: seed`` of DRRN and DRCN against plain forwards written here as the seed collection's
``models/DRRN/model.py`` and ``models/DRCN/model.py`` compute them, on tiny random-weight nets, and
the detection of the collection's state dicts by their key names."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from sr_plugin_srcnn.detect import detect
from sr_plugin_srcnn.models.blocks import count_parameters


def build(registries, name: str, **params):
    return registries.build("model", f"srcnn:{name}", params).eval()


def conv(sd, name, x, bias=True):
    """3x3 'same' conv (1x1 when the kernel is 1) with the weights of ``name`` in ``sd``."""
    w = sd[f"{name}.weight"]
    return F.conv2d(x, w, sd[f"{name}.bias"] if bias else None, padding=w.shape[-1] // 2)


def randomised(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Give every parameter non-trivial random values (biases too) and return the state dict."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * (0.3 if p.dim() > 1 else 0.1))
    return {k: v.clone() for k, v in model.state_dict().items()}


def y_input(seed: int, shape=(2, 1, 12, 12)) -> torch.Tensor:
    """Values in [-0.5, 1]: negative ones show the in-place ReLU on the input."""
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed)) * 1.5 - 0.5


# -- DRRN -------------------------------------------------------------------------------------------


def collection_drrn_in_place(sd, x, units):
    """``DRRN.forward`` line by line, with ``nn.ReLU(inplace=True)`` as ``relu_`` on the same tensors."""
    x = x.clone()
    residual = x
    inputs = conv(sd, "input", torch.relu_(x), bias=False)
    out = inputs
    for _ in range(units):
        out = conv(sd, "conv2", torch.relu_(conv(sd, "conv1", torch.relu_(out), bias=False)), bias=False)
        out = torch.add(out, inputs)
    out = conv(sd, "output", torch.relu_(out), bias=False)
    return torch.add(out, residual)


def collection_drrn_explicit(sd, x, units, units_add_relu_h0=True):
    """The same, the in-place effects written out: the residual is ReLU(x), each unit adds ReLU(h0).
    ``units_add_relu_h0=False`` is the reading that ignores the second effect (units add h0)."""
    x_r = torch.relu(x)
    h0 = conv(sd, "input", x_r, bias=False)
    added = torch.relu(h0) if units_add_relu_h0 else h0
    u = h0
    for _ in range(units):
        u = conv(sd, "conv2", torch.relu(conv(sd, "conv1", torch.relu(u), bias=False)), bias=False) + added
    return conv(sd, "output", torch.relu(u), bias=False) + x_r


def test_drrn_seed_is_the_collections_forward(registries):
    model = build(registries, "drrn", variant="seed", channels=8, units=3)
    assert set(model.state_dict()) == {"input.weight", "conv1.weight", "conv2.weight", "output.weight"}
    sd = randomised(model, 0)
    x = y_input(1)
    with torch.no_grad():
        in_place, explicit, ours = collection_drrn_in_place(sd, x, 3), collection_drrn_explicit(sd, x, 3), model(x)
        naive = collection_drrn_explicit(sd, x, 3, units_add_relu_h0=False)
    assert (explicit - in_place).abs().max() < 1e-5  # the explicit reading is what the code computes
    assert (ours - in_place).abs().max() < 1e-5
    assert (naive - in_place).abs().max() > 1e-2  # and the effect is not negligible
    assert count_parameters(build(registries, "drrn", variant="seed")) == 297_216


def test_drrn_seed_trains_like_the_collection(registries):
    """Gradients through the in-place version (as autograd sees the collection's code) match ours."""
    model = build(registries, "drrn", variant="seed", channels=4, units=2).train()
    sd = randomised(model, 2)
    ref = {k: v.clone().requires_grad_() for k, v in sd.items()}
    x, target = y_input(3), y_input(4)
    F.mse_loss(model(x), target, reduction="sum").backward()
    F.mse_loss(collection_drrn_in_place(ref, x, 2), target, reduction="sum").backward()
    for name, p in model.named_parameters():
        assert (p.grad - ref[name].grad).abs().max() < 1e-4 * max(1.0, ref[name].grad.abs().max().item())


# -- DRCN -------------------------------------------------------------------------------------------


def collection_drcn(sd, x, recursions, training=False):
    """``DRCN.forward`` of the collection (HEAD): recursion fed from reconstruct_conv1's output."""
    drop = lambda t: F.dropout(t, 0.2, training)  # noqa: E731
    residual = x
    x2 = torch.relu(conv(sd, "fea_in_conv1", x))
    x5 = torch.relu(drop(conv(sd, "fea_in_conv2", x2)))
    x6 = conv(sd, "reconstruct_conv1", x5)
    predictions = torch.add(conv(sd, "reconstruct_conv2", x6), residual)
    for _ in range(recursions):
        x9 = torch.relu(drop(drop(conv(sd, "recursive_conv", x6))))
        x10 = conv(sd, "reconstruct_conv1", x9)
        predictions = torch.cat((predictions, torch.add(conv(sd, "reconstruct_conv2", x10), residual)), 1)
        x6 = x10
    return predictions, F.conv2d(predictions, sd["ensemble.weight"])


def test_drcn_seed_is_the_collections_forward(registries):
    model = build(registries, "drcn", variant="seed", channels=8, recursions=3)
    sd = randomised(model, 5)
    x = y_input(6)
    with torch.no_grad():
        ref_preds, ref = collection_drcn(sd, x, 3)
        preds, out = model.forward_all(x)
        assert len(preds) == 4 and ref_preds.shape[1] == 4
        assert (torch.cat(preds, 1) - ref_preds).abs().max() < 1e-5
        assert (out - ref).abs().max() < 1e-5
        assert (model(x) - ref).abs().max() < 1e-5
        model.train()  # dropout drawn in the code's order: the same masks from the same seed
        torch.manual_seed(7)
        _, train_ref = collection_drcn(sd, x, 3, training=True)
        torch.manual_seed(7)
        assert (model(x) - train_ref).abs().max() < 1e-5
        assert (train_ref - ref).abs().max() > 1e-3  # dropout was on
    assert count_parameters(build(registries, "drcn", variant="seed")) == 1_775_122


# -- detection of the collection's state dicts ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "expected"),
    [
        ("drrn", {"channels": 8, "units": 25}, {"variant": "seed", "channels": 8}),
        ("drcn", {"channels": 8, "recursions": 5}, {"variant": "seed", "channels": 8, "recursions": 5}),
    ],
)
def test_collection_state_dicts_are_detected_as_the_seed_variant(registries, tmp_path, name, params, expected):
    import srcore
    from srcore.plugins import PluginManager

    model = build(registries, name, variant="seed", **params)
    sd = randomised(model, 8)  # the collection's names: checkpoint["net"] of its solver
    match = detect(sd)
    assert match is not None and match.model == f"srcnn:{name}" and match.params == expected
    torch.save(sd, tmp_path / f"{name}.pth")
    loaded = srcore.load_checkpoint(tmp_path / f"{name}.pth", manager=PluginManager().load(only=["srcnn"]))
    assert loaded.component.id == f"srcnn:{name}" and loaded.params["variant"] == "seed"
    x = y_input(9, (1, 1, 10, 10)).clamp(0, 1)
    with torch.no_grad():
        assert torch.equal(loaded.module(x), model(x))
    assert detect({**sd, "extra.weight": torch.zeros(1)}) is None  # only the exact key set
