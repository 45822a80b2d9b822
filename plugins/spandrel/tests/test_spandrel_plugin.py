"""The spandrel plugin: registration, detection after srcore's own plugins, eval / upscale / fine-tune.

Every network is one of spandrel's own architecture classes at a tiny size with random weights
(no downloads); the reference output is spandrel's ``ImageModelDescriptor`` call on the same file.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import save_file
from torch import nn

from srcore import plugins as srcore_plugins
from srcore.cli import main
from srcore.engine.checkpoint import load_checkpoint
from srcore.plugins import PluginManager
from srcore.testing import shared_data_dir

spandrel = pytest.importorskip("spandrel")
from spandrel.architectures.Compact import Compact  # noqa: E402
from spandrel.architectures.HAT import HAT  # noqa: E402
from spandrel.architectures.RCAN import RCAN  # noqa: E402
from spandrel.architectures.SPAN import SPAN  # noqa: E402
from spandrel.architectures.SwinIR import SwinIR  # noqa: E402
from sr_plugin_spandrel import bridge  # noqa: E402

NETS: dict[str, Callable[[], nn.Module]] = {
    "swinir": lambda: SwinIR(upscale=4, img_size=16, window_size=4, embed_dim=12, depths=[1], num_heads=[2],
                             mlp_ratio=2, upsampler="pixelshuffle"),
    "compact": lambda: Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4),
    "hat": lambda: HAT(upscale=2, img_size=16, window_size=4, embed_dim=12, depths=[1], num_heads=[2],
                       compress_ratio=3, squeeze_factor=4, mlp_ratio=2, num_feat=16),
    "span": lambda: SPAN(num_in_ch=3, num_out_ch=3, feature_channels=8, upscale=4),
    "rcan": lambda: RCAN(scale=2, n_resgroups=1, n_resblocks=1, n_feats=16, reduction=4),  # writes into its input
}


@pytest.fixture(scope="module")
def manager() -> Iterator[PluginManager]:
    mgr = PluginManager().load(only=["spandrel"])
    assert mgr.plugins["spandrel"].ok, mgr.plugins["spandrel"].error
    previous = srcore_plugins.set_override(mgr)
    yield mgr
    srcore_plugins.set_override(previous)


def release(name: str, path: Path, wrap: str | None = None) -> dict[str, torch.Tensor]:
    """Save a tiny random ``name`` network as an authors' release would (.pth or .safetensors)."""
    torch.manual_seed(0)
    net = NETS[name]()
    for p in net.parameters():  # the init of some (SPAN, HAT) leaves parts at zero: make every weight count
        p.data.normal_(0, 0.1)
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save({wrap: sd} if wrap else sd, path)
    return sd


def photo(h: int = 21, w: int = 26) -> torch.Tensor:
    from skimage import data

    img = torch.from_numpy(data.astronaut()[80 : 80 + h, 200 : 200 + w].copy())
    return img.permute(2, 0, 1).float()[None] / 255


def test_sr_architectures_are_models_and_others_are_not(manager: PluginManager) -> None:
    ids = set(manager.registries.models.ids())
    assert {"spandrel:swinir", "spandrel:hat", "spandrel:compact", "spandrel:span", "spandrel:esrgan"} <= ids
    assert not ids & {"spandrel:lama", "spandrel:dncnn", "spandrel:gfpgan"}


@pytest.mark.parametrize(("name", "fname", "wrap"), [
    ("swinir", "SwinIR.pth", "params"), ("compact", "compact.pth", None),
    ("hat", "HAT.safetensors", None), ("span", "span.safetensors", None), ("rcan", "RCAN.pth", None),
])
def test_release_is_detected_and_equals_spandrel(manager: PluginManager, tmp_path: Path, name: str, fname: str,
                                                 wrap: str | None) -> None:
    release(name, tmp_path / fname, wrap)
    loaded = load_checkpoint(tmp_path / fname, manager=manager)
    assert loaded.component.id == f"spandrel:{name}"
    assert json.loads(json.dumps(loaded.params)) == loaded.params  # fits a checkpoint's JSON metadata
    ref = spandrel.ModelLoader().load_from_file(tmp_path / fname)
    assert loaded.scale == ref.scale
    x = photo()  # odd sizes, below SwinIR/HAT's 16-pixel minimum in height: padded and cropped back
    x0 = x.clone()
    with torch.no_grad():
        ours = loaded.module(x).clamp(0, 1)
        assert torch.equal(x, x0)  # the caller's LR is never written into
        diff = (ours - ref(x)).abs().max().item()
    assert diff < 1e-6, diff


