"""Exact tiling: tile-exact models tiled == untiled bit for bit; the others warn and are never
tiled after an OOM; declared receptive fields cover what a float64 gradient probe measures."""

from __future__ import annotations

import itertools
import warnings

import pytest
import torch
from click.testing import CliRunner

from srcore.infer import OutOfMemoryError, TileSplit, TilingWarning, Upscaler, exact_spans, super_resolve
from srcore.registry import ModelInfo

# (model id, tiny params with the default depth where the receptive field depends on it)
TINY = {
    "core:tiny": {"scale": 2},
    "srcnn:espcn": {"scale": 2, "n1": 8, "n2": 4},
    "srcnn:fsrcnn": {"scale": 3},  # d 56: a narrow (d 8) stride-3 deconv is size-dependent in oneDNN
    "srcnn:srcnn": {"scale": 2, "n1": 8, "n2": 4},
    "srcnn:wdsr_b": {"scale": 2, "n_feats": 4},
}
BITWISE = ["core:tiny", "srcnn:espcn", "srcnn:fsrcnn", "srcnn:srcnn"]


@pytest.fixture(scope="module")
def manager():
    """Every installed plugin (the shipped models' declarations are under test)."""
    from srcore.plugins import load_plugins

    return load_plugins()


def photo(h: int, w: int) -> torch.Tensor:
    from skimage import data

    img = torch.from_numpy(data.astronaut()[:h, :w].copy())
    return img.permute(2, 0, 1).float() / 255


def build(manager, cid: str, params: dict) -> tuple[torch.nn.Module, ModelInfo, int]:
    comp = manager.registries.models.get(cid)
    torch.manual_seed(0)
    module = comp.build(params).eval()
    return module, comp.info, params.get("scale", comp.info.scales[0])


def upscaler(module: torch.nn.Module, info: ModelInfo, scale: int, name: str = "m") -> Upscaler:
    return Upscaler(lambda x, c: module(x) if c is None else module(x, c), info, scale, name, module)


def receptive_field(module: torch.nn.Module, info: ModelInfo, scale: int, size: int = 96) -> int:
    """Input pixels each side that the centre output pixel depends on (float64: no underflow)."""
    m = module.double()
    x = torch.rand(1, info.in_channels, size, size, dtype=torch.float64, requires_grad=True)
    y = m(x)
    c, s = size // 2, 1 if info.pre_upsampled else scale
    y[..., c * s : (c + 1) * s, c * s : (c + 1) * s].sum().backward()
    g = x.grad.abs().sum((0, 1))
    rows, cols = g.sum(1).nonzero().flatten(), g.sum(0).nonzero().flatten()
    module.float()
    return max(c - int(rows.min()), int(rows.max()) - c, c - int(cols.min()), int(cols.max()) - c)


@pytest.mark.parametrize("cid", BITWISE)
def test_tile_exact_models_tiled_equal_untiled_bitwise(manager, cid):
    module, info, scale = build(manager, cid, TINY[cid])
    assert info.tile_exact and info.receptive_field is not None
    up = upscaler(module, info, scale)
    lr = photo(150, 180) if info.pre_upsampled else photo(300, 360)  # 300 x 360 network input
    full = super_resolve(up, lr)
    tiled = super_resolve(up, lr, tile=200 + 2 * info.receptive_field)  # 2 x 2 tiles, cores of 150 x 180
    assert torch.equal(tiled, full)
    smaller = super_resolve(up, lr, tile=50 + 2 * info.receptive_field)  # below oneDNN's size: 1-ulp changes
    assert (smaller - full).abs().max() <= 1e-6


def test_budget_tiles_automatically_and_exactly(manager):
    module, info, scale = build(manager, "core:tiny", {"scale": 2, "channels": 8})
    shapes = []
    up = upscaler(module, info, scale)
    up.forward = lambda x, c: (shapes.append(tuple(x.shape[-2:])), module(x))[1]
    lr = photo(300, 400)
    full = super_resolve(up, lr)
    done = []
    budgeted = super_resolve(up, lr, max_memory=2 * 2**20, progress=lambda d, t: done.append((d, t)))
    assert torch.equal(budgeted, full)
    tiles = shapes[2:]  # after the untiled forward and the memory probe
    assert len(tiles) > 1 and max(h * w for h, w in tiles) < 300 * 400
    assert done[-1] == (len(tiles), len(tiles))


def test_declared_receptive_fields_cover_the_measured_ones(manager):
    for cid, params in TINY.items():
        module, info, scale = build(manager, cid, params)
        assert receptive_field(module, info, scale) <= info.receptive_field, cid


def test_global_statistics_models_are_not_tile_exact_and_reach_the_whole_image(manager):
    module, info, _ = build(manager, "srcnn:rcan", {"scale": 2, "n_resgroups": 1, "n_resblocks": 1,
                                                        "n_feats": 16, "reduction": 4})
    assert not info.tile_exact
    x = torch.rand(1, 3, 64, 64)
    far = x.clone()
    far[..., 0, 0] += 0.5
    with torch.no_grad():  # channel attention: a corner pixel moves the centre of the output
        assert not torch.equal(module(x)[..., 64, 64], module(far)[..., 64, 64])
    for cid in ("srcnn:glean", "gflmser:gflmser", "gflmser:lmser"):
        assert not manager.registries.models.get(cid).info.tile_exact, cid


