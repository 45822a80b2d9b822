"""``srcore export``: ONNX with dynamic height/width agrees with PyTorch on real photographs."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from srcore.engine.checkpoint import LoadedModel, load_checkpoint
from srcore.export import check_onnx, export_onnx, export_safetensors, sample_photo

pytest.importorskip("onnxruntime", reason="onnxruntime is the reference runtime of the ONNX check")


@pytest.fixture
def loaded(srcore_manager):
    comp = srcore_manager.registries.models.get("core:tiny")
    torch.manual_seed(0)
    return LoadedModel(comp.build({"scale": 2}), comp, comp.info, {"scale": 2, "channels": 8})


def test_onnx_has_dynamic_height_and_width_and_matches_pytorch(loaded, tmp_path):
    import onnx

    path = export_onnx(loaded, tmp_path / "m.onnx")
    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]
    for size in (64, 97):  # neither is the export size (24): the graph really is dynamic
        report = check_onnx(loaded, path, sample_photo(size))
        assert report["shape"] == [1, 3, 2 * size, 2 * size]
        assert report["max_abs_diff"] < 1e-4


def test_export_cli_writes_both_formats(srcore_manager, loaded, tmp_path):
    from srcore.cli import main

    src = export_safetensors(loaded, tmp_path / "src.safetensors")
    res = CliRunner().invoke(main, ["export", str(src), "--format", "onnx", "-o", str(tmp_path / "x.onnx"),
                                    "--plugin", "core"])
    assert res.exit_code == 0, res.output
    assert "onnxruntime vs PyTorch" in res.output and (tmp_path / "x.onnx").is_file()
    torch.save(loaded.module.state_dict(), tmp_path / "plain.pth")
    res = CliRunner().invoke(main, ["export", str(tmp_path / "plain.pth"), "--format", "safetensors", "--model",
                                    "core:tiny", "-p", "scale=2", "-o", str(tmp_path / "y.safetensors"),
                                    "--plugin", "core"])
    assert res.exit_code == 0, res.output
    back = load_checkpoint(tmp_path / "y.safetensors", manager=srcore_manager)  # self-describing now
    assert back.component.id == "core:tiny"
    for k, v in loaded.module.state_dict().items():
        assert torch.equal(back.module.state_dict()[k], v)
