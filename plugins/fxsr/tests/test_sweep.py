"""Evaluation of one checkpoint at several t values (the perception-distortion table)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from sr_plugin_fxsr.model import FxSRNet
from sr_plugin_fxsr.sweep import evaluate_t_sweep, format_table
from srcore.errors import SrcoreError
from srcore.plugins import PluginManager

from .conftest import randomize_, shared_data


def _rgb(path) -> torch.Tensor:
    img = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255


def test_sweep_rows_match_a_direct_computation_on_set5(tmp_path) -> None:
    set5 = shared_data() / "Set5"
    if not (set5 / "LR_bicubic" / "X4").is_dir():
        pytest.skip(f"Set5 LR/HR pairs absent: {set5} (set SRCORE_SHARED_DATA to the shared data folder)")
    model = randomize_(FxSRNet(scale=4, nf=8, nb=1, gc=4), seed=4).eval()
    with torch.no_grad():  # keep outputs in a sensible range: start from the bicubic-like mean colour
        model.conv_last.bias.add_(0.45)
    path = tmp_path / "FxSR_tiny.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)  # detected by the plugin

    spec = {"hr": str(set5 / "HR_mod4"), "lr": str(set5 / "LR_bicubic" / "X4")}
    metrics = [{"id": "core:psnr", "params": {"crop_border": 0}}]
    rows = evaluate_t_sweep(path, [0.0, 0.5, 1.0], sets=[spec], metrics=metrics, max_images=2,
                            manager=PluginManager().load(only=["fxsr"]))
    assert [r.t for r in rows] == [0.0, 0.5, 1.0] and all(r.images == 2 for r in rows)

    names = ["img_001", "img_002"]
    for row in rows:
        psnrs = []
        for n in names:
            lr = _rgb(set5 / "LR_bicubic" / "X4" / f"{n}_SRF_4_LR.png")
            hr = _rgb(set5 / "HR_mod4" / f"{n}_SRF_4_HR.png")
            with torch.no_grad():
                sr = model(lr, torch.full((1, 1, *lr.shape[-2:]), row.t)).clamp(0, 1)
            mse = (sr.double() - hr.double()).pow(2).mean().item()
            psnrs.append(10 * math.log10(1 / mse))
        assert row.values["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-4)
    assert len({round(r.values["psnr"], 3) for r in rows}) == 3  # t matters
    table = format_table(rows)
    assert table.splitlines()[0] == "| set | t | psnr |" and len(table.splitlines()) == 5


def test_sweep_refuses_bad_input(tmp_path) -> None:
    from srcore.engine.checkpoint import LoadedModel

    manager = PluginManager().load(only=["fxsr"])
    comp = manager.registries.models.get("fxsr:fxsr")
    loaded = LoadedModel(FxSRNet(nb=1, nf=8, gc=4), comp, comp.info, {"scale": 4, "nb": 1, "nf": 8, "gc": 4})
    with pytest.raises(SrcoreError, match=r"in \[0, 1\]"):
        evaluate_t_sweep(loaded, [0.0, 1.5], sets=[], manager=manager)
    with pytest.raises(SrcoreError, match="at least one"):
        evaluate_t_sweep(loaded, [], sets=[], manager=manager)
    plain = LoadedModel(torch.nn.Identity(), comp, comp.info.model_copy(update={"condition": None}), {"scale": 4})
    with pytest.raises(SrcoreError, match="takes no condition"):
        evaluate_t_sweep(plain, [0.0], sets=[], manager=manager)