def test_non_exact_model_warns_once_and_is_not_tiled_after_oom():
    net = torch.nn.Conv2d(3, 3, 3, padding=1)

    def fwd(x, c):
        if max(x.shape[-2:]) > 50:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return torch.nn.functional.interpolate(net(x), scale_factor=2)

    up = Upscaler(fwd, ModelInfo(scales=(2,)), 2, "test:global")
    lr = photo(80, 90)
    with pytest.raises(OutOfMemoryError, match="not tile-exact; pass --tile"):
        super_resolve(up, lr)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        super_resolve(up, lr, tile=40)
        super_resolve(up, lr, tile=40)
    msgs = [w for w in caught if issubclass(w.category, TilingWarning)]
    assert len(msgs) == 1 and "test:global is not tile-exact" in str(msgs[0].message)


def test_exact_spans_partition_the_image_and_keep_alignment():
    for length, tile, margin, mult in [(339, 200, 5, 1), (510, 128, 8, 2), (64, 200, 7, 1), (1000, 140, 20, 4)]:
        spans = exact_spans(length, tile, margin, mult)
        assert spans[0][2] == 0 and spans[-1][3] == length
        assert all(a[3] == b[2] for a, b in itertools.pairwise(spans))
        for i0, i1, c0, c1 in spans:
            assert i0 % mult == 0 and (i0 == 0 or c0 - i0 >= margin) and (i1 == length or i1 - c1 >= margin)


def test_upscale_progress_switch(manager, tmp_path):
    from srcore.cli import main
    from srcore.engine.checkpoint import LoadedModel
    from srcore.export import export_safetensors

    module, info, _ = build(manager, "core:tiny", {"scale": 2})
    comp = manager.registries.models.get("core:tiny")
    ckpt = export_safetensors(LoadedModel(module, comp, info, {"scale": 2, "channels": 8}), tmp_path / "t.safetensors")
    folder = tmp_path / "in"
    folder.mkdir()
    from srcore.data.io import write_image

    for i in range(2):
        write_image(folder / f"{i}.png", photo(40, 48))
    import tqdm.auto

    seen = []
    original = tqdm.auto.tqdm

    def spy(*args, **kwargs):
        seen.append(kwargs.get("disable"))
        return original(*args, **kwargs)

    runner = CliRunner()
    for flag, expected in (([], None), (["--no-progress"], True)):
        seen.clear()
        tqdm.auto.tqdm = spy
        try:
            res = runner.invoke(main, ["upscale", str(ckpt), str(folder), "-o", str(tmp_path / f"o{len(flag)}"),
                                       "--max-memory", "1K", *flag])
        finally:
            tqdm.auto.tqdm = original
        assert res.exit_code == 0, res.output
        assert len(seen) >= 2 and all(d is expected for d in seen)  # None: tqdm hides bars off a TTY
    res = runner.invoke(main, ["upscale", str(ckpt), str(folder), "-o", str(tmp_path / "x"), "--max-memory", "lots"])
    assert res.exit_code == 2 and "--max-memory 'lots'" in res.output


class GlobalNorm(torch.nn.Module):
    """Convs, then the output scaled by its image-wide L2 norm (as SRResCGAN's L2-ball projection)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(16, 12, 3, padding=1), torch.nn.PixelShuffle(2))

    def finish(self, r: torch.Tensor) -> torch.Tensor:
        return r * (r[0].numel() ** 0.5 / r.flatten(1).norm(dim=1)).reshape(-1, 1, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.finish(self.body(x))

    def tile_split(self, x: torch.Tensor) -> TileSplit:
        return TileSplit(lambda xt, _origin: self.body(xt), self.finish)


def test_model_with_global_statistics_tiles_exactly_through_tile_split():
    module = GlobalNorm().eval()
    up = upscaler(module, ModelInfo(scales=(2,), tile_exact=True, receptive_field=2), 2)
    lr = photo(300, 360)
    full = super_resolve(up, lr)
    assert torch.equal(super_resolve(up, lr, tile=204), full)
    module.tile_split = None  # the same network without its split: per-tile norms
    assert not torch.equal(super_resolve(up, lr, tile=204), full)


def test_memory_target_tiles_only_where_tiles_are_cheap(manager):
    module, info, scale = build(manager, "core:tiny", {"scale": 2, "channels": 8})
    lr = photo(300, 400)
    full = super_resolve(upscaler(module, info, scale), lr)
    wide = info.model_copy(update={"receptive_field": 100})  # still exact, but 100 px of context a side
    for declared, limit, tiled in ((info, "memory_target", True), (wide, "memory_target", False),
                                   (wide, "max_memory", True)):
        shapes = []
        up = upscaler(module, declared, scale)
        up.forward = lambda x, c, seen=shapes: (seen.append(tuple(x.shape[-2:])), module(x))[1]
        assert torch.equal(super_resolve(up, lr, **{limit: 2**20}), full)
        forwards = [s for s in shapes if s != (32, 32)]  # without the memory probe
        assert (len(forwards) > 1) is tiled, (declared.receptive_field, limit)
