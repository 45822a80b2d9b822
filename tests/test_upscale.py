"""Inference: tiling, colour spaces, pre-upsampling, self-ensemble, condition maps, OOM retry, CLI."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from torch import nn
from torch.nn import functional as F

from srcore.data.resize import imresize
from srcore.infer import Upscaler, run_tiled, super_resolve
from srcore.registry import ModelInfo


def photo(h: int = 120, w: int = 152) -> torch.Tensor:
    """A real photograph: a crop of scikit-image's astronaut, RGB in [0, 1]."""
    from skimage import data

    img = torch.from_numpy(data.astronaut()[60 : 60 + h, 150 : 150 + w].copy())
    return img.permute(2, 0, 1).float() / 255


class Deep(nn.Module):
    """Seven 3x3 convs (receptive-field radius 7) and a pixel shuffle; random but deterministic."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        layers: list[nn.Module] = [nn.Conv2d(3, 16, 3, padding=1)]
        for _ in range(5):
            layers += [nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1)]
        layers += [nn.ReLU(), nn.Conv2d(16, 3 * scale * scale, 3, padding=1), nn.PixelShuffle(scale)]
        self.body = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale, mode="nearest") + self.body(x)


def upscaler(module: nn.Module, scale: int = 2, **info: object) -> Upscaler:
    def fwd(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return module(x) if c is None else module(x, c)

    return Upscaler(fwd, ModelInfo(scales=(scale,), **info), scale)  # type: ignore[arg-type]


def test_tiled_equals_untiled_within_one_level_on_a_real_image():
    up = upscaler(Deep())
    lr = photo()
    full = super_resolve(up, lr)
    tiled = super_resolve(up, lr, tile=40, overlap=32)
    assert tiled.shape == full.shape == (1, 3, 240, 304)
    assert (tiled - full).abs().max() <= 1 / 255
    # the same tiles cut without overlap and blending leave seams: the check above can fail
    hard = run_tiled(up.forward, lr[None], None, 2, up.info, 40, 0, torch.device("cpu")).clamp(0, 1)
    assert (hard - full).abs().max() > 1 / 255


def test_y_channel_model_gets_y_and_takes_chroma_from_bicubic():
    class YBicubic(nn.Module):
        def forward(self, y):
            assert y.shape[1] == 1
            return imresize(y, scale=2)

    lr = photo(40, 48)
    sr = super_resolve(upscaler(YBicubic(), in_channels=1, out_channels=1), lr)
    # colour conversion and bicubic are both linear, so this equals bicubic on RGB
    torch.testing.assert_close(sr, imresize(lr[None], scale=2).clamp(0, 1), atol=1e-5, rtol=0)


def test_pre_upsampled_model_gets_the_matlab_bicubic_input_in_float():
    seen = {}

    class Identity(nn.Module):
        def forward(self, x):
            seen["x"] = x
            return x

    lr = photo(30, 36)
    sr = super_resolve(upscaler(Identity(), 3, pre_upsampled=True), lr)
    expected = imresize(lr[None], scale=3)
    torch.testing.assert_close(seen["x"], expected)
    assert seen["x"].min() < 0 or seen["x"].max() > 1 or seen["x"].dtype == torch.float32  # not clamped before
    torch.testing.assert_close(sr, expected.clamp(0, 1))


def test_self_ensemble_is_the_float_average_of_the_eight_transforms():
    net = Deep()
    lr = photo(24, 32)[None]
    outs = []
    with torch.no_grad():
        for k in range(8):
            x = lr.flip(-1) if k >= 4 else lr
            y = net(torch.rot90(x, k % 4, (-2, -1)))
            y = torch.rot90(y, -(k % 4), (-2, -1))
            outs.append(y.flip(-1) if k >= 4 else y)
    expected = torch.stack(outs).mean(0).clamp(0, 1)
    torch.testing.assert_close(super_resolve(upscaler(net), lr, self_ensemble=True), expected, atol=1e-6, rtol=0)


class CondEcho(nn.Module):
    """Outputs its condition map, nearest-upsampled to HR (to see what the model was given)."""

    def forward(self, x, c):
        return F.interpolate(c, scale_factor=2, mode="nearest").expand(-1, 3, -1, -1) + 0 * x.mean()


def test_scalar_and_per_pixel_condition_maps_reach_the_model_through_tiles():
    up = upscaler(CondEcho(), condition="t")
    lr = photo(32, 40)
    assert torch.allclose(super_resolve(up, lr, cond=0.3), torch.full((1, 3, 64, 80), 0.3))
    ramp = torch.linspace(0, 1, 40).expand(32, 40)
    sr = super_resolve(up, lr, cond=ramp, tile=16, overlap=8)
    torch.testing.assert_close(sr[0, 0], F.interpolate(ramp[None, None], scale_factor=2, mode="nearest")[0, 0])


def test_out_of_memory_without_tile_retries_with_tiles():
    net = Deep()
    calls = []

    def fwd(x, c):
        calls.append(tuple(x.shape[-2:]))
        if max(x.shape[-2:]) > 100:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return net(x)

    up = Upscaler(fwd, ModelInfo(scales=(2,), tile_exact=True, receptive_field=7), 2)  # non-exact: never retried
    lr = photo(120, 152)
    with torch.no_grad():
        sr = super_resolve(up, lr)
        expected = net(lr[None]).clamp(0, 1)
    assert calls[0] == (120, 152) and len(calls) > 2
    assert max(calls[-1]) <= 100  # the retries ended with tiles that fit
    assert (sr - expected).abs().max() <= 1 / 255


def test_size_requirements_are_met_by_padding_and_cropped_back():
    class Needs8(nn.Module):
        def forward(self, x):
            assert x.shape[-1] % 8 == 0 and x.shape[-2] % 8 == 0
            return F.interpolate(x, scale_factor=2, mode="nearest")

    lr = photo(30, 37)
    sr = super_resolve(upscaler(Needs8(), size_multiple=8), lr)
    torch.testing.assert_close(sr, F.interpolate(lr[None], scale_factor=2, mode="nearest"))


@pytest.fixture
def tiny_checkpoint(srcore_manager, tmp_path):
    from srcore.engine.checkpoint import LoadedModel
    from srcore.export import export_safetensors

    comp = srcore_manager.registries.models.get("core:tiny")
    torch.manual_seed(0)
    module = comp.build({"scale": 2})
    loaded = LoadedModel(module, comp, comp.info, {"scale": 2, "channels": 8})
    return export_safetensors(loaded, tmp_path / "tiny.safetensors"), module


def test_upscale_cli_writes_one_image_per_input_at_the_model_scale(tiny_checkpoint, tmp_path):
    from srcore.cli import main
    from srcore.data.io import read_image, write_image

    path, module = tiny_checkpoint
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "a.png", photo(30, 40))
    write_image(folder / "b.png", photo(20, 24))
    res = CliRunner().invoke(main, ["upscale", str(path), str(folder), "-o", str(tmp_path / "out"), "--tile", "32",
                                    "--plugin", "core"])
    assert res.exit_code == 0, res.output
    a = read_image(tmp_path / "out" / "a.png")
    assert a.shape == (3, 60, 80)
    with torch.no_grad():
        ref = module(read_image(folder / "a.png")[None]).clamp(0, 1)[0]
    assert (a - ref).abs().max() <= 1.5 / 255  # 8-bit output of the same model
    res = CliRunner().invoke(main, ["upscale", str(path), str(folder / "a.png"), "-o", str(tmp_path / "o2"),
                                    "--t-sweep", "0:1:0.5", "--plugin", "core"])
    assert res.exit_code == 2 and "takes no condition map" in res.output


class CondTiny(nn.Module):
    """A conditional x2 model: nearest upsampling scaled by (1 + t)."""

    def forward(self, x, t):
        return F.interpolate(x * (1 + t), scale_factor=2, mode="nearest")


class CondPlugin:
    from srcore.hookspecs import hookimpl

    @hookimpl
    def srcore_register_models(self, register):
        register("cond", lambda c: CondTiny(), description="test", scales=(2,), condition="t")


def test_t_sweep_writes_one_image_per_value_and_a_strip(srcore_manager, srcore_plugin, tmp_path):
    from srcore.cli import main
    from srcore.data.io import read_image, write_image
    from srcore.engine.checkpoint import LoadedModel
    from srcore.export import export_safetensors

    regs = srcore_plugin(CondPlugin(), "cp")
    comp = regs.models.get("cp:cond")
    path = export_safetensors(LoadedModel(CondTiny(), comp, comp.info, {}), tmp_path / "c.safetensors")
    write_image(tmp_path / "a.png", torch.full((3, 8, 10), 0.25))
    res = CliRunner().invoke(main, ["upscale", str(path), str(tmp_path / "a.png"), "-o", str(tmp_path / "o"),
                                    "--t-sweep", "0:1:0.5"])
    assert res.exit_code == 0, res.output
    names = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert names == ["a_sweep.png", "a_t0.00.png", "a_t0.50.png", "a_t1.00.png"]
    for t in (0.0, 0.5, 1.0):
        img = read_image(tmp_path / "o" / f"a_t{t:.2f}.png")
        assert img.shape == (3, 16, 20) and abs(img.mean().item() - 0.25 * (1 + t)) < 1 / 255
    from srcore.engine.monitor import HEADER

    strip = read_image(tmp_path / "o" / "a_sweep.png")
    assert strip.shape == (3, HEADER + 16, 3 * 24)  # a band naming each column's t over the three outputs
    for col in range(3):
        assert (strip[:, :HEADER, col * 24:(col + 1) * 24] < 0.5).any()
        sr = read_image(tmp_path / "o" / f"a_t{0.5 * col:.2f}.png")
        assert torch.equal(strip[:, HEADER:, col * 24:col * 24 + 20], sr)


def shared_data():
    from srcore.testing import shared_data_dir

    root = shared_data_dir()
    return root if (root / "weights").is_dir() else None


@pytest.mark.shared_data
def test_released_weights_upscale_without_naming_the_model(tmp_path):
    """`srcore upscale released.pth photo.png -o out/`: detected by its plugin, beats bicubic on Set5."""
    from srcore.cli import main
    from srcore.data.io import read_image, write_image
    from srcore.plugins import PluginManager, available_entry_points

    root = shared_data()
    if root is None:
        pytest.skip("needs ../shared/data (released FSRCNN weights, Set5); set SRCORE_SHARED_DATA")
    if "srcnn" not in available_entry_points():
        pytest.skip("needs the srcnn plugin (sr-plugin-srcnn), whose detection hook recognises FSRCNN")
    from srcore import plugins as P

    manager = PluginManager().load(only=["srcnn"])
    previous = P.set_override(manager)
    try:
        hr = read_image(root / "Set5" / "HR" / "butterfly.png")[:, :255, :255]
        lr = imresize(hr[None].double(), scale=1 / 3).float().clamp(0, 1)[0]
        write_image(tmp_path / "butterfly.png", lr)
        res = CliRunner().invoke(main, ["upscale", str(root / "weights" / "fsrcnn_x3_yjn870.pth"),
                                        str(tmp_path / "butterfly.png"), "-o", str(tmp_path / "out")])
        assert res.exit_code == 0, res.output
        assert "detected as srcnn:fsrcnn" in res.output
        sr = read_image(tmp_path / "out" / "butterfly.png")
        psnr = manager.registries.build("metric", "core:psnr", {"y_channel": True, "crop_border": 3})
        bic = imresize(read_image(tmp_path / "butterfly.png")[None], scale=3).clamp(0, 1)
        gain = float(psnr.update(sr[None], hr[None])) - float(psnr.update(bic, hr[None]))
        assert gain > 1.0  # FSRCNN's published x3 gain over bicubic on Set5 is about 3 dB
    finally:
        P.set_override(previous)


def test_onnx_backend_equals_torch_within_one_level(tiny_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime", reason="--backend onnx runs ONNX Runtime")
    from srcore.cli import main
    from srcore.data.io import read_image, write_image
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.export import export_onnx, onnx_upscaler

    path, _ = tiny_checkpoint
    loaded = load_checkpoint(path)
    lr = photo(37, 45)
    ref = super_resolve(loaded, lr, self_ensemble=True)
    graph = export_onnx(loaded, tmp_path / "t.onnx")
    got = super_resolve(onnx_upscaler(loaded, graph), lr, self_ensemble=True)  # 8 orientations, other sizes
    assert got.shape == ref.shape and (got - ref).abs().max() <= 1 / 255
    write_image(tmp_path / "a.png", lr)
    outs = {}
    for name, extra in (("torch", []), ("onnx", ["--backend", "onnx"]), ("file", ["--backend", "onnx",
                                                                                   "--onnx-file", str(graph)])):
        res = CliRunner().invoke(main, ["upscale", str(path), str(tmp_path / "a.png"), "-o", str(tmp_path / name),
                                        "--plugin", "core", *extra])
        assert res.exit_code == 0, res.output
        outs[name] = read_image(tmp_path / name / "a.png")
    assert (outs["onnx"] - outs["torch"]).abs().max() <= 1 / 255 and torch.equal(outs["file"], outs["onnx"])
    res = CliRunner().invoke(main, ["upscale", str(path), str(tmp_path / "a.png"), "-o", str(tmp_path / "x"),
                                    "--onnx-file", str(graph)])
    assert res.exit_code == 2 and "--onnx-file" in res.output
    import builtins

    real_import = builtins.__import__

    def no_ort(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("No module named 'onnxruntime'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    res = CliRunner().invoke(main, ["upscale", str(path), str(tmp_path / "a.png"), "-o", str(tmp_path / "y"),
                                    "--backend", "onnx"])
    assert res.exit_code == 2 and res.output.strip().splitlines() == [
        "error: --backend onnx needs onnxruntime, which is not installed (pip install onnxruntime)"]
    assert not (tmp_path / "y").exists()  # refused before any work
