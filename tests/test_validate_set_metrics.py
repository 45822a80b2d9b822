"""Set-level metrics (FID) in training validation: computed over the whole set, equal to the
metric run directly on the same SR images; left out with a note where ranks would have to pool."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srcore.data.resize import imresize
from srcore.engine.dist import DistInfo
from srcore.engine.validate import validate
from srcore.infer import Upscaler, super_resolve
from srcore.registry import ModelInfo


@pytest.fixture
def fid_and_psnr(srcore_manager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(0)  # random Inception weights of the right architecture (the real ones are not here)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(net.state_dict(), hub / "pt_inception-2015-12-05-6726825d.pth")
    regs = srcore_manager.registries
    fid = regs.build("metric", "core:fid", {"batch_size": 2, "dims": 64})
    psnr = regs.build("metric", "core:psnr", {"crop_border": 2, "y_channel": True})
    return fid, psnr


def _set() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(4)
    items = []
    for _ in range(3):
        hr = torch.rand(3, 32, 32, generator=g)
        items.append({"lr": imresize(hr[None].double(), scale=0.5).float().clamp(0, 1)[0], "hr": hr})
    return items


def _upscaler() -> Upscaler:
    return Upscaler(lambda x, c: imresize(x.double(), scale=2).float(), ModelInfo(scales=(2,)), 2)


def test_fid_over_the_set_equals_the_metric_on_the_same_images(fid_and_psnr) -> None:
    fid, psnr = fid_and_psnr
    items = _set()
    out, _ = validate(_upscaler(), {"toy": items}, [("psnr", psnr), ("fid", fid)], [None], DistInfo(),
                      torch.device("cpu"))
    srs = torch.cat([super_resolve(_upscaler(), it["lr"]) for it in items])
    hrs = torch.stack([it["hr"] for it in items])
    fid.reset()
    fid.update(srs, hrs)
    assert out["toy/fid"] == pytest.approx(fid.compute(), rel=1e-9)
    assert out["toy/psnr"] == pytest.approx(float(psnr.update(srs, hrs).mean()), rel=1e-12)


def test_set_level_metric_left_out_across_ranks_or_conditions(fid_and_psnr, capsys) -> None:
    fid, psnr = fid_and_psnr
    out, _ = validate(_upscaler(), {"toy": _set()}, [("psnr", psnr), ("fid", fid)], [0.0, 1.0], DistInfo(),
                      torch.device("cpu"))
    assert set(out) == {"toy/psnr@0", "toy/psnr@1"}
    assert "fid left out of validation" in capsys.readouterr().err
