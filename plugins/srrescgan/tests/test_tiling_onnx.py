"""SRResCGAN tiled exactly (image-wide noise estimate and projection once, convs per tile) and
exported to ONNX (dynamic size, same noise estimate), on tiny random-weight networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sr_plugin_srrescgan.generator import WaveletNoiseEstimator
from sr_plugin_srrescgan.tiling import TileableSRResCGAN, receptive_field
from srcore.infer import Upscaler, super_resolve
from srcore.registry import ModelInfo


def photo(h: int, w: int) -> torch.Tensor:
    from skimage import data

    return torch.from_numpy(data.astronaut()[100 : 100 + h, 150 : 150 + w].copy()).permute(2, 0, 1).float() / 255


def tiny(scale: int) -> TileableSRResCGAN:
    torch.manual_seed(0)
    model = TileableSRResCGAN(scale=scale, depth=2, channels=8).eval()
    with torch.no_grad():
        model.alpha.fill_(-2.0)  # a small ball: the image-wide projection is active
    return model


def upscaler(model: TileableSRResCGAN) -> Upscaler:
    rf = receptive_field(len(model.model.layer1), model.scale)
    info = ModelInfo(scales=(model.scale,), min_size=4, tile_exact=True, receptive_field=rf)
    return Upscaler(lambda x, c: model(x), info, model.scale, "srrescgan:tiny", model)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_tiled_equals_untiled_bitwise_and_the_receptive_field_is_the_smallest_that_does(scale):
    model = tiny(scale)
    up = upscaler(model)
    lr = photo(60, 72)
    full = super_resolve(up, lr)
    rf = receptive_field(2, scale)
    assert rf == -(-8 // scale)  # 2 + 2 x 2 + 2 HR pixels of 3x3/5x5 context, in LR pixels
    split = model.tile_split
    results = {}
    for margin in (rf - 1, rf):
        model.tile_split = lambda x, m=margin: split(x)._replace(receptive_field=m)
        results[margin] = super_resolve(up, lr, tile=32 + 2 * margin)  # 2 x 3 tiles
    del model.tile_split
    assert torch.equal(results[rf], full)
    assert not torch.equal(results[rf - 1], full)  # one pixel less context shows: the check can fail
    model.tile_split = None  # the plain forward per tile: per-tile noise estimates and norms
    assert not torch.equal(super_resolve(up, lr, tile=32 + 2 * rf), full)


def test_budget_tiles_srrescgan_automatically(srcore_plugin):
    from sr_plugin_srrescgan import plugin

    registries = srcore_plugin(plugin, "srrescgan")
    info = registries.models.get("srrescgan:srrescgan").info
    assert info.tile_exact and info.receptive_field >= max(receptive_field(5, s) for s in info.scales)
    model = tiny(2)
    calls = []
    split = model.tile_split
    model.tile_split = lambda x: (calls.append(x.shape), split(x))[1]
    up = Upscaler(lambda x, c: model(x), info, 2, "srrescgan:srrescgan", model)
    lr = photo(180, 200)  # above the smallest exact tile (174: oneDNN's kernels, see srcore.infer)
    full = super_resolve(up, lr)
    done = []
    budgeted = super_resolve(up, lr, max_memory=2 * 2**20, progress=lambda d, t: done.append(t))
    assert calls and done[-1] > 1  # split once, several tiles
    assert torch.equal(budgeted, full)
    assert torch.equal(super_resolve(up, lr, memory_target=2 * 2**20), full) and len(calls) == 2


def test_export_median_is_torch_lower_median(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    for n in (7, 8, 1001):
        v = torch.rand(2, 3, n, generator=gen)
        v[0, 0, : n // 2] = 0.5  # ties
        lower = np.sort(v.numpy(), axis=-1)[..., (n - 1) // 2]
        assert np.array_equal(WaveletNoiseEstimator.lower_median(v).numpy(), lower)
        monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
        assert np.array_equal(WaveletNoiseEstimator.lower_median(v).numpy(), lower)
        monkeypatch.undo()


def test_onnx_export_runs_in_onnxruntime_and_matches_eager(srcore_plugin, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is the reference runtime of the ONNX check")
    from sr_plugin_srrescgan import plugin
    from srcore.engine.checkpoint import LoadedModel
    from srcore.export import check_onnx, export_onnx, sample_photo

    registries = srcore_plugin(plugin, "srrescgan")
    comp = registries.models.get("srrescgan:srrescgan")
    model = tiny(4)
    loaded = LoadedModel(model, comp, comp.info, {"scale": 4, "depth": 2, "channels": 8})
    path = export_onnx(loaded, tmp_path / "s.onnx")  # traced on 24 x 24
    for size in (40, 57):  # other sizes: the radius sqrt(N - 1) and the median follow the graph's shape
        report = check_onnx(loaded, path, sample_photo(size))
        assert report["shape"] == [1, 3, 4 * size, 4 * size]
        assert report["max_abs_diff"] <= 1e-5
    dark = sample_photo(40) / 300  # max <= 1 in 0..255 units: the estimator's no-rescale branch
    assert check_onnx(loaded, path, dark)["max_abs_diff"] <= 1e-5
