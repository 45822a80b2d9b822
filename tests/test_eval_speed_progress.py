"""Issue 17: the fast evaluation path gives the sequential numbers; progress bars obey the switches."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from srcore.cli import main
from srcore.data.color import exact_float64, quantize
from srcore.data.io import write_image
from srcore.data.resize import contributions, imresize
from srcore.progress import bar, phases, wanted

BAR_MARKS = ("img/s", "s/img", "it/s", "█", "|")


def _gather_resize(x: torch.Tensor, dim: int, out_len: int, scale: float) -> torch.Tensor:
    """The previous implementation (one gather per tap), the reference of the banded one."""
    w, idx = contributions(x.shape[dim], out_len, scale, True)
    shape = [1] * x.dim()
    shape[dim] = out_len
    return sum(x.index_select(dim, idx[:, k]) * w[:, k].view(shape) for k in range(idx.shape[1]))


@pytest.mark.parametrize(("h", "w", "scale"), [(37, 50, 0.25), (12, 9, 4.0), (30, 31, 1 / 3), (17, 23, 2.5)])
def test_banded_imresize_equals_tap_gather(h: int, w: int, scale: float):
    x = torch.rand(2, 3, h, w, generator=torch.Generator().manual_seed(h), dtype=torch.float64)
    got = imresize(x, scale)
    oh, ow = got.shape[-2:]
    ref = _gather_resize(_gather_resize(x, 2, oh, scale), 3, ow, scale)
    assert (got - ref).abs().max() < 1e-13


def test_quantize_rounds_exact_halves_to_even_whatever_the_summation_order():
    for level, even in ((0.5, 0), (81.5, 82), (122.5, 122), (254.5, 254)):
        below, above = torch.tensor([(level - 1e-12) / 255, (level + 1e-12) / 255], dtype=torch.float64)
        assert quantize(below) * 255 == quantize(above) * 255 == even
    assert quantize(torch.tensor(122.4999 / 255, dtype=torch.float64)) * 255 == 122


def test_exact_float64_restores_8bit_levels_only():
    levels = torch.arange(256, dtype=torch.float64) / 255
    assert torch.equal(exact_float64(levels.float()), levels)  # float32 k/255 -> exact k/255
    odd = torch.tensor([0.1234567], dtype=torch.float32)
    assert torch.equal(exact_float64(odd), odd.double())  # not an 8-bit image: unchanged


@pytest.fixture
def small_set(tmp_path: Path) -> Path:
    g = torch.Generator().manual_seed(1)
    for i in range(5):
        write_image(tmp_path / "hr" / f"im{i}.png", torch.rand(3, 40 + 4 * i, 44, generator=g))
    return tmp_path / "hr"


def _eval(args: list[str]):
    return CliRunner().invoke(main, ["eval", "--model", "bicubic", *args], catch_exceptions=False)


def test_threaded_eval_equals_sequential(srcore_manager, small_set: Path, tmp_path: Path):
    out = {}
    for workers in (1, 3):
        path = tmp_path / f"w{workers}.json"
        res = _eval(["--data", str(small_set), "--scale", "2,4", "--metrics", "psnr,ssim", "--workers", str(workers),
                     "--json", str(path)])
        assert res.exit_code == 0, res.output
        out[workers] = json.loads(path.read_text())["results"]
    assert out[1] == out[3]  # same images in the same order, same values to the last bit


def test_no_bar_with_no_progress_or_without_terminal(srcore_manager, small_set: Path):
    base = ["--data", str(small_set), "--scale", "2"]
    for extra in (["--no-progress"], []):  # CliRunner's stderr is not a terminal
        res = _eval(base + extra)
        assert res.exit_code == 0, res.output
        assert not any(mark in res.stderr for mark in BAR_MARKS if mark != "|"), res.stderr
        assert "PSNR" in res.stdout
    forced = _eval([*base, "--progress"])
    assert forced.exit_code == 0 and "img" in forced.stderr and "PSNR" not in forced.stderr


def test_progress_policy_and_phases(capsys):
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert wanted(None, Tty()) and not wanted(None, io.StringIO())
    assert not wanted(False, Tty()) and wanted(True, io.StringIO())
    assert list(bar(range(3), desc="x", enabled=False)) == [0, 1, 2]
    with phases(["trace", "check"], desc="export onnx", enabled=True) as step:
        step("trace")
        step("check")
    err = capsys.readouterr().err
    assert "export onnx" in err and "check" in err
    with phases(["trace"], desc="quiet", enabled=False) as step:
        step("trace")
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_bar_on_a_pseudo_terminal(small_set: Path):
    """``srcore eval`` with stderr on a pty (what a terminal user sees) draws the bar."""
    import pty
    import subprocess

    master, slave = pty.openpty()
    exe = Path(sys.executable).with_name("srcore")
    proc = subprocess.Popen([str(exe), "eval", "--model", "bicubic", "--data", str(small_set), "--scale", "2",
                             "--plugin", "core"], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    stdout, _ = proc.communicate(timeout=120)
    os.close(master)
    err = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, err
    assert "img" in err and "/5 [" in err, err  # the bar (ETA part included); drawn, then cleared
    assert b"PSNR" in stdout


def test_cached_set_reads_each_item_once_within_its_budget():
    from srcore.metrics.evaluate import CachedSet

    class Counting:
        scale, name = 2, "counting"
        reads = 0

        def __len__(self) -> int:
            return 3

        def __getitem__(self, i: int) -> dict:
            Counting.reads += 1
            return {"name": f"im{i}", "lr": torch.full((3, 4, 4), float(i)), "hr": torch.zeros(3, 8, 8)}

    cached = CachedSet(Counting())
    first, second = list(cached), list(cached)
    assert Counting.reads == 3 and cached.scale == 2 and cached.name == "counting"
    assert all(a is b for a, b in zip(first, second))
    tiny = CachedSet(Counting(), budget_mb=0)  # nothing fits: every use reads again
    list(tiny), list(tiny)
    assert Counting.reads == 9


def test_exact_input_gives_the_lr_of_the_exact_hr():
    from srcore.data.degrade import BicubicMatlab
    from srcore.metrics.evaluate import ExactInput

    hr = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(5)).double() / 255
    deg = ExactInput(BicubicMatlab(4))
    assert deg.scale == 4
    assert torch.equal(deg(hr.float()), BicubicMatlab(4)(hr))  # float32 levels: restored first
    assert torch.equal(deg(hr), BicubicMatlab(4)(hr))  # float64: taken as exact (EvalSet makes it so)
    assert torch.equal(exact_float64(hr.float().double()), hr)
