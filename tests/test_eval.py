"""``srcore eval``: the Set5 bicubic table, folder mode, outputs and readable errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from srcore.cli import main
from srcore.data.io import read_image, write_image
from srcore.data.resize import imresize
from srcore.testing import shared_data_dir as shared_data


def run(args: list[str]):
    return CliRunner().invoke(main, args, catch_exceptions=False)


# The seed collection's bicubic row for Set5 (MATLAB pipeline, Y, crop = scale): PSNR/SSIM/IFC.
SET5_BICUBIC = {2: (33.64, 0.9292, 5.72), 3: (30.39, 0.8678, 3.45), 4: (28.42, 0.8101, 2.28)}


@pytest.mark.shared_data
def test_set5_bicubic_table(srcore_manager, tmp_path: Path):
    root = shared_data()
    if not (root / "Set5" / "HR").is_dir():
        pytest.skip(f"Set5 not found under {root} (set SRCORE_SHARED_DATA)")
    out = tmp_path / "out.json"
    res = run(["eval", "--model", "bicubic", "--data-root", str(root), "--data", "set5", "--scale", "2,3,4",
               "--metrics", "psnr,ssim,ifc", "--json", str(out)])
    assert res.exit_code == 0, res.output
    assert "Set5" in res.output and "crop border: scale" in res.output
    data = json.loads(out.read_text())
    assert data["protocol"]["channel"] == "y" and data["protocol"]["y_convention"] == "matlab"
    got = {r["scale"]: r for r in data["results"]}
    for scale, (psnr, ssim, ifc) in SET5_BICUBIC.items():
        m = got[scale]["metrics"]
        assert got[scale]["n_images"] == 5
        assert abs(m["psnr"] - psnr) <= 0.01, (scale, m)
        assert abs(m["ssim"] - ssim) <= 0.0005, (scale, m)
        assert abs(m["ifc"] - ifc) <= 0.1, (scale, m)
        assert len(got[scale]["images"]) == 5


def _sr_folder(tmp_path: Path, scale: int = 2) -> tuple[Path, Path]:
    g = torch.Generator().manual_seed(3)
    for i in range(3):
        hr = torch.rand(3, 33 + i, 40, generator=g)  # odd sizes: the HR is mod-cropped
        write_image(tmp_path / "hr" / f"im{i}.png", hr)
        hr8 = read_image(tmp_path / "hr" / f"im{i}.png")[:, : (33 + i) // scale * scale]
        lr = imresize(hr8.unsqueeze(0).double(), 1 / scale)
        write_image(tmp_path / "sr" / f"im{i}_x{scale}_SR.png", imresize(lr, scale)[0])
    return tmp_path / "sr", tmp_path / "hr"


def test_folder_mode_csv_json_and_per_image(srcore_manager, tmp_path: Path):
    sr, hr = _sr_folder(tmp_path)
    out_json, out_csv = tmp_path / "r.json", tmp_path / "r.csv"
    res = run(["eval", "--sr-dir", str(sr), "--hr-dir", str(hr), "--scale", "2", "--per-image",
               "--json", str(out_json), "--csv", str(out_csv)])
    assert res.exit_code == 0, res.output
    assert "im1" in res.output
    data = json.loads(out_json.read_text())["results"][0]
    assert data["n_images"] == 3 and [r["image"] for r in data["images"]] == ["im0", "im1", "im2"]
    mean = sum(r["psnr"] for r in data["images"]) / 3
    assert data["metrics"]["psnr"] == pytest.approx(mean, abs=1e-9)
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 4 and rows[0]["image"] == "(mean)"
    assert float(rows[1]["psnr"]) == pytest.approx(data["images"][0]["psnr"], abs=1e-9)
    # crop_border defaults to the scale: a different explicit crop changes the numbers
    args = ["eval", "--sr-dir", str(sr), "--hr-dir", str(hr), "--scale", "2", "--crop-border", "0", "--json"]
    res0 = run([*args, str(tmp_path / "r0.json")])
    assert res0.exit_code == 0, res0.output
    uncropped = json.loads((tmp_path / "r0.json").read_text())["results"][0]["metrics"]["psnr"]
    assert uncropped != pytest.approx(mean, abs=1e-3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "bicubic", "--data", "set5"], "--scale is required"),
        (["--model", "bicubic", "--scale", "2"], "--data is required"),
        ([], "nothing to evaluate"),
        (["--model", "bicubic", "--scale", "two", "--data", "x"], "not a positive integer"),
        (["--sr-dir", "a"], "go together"),
        (["--model", "bicubic", "--scale", "2", "--data", "nosuchset", "--data-root", "."], "no set 'nosuchset'"),
        (["--model", "bicubic", "--scale", "2", "--data", "set5", "--metrics", "psnrr"], "unknown metric"),
    ],
)
def test_bad_input_exits_2_with_message(srcore_manager, args: list[str], message: str):
    res = CliRunner().invoke(main, ["eval", *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_missing_metric_weights_are_reported_or_fail_when_strict(srcore_manager, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "emptyhub"))
    sr, hr = _sr_folder(tmp_path)
    out = tmp_path / "res.json"
    args = ["eval", "--sr-dir", str(sr), "--hr-dir", str(hr), "--scale", "2", "--metrics", "psnr,lpips"]
    res = CliRunner().invoke(main, [*args, "--json", str(out)])
    assert res.exit_code == 0 and "left out" in res.output and "PSNR" in res.output
    assert "not measured: core:lpips" in res.output and "alexnet-owt-7be5be79.pth" in res.output
    saved = json.loads(out.read_text())
    assert "alexnet-owt-7be5be79.pth" in saved["protocol"]["unavailable_metrics"]["core:lpips"]
    assert set(saved["results"][0]["metrics"]) == {"psnr"}
    res = CliRunner().invoke(main, [*args, "--strict-metrics"])
    assert res.exit_code == 2 and "alexnet-owt-7be5be79.pth" in res.output


def test_folder_mode_missing_and_mismatched(srcore_manager, tmp_path: Path):
    sr, hr = _sr_folder(tmp_path)
    (sr / "im2_x2_SR.png").unlink()
    res = CliRunner().invoke(main, ["eval", "--sr-dir", str(sr), "--hr-dir", str(hr), "--scale", "2"])
    assert res.exit_code == 2 and "no SR image" in res.output and "im2.png" in res.output
    write_image(sr / "im2.png", torch.rand(3, 10, 10))
    res = CliRunner().invoke(main, ["eval", "--sr-dir", str(sr), "--hr-dir", str(hr), "--scale", "2"])
    assert res.exit_code == 2 and "size mismatch" in res.output


class _BicubicNet(torch.nn.Module):
    """A 'model' whose output is MATLAB bicubic upsampling (plus a zero-weighted parameter)."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.scale = scale
        self.gain = torch.nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return imresize(x, self.scale) + self.gain * x.mean()