def test_srcore_layouts_are_asked_before_spandrel(manager: PluginManager) -> None:
    from srcore.nn.rrdb import RRDBNet

    order = [impl.plugin_name for impl in manager.detection_order()]
    assert order[-1] == "spandrel" and order[0] == "core"
    basicsr = {k.replace("RRDB_trunk.", "body.").replace("RDB", "rdb").replace("trunk_conv", "conv_body")
               .replace("upconv", "conv_up").replace("HRconv", "conv_hr"): v
               for k, v in RRDBNet(nf=8, nb=1, gc=32).state_dict().items()}
    assert spandrel.ModelLoader().load_from_state_dict(basicsr).architecture.id == "ESRGAN"  # both could take it
    assert manager.detect_checkpoint(basicsr).model == "core:rrdbnet"  # type: ignore[union-attr]


def test_eval_of_a_swinir_release_on_set5(manager: PluginManager, tmp_path: Path) -> None:
    if not (shared_data_dir() / "Set5" / "HR").is_dir():
        pytest.skip(f"Set5 not found under {shared_data_dir()}")
    release("swinir", tmp_path / "SwinIR.pth", "params_ema")
    res = CliRunner().invoke(main, ["eval", "-c", str(tmp_path / "SwinIR.pth"), "--data", "set5", "--scale", "4",
                                    "--data-root", str(shared_data_dir()), "--json", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "spandrel:swinir" in res.output
    text = (tmp_path / "r.json").read_text()
    assert "psnr" in text and "set5" in text.lower()


def test_upscale_of_a_hat_safetensors_release(manager: PluginManager, tmp_path: Path) -> None:
    from srcore.data.io import read_image, write_image

    release("hat", tmp_path / "HAT.safetensors")
    write_image(tmp_path / "lr.png", photo()[0])
    res = CliRunner().invoke(main, ["upscale", str(tmp_path / "HAT.safetensors"), str(tmp_path / "lr.png"),
                                    "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    out = read_image(next((tmp_path / "out").glob("*.png")))
    ref = spandrel.ModelLoader().load_from_file(tmp_path / "HAT.safetensors")(read_image(tmp_path / "lr.png")[None])
    assert out.shape == ref.shape[1:]
    assert (out - ref[0]).abs().max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize("name", ["compact", "swinir"])
def test_two_step_fine_tune_from_a_release(manager: PluginManager, tmp_path: Path, name: str) -> None:
    from skimage import data

    from srcore.data.io import write_image

    sd = release(name, tmp_path / f"{name}.pth", "params_ema")
    photos = tmp_path / "hr"
    write_image(photos / "a.png", torch.from_numpy(data.astronaut()[:96, :96].copy()).permute(2, 0, 1) / 255)
    cfg = {"model": {"id": f"spandrel:{name}", "params": {"init_from": str(tmp_path / f"{name}.pth")}},
           "data": {"train": {"hr": str(photos), "patch_size": 64, "batch_size": 2}},
           "stages": [{"steps": 2, "optim": {"lr": 1e-9}}], "train": {"save_every": 2}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["train", "-c", str(tmp_path / "run.yaml"), "--name", "ft", "-s",
                                    f"out_dir={tmp_path}", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    (tmp_path / f"{name}.pth").unlink()  # the run's checkpoint describes the network on its own
    tuned = load_checkpoint(tmp_path / "ft", manager=manager)
    assert tuned.component.id == f"spandrel:{name}" and tuned.params["hyperparameters"]
    after = tuned.module.state_dict()
    moved = max((after[k] - v).abs().max().item() for k, v in sd.items() if v.is_floating_point())
    assert 0 < moved < 1e-6  # started from the release (lr 1e-9), and trained


def test_hyperparameters_name_only_torch_and_spandrel_callables() -> None:
    enc = bridge.encode({"norm_layer": nn.LayerNorm, "depths": (6, 6)})
    assert enc == {"norm_layer": {"callable": "torch.nn.modules.normalization:LayerNorm"}, "depths": [6, 6]}
    assert bridge.decode(enc)["norm_layer"] is nn.LayerNorm
    from srcore.errors import ConfigError

    with pytest.raises(ConfigError, match="only torch and spandrel"):
        bridge.decode({"callable": "os:system"})


def test_without_spandrel_the_plugin_fails_with_the_fix_and_the_core_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "spandrel", None)  # find_spec("spandrel") -> None: not installed
    monkeypatch.delitem(sys.modules, "sr_plugin_spandrel.plugin", raising=False)
    mgr = PluginManager().load(only=["spandrel"])
    info = mgr.plugins["spandrel"]
    assert not info.ok and "pip install spandrel" in (info.error or "")
    assert "core:rrdbnet" in mgr.registries.models and not any(c.plugin == "spandrel" for c in mgr.registries.models)
