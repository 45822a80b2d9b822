"""Released FxSR state dicts (``module.`` prefix included) are recognised and load exactly."""

from __future__ import annotations

import pytest
import torch

from sr_plugin_fxsr.checkpoint import detect, load_official
from sr_plugin_fxsr.model import FxSRNet, uniform_map
from srcore.errors import CheckpointError

from .conftest import randomize_


@pytest.mark.parametrize(("scale", "nf", "nb", "gc"), [(4, 16, 2, 8), (8, 24, 1, 12)])
def test_detect_reads_architecture_and_strips_module_prefix(scale: int, nf: int, nb: int, gc: int) -> None:
    src = randomize_(FxSRNet(scale=scale, nf=nf, nb=nb, gc=gc)).eval()
    released = {f"module.{k}": v for k, v in src.state_dict().items()}  # DataParallel save
    match = detect(released)
    assert match is not None and match.model == "fxsr:fxsr"
    assert match.params == {"scale": scale, "nf": nf, "nb": nb, "gc": gc}
    assert not any(k.startswith("module.") for k in match.state_dict)
    dst = FxSRNet(**match.params).eval()
    dst.load_state_dict(match.state_dict, strict=True)
    x = torch.rand(1, 3, 5, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(dst(x, uniform_map(x, 0.3)), src(x, uniform_map(x, 0.3)))


def test_detect_ignores_other_rrdb_checkpoints() -> None:
    from srcore.nn.rrdb import RRDBNet

    esrgan = RRDBNet(nb=1, nf=8, gc=4).state_dict()  # ESRGAN: same trunk names, no SFT/CondNet
    assert detect(esrgan) is None
    no_sft = {k: v for k, v in FxSRNet(nb=1, nf=8, gc=4).state_dict().items() if ".sft" not in k}
    assert detect(no_sft) is None


def test_load_official_pth(tmp_path) -> None:
    src = randomize_(FxSRNet(scale=8, nf=16, nb=1, gc=8)).eval()
    path = tmp_path / "FxSR_PD_8x.pth"
    torch.save({f"module.{k}": v for k, v in src.state_dict().items()}, path)
    model = load_official(path)
    x = torch.rand(1, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model(x, uniform_map(x, 1.0)), src(x, uniform_map(x, 1.0)))
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not an FxSR state dict"):
        load_official(tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="not found"):
        load_official(tmp_path / "missing.pth")