class _Plugin:
    from srcore import hookimpl

    @staticmethod
    @hookimpl
    def srcore_register_models(register) -> None:
        from srcore.registry import StrictModel

        class Cfg(StrictModel):
            scale: int = 2

        register("bicubic_net", lambda c: _BicubicNet(c.scale), config=Cfg, scales=(2, 3, 4))

    @staticmethod
    @hookimpl
    def srcore_register_degradations(register) -> None:
        from srcore.registry import StrictModel

        class Cfg(StrictModel):
            scale: int = 2

        class Noisy:
            """MATLAB bicubic down, then Gaussian noise (sigma 8/255) drawn from the generator."""

            def __init__(self, scale: int) -> None:
                self.scale = scale

            def __call__(self, hr: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
                lr = imresize(hr, 1 / self.scale)
                return lr + torch.randn(lr.shape, generator=generator, dtype=lr.dtype) * 8 / 255

        register("noisy", lambda c: Noisy(c.scale), config=Cfg)


def test_checkpoint_mode_matches_bicubic_mode(srcore_plugin, tmp_path: Path):
    srcore_plugin(_Plugin(), "evaltest")
    _, hr = _sr_folder(tmp_path)
    ckpt = tmp_path / "net.pth"
    torch.save(_BicubicNet(2).state_dict(), ckpt)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    res = run(["eval", "--checkpoint", str(ckpt), "--model", "evaltest:bicubic_net", "--data", str(hr),
               "--scale", "2", "--json", str(a)])
    assert res.exit_code == 0, res.output
    assert run(["eval", "--model", "bicubic", "--data", str(hr), "--scale", "2", "--json", str(b)]).exit_code == 0
    ra, rb = (json.loads(p.read_text())["results"][0] for p in (a, b))
    assert ra["model"] == "evaltest:bicubic_net" and ra["n_images"] == 3
    assert ra["metrics"]["psnr"] == pytest.approx(rb["metrics"]["psnr"], abs=0.01)
    assert ra["metrics"]["ssim"] == pytest.approx(rb["metrics"]["ssim"], abs=1e-4)
    # a plain state dict with --model is built at the requested scale
    x3 = run(["eval", "--checkpoint", str(ckpt), "--model", "evaltest:bicubic_net", "--data", str(hr), "--scale", "3"])
    assert x3.exit_code == 0 and "x3" in x3.output, x3.output
    two = CliRunner().invoke(main, ["eval", "--checkpoint", str(ckpt), "--model", "evaltest:bicubic_net",
                                    "--data", str(hr), "--scale", "2,3"])
    assert two.exit_code == 2 and "works at x2" in two.output


def test_one_table_with_bicubic_and_self_ensemble_rows(srcore_plugin, tmp_path: Path):
    """--with-bicubic and --with-self-ensemble put baseline, model and model+x8 in one table, on the
    same (seeded, noisy) LR inputs as separate calls would."""
    srcore_plugin(_Plugin(), "evaltest")
    _, hr = _sr_folder(tmp_path)
    ckpt = tmp_path / "net.pth"
    torch.save(_BicubicNet(2).state_dict(), ckpt)
    common = ["--data", str(hr), "--scale", "2", "--rgb", "--crop-border", "0",
              "--degradation", "evaltest:noisy"]
    out = tmp_path / "all.json"
    res = run(["eval", "--checkpoint", str(ckpt), "--model", "evaltest:bicubic_net", *common,
               "--with-bicubic", "--with-self-ensemble", "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = {r["model"]: r["metrics"] for r in json.loads(out.read_text())["results"]}
    assert list(rows) == ["bicubic", "evaltest:bicubic_net", "evaltest:bicubic_net +x8"]
    alone = tmp_path / "alone.json"
    assert run(["eval", "--model", "bicubic", *common, "--json", str(alone)]).exit_code == 0
    assert json.loads(alone.read_text())["results"][0]["metrics"] == rows["bicubic"]
    # the 'model' is bicubic upsampling itself, so its row equals the baseline up to 8-bit rounding
    assert rows["evaltest:bicubic_net"]["psnr"] == pytest.approx(rows["bicubic"]["psnr"], abs=0.01)
    assert "bicubic" in res.output and "+x8" in res.output
