"""Per-pixel style maps act locally: beyond the receptive field, a half/half map gives the
pixels of the uniform runs."""

from __future__ import annotations

import pytest
import torch

from sr_plugin_fxsr.model import FxSRNet, uniform_map

from .conftest import randomize_


def t_halo_hr(nb: int, scale: int) -> int:
    """How far (HR pixels) a change of t at one LR column can reach in the output.

    t enters through 1x1 convs only (CondNet, SFT), then crosses the 3x3 convs after the SFT
    layers: 5 per dense block, 3 blocks per RRDB, and trunk_conv (conv_first comes before t).
    Each nearest x2 upsampling maps a halo of h pixels to at most 2h + 1 (cell rounding), each
    upconv adds 1, then HRconv and conv_last add 1 each.
    """
    halo = 15 * nb + 1
    for _ in range(scale.bit_length() - 1):
        halo = 2 * halo + 1 + 1
    return halo + 2


@pytest.mark.parametrize("scale", [4, 8])
def test_half_map_equals_uniform_runs_beyond_the_receptive_field(scale: int, set5_lr) -> None:
    nb, h, w = 1, 6, 44
    model = randomize_(FxSRNet(scale=scale, nf=16, nb=nb, gc=8)).eval()
    x = set5_lr(h, w)
    half = torch.zeros(1, 1, h, w)
    half[..., w // 2:] = 1.0
    with torch.no_grad():
        mixed = model(x, half)
        zero, one = model(x, uniform_map(x, 0.0)), model(x, uniform_map(x, 1.0))
    boundary = (w // 2) * scale  # first HR column under t = 1
    halo = t_halo_hr(nb, scale)
    assert boundary - halo > scale and boundary + halo < w * scale - scale, "test image too narrow"
    left, right = slice(0, boundary - halo), slice(boundary + halo, None)
    torch.testing.assert_close(mixed[..., left], zero[..., left], atol=1e-6, rtol=0)
    torch.testing.assert_close(mixed[..., right], one[..., right], atol=1e-6, rtol=0)
    # not vacuous: t changes those pixels, and near the boundary the two halves do interact
    assert (zero[..., left] - one[..., left]).abs().max() > 1e-3  # >> the 1e-6 tolerance
    assert (zero[..., right] - one[..., right]).abs().max() > 1e-3  # >> the 1e-6 tolerance
    near = slice(boundary - 2 * scale, boundary)
    assert (mixed[..., near] - zero[..., near]).abs().max() > 1e-6


def test_halo_bounds_the_measured_reach_of_t() -> None:
    """The analytic halo is an upper bound of the measured one (a single-column change of t)."""
    nb, scale, h, w = 1, 4, 4, 48
    model = randomize_(FxSRNet(scale=scale, nf=8, nb=nb, gc=4), seed=2).eval()
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0))
    t0 = torch.zeros(1, 1, h, w)
    t1 = t0.clone()
    col = w // 2
    t1[..., col] = 1.0
    with torch.no_grad():
        changed = (model(x, t1) - model(x, t0)).abs().amax(dim=(0, 1, 2)) > 0
    cols = torch.nonzero(changed).flatten()
    reach = max(col * scale - cols.min().item(), cols.max().item() - (col * scale + scale - 1))
    assert 0 < reach <= t_halo_hr(nb, scale)
    assert reach >= 15 * nb * scale  # the trunk alone spreads t over 15 LR pixels per RRDB
