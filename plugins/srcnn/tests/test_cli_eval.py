"""`srcore eval --checkpoint <released .pth>`: detection through the plugin hook, then the issue's
Set5 protocol (MATLAB-bicubic LR stored as 8 bits, Y in float, crop = scale) end to end."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

pytestmark = pytest.mark.shared_data


def run_eval(data_root, weights, tmp_path, name: str, scale: str) -> dict:
    from srcore.cli import main

    out = tmp_path / "eval.json"
    args = [
        "eval",
        "--plugin",
        "srcnn",
        "--checkpoint",
        str(weights / name),
        "--data",
        "set5",
        "--scale",
        scale,
        "--data-root",
        str(data_root),
        "--y-convention",
        "float",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {r["scale"]: r["metrics"]["psnr"] for r in json.loads(out.read_text())["results"]}


@pytest.mark.parametrize(("scale", "target"), [(3, 32.60), (4, 30.52)])
def test_cli_eval_fsrcnn_release_infers_scale(data_root, weights, tmp_path, scale, target) -> None:
    """The scale of an FSRCNN file is inferred from its weights (flat-field test), so --scale matches."""
    got = run_eval(data_root, weights, tmp_path, f"fsrcnn_x{scale}_yjn870.pth", str(scale))
    assert got[scale] == pytest.approx(target, abs=0.02)


def test_cli_eval_lapsrn_release_beats_bicubic(data_root, weights, tmp_path) -> None:
    from srcore.cli import main

    got = run_eval(data_root, weights, tmp_path, "lapsrn_x4_twtygqyy.pth", "4")
    out = tmp_path / "bicubic.json"
    CliRunner().invoke(
        main,
        [
            "eval",
            "--model",
            "bicubic",
            "--data",
            "set5",
            "--scale",
            "4",
            "--data-root",
            str(data_root),
            "--y-convention",
            "float",
            "--json",
            str(out),
        ],
        catch_exceptions=False,
    )
    bicubic = json.loads(out.read_text())["results"][0]["metrics"]["psnr"]
    assert got[4] > bicubic + 1.0, (got, bicubic)


@pytest.mark.slow
def test_cli_eval_vdsr_release_serves_every_scale(data_root, weights, tmp_path) -> None:
    """VDSR is one pre-upsampled model for x2/x3/x4: one `srcore eval` call measures all three."""
    got = run_eval(data_root, weights, tmp_path, "vdsr_x234_twtygqyy.pth", "2,3,4")
    assert got[2] == pytest.approx(37.62, abs=0.02)
    assert got[3] == pytest.approx(33.76, abs=0.02)
    assert got[4] == pytest.approx(31.44, abs=0.02)
