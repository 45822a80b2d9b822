"""Never overwrite a user's file: ``srcore upscale`` and ``srcore data prepare`` refuse, before any
work, a run that would replace inputs or existing outputs, cannot write, or cannot fit on the
disk; an interrupted or full-disk ``data prepare`` leaves no temporary file behind.

Most tests drive the real CLI in a subprocess and check: exit code 2, one error line naming the
file or option, no traceback, and the user's files byte-identical afterwards.
"""

from __future__ import annotations

import collections
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srcore.errors import SrcoreError
from srcore.testing import shared_data_dir

Usage = collections.namedtuple("Usage", "total used free")


def srcore(*args: str | Path, code: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m srcore ARGS`` (or ``code`` run before the CLI, to patch something in-process)."""
    argv = [sys.executable, "-m", "srcore"] if code is None else [
        sys.executable, "-c", f"import sys\n{code}\nfrom srcore.cli import run\nrun(sys.argv[1:])"]
    return subprocess.run([*argv, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def error_lines(res: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in res.stderr.splitlines() if ln.lower().startswith("error:")]


def assert_refused(res: subprocess.CompletedProcess, *words: str, code: int = 2) -> str:
    """Exit ``code``, exactly one error line containing every word, no traceback."""
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr, res.stderr
    lines = error_lines(res)
    assert len(lines) == 1, res.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def photo_file(path: Path, size: tuple[int, int] = (24, 20), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """core:tiny x2, exported as safetensors (a second to make)."""
    import torch

    from srcore.engine.checkpoint import LoadedModel
    from srcore.export import export_safetensors
    from srcore.plugins import PluginManager

    comp = PluginManager().load(only=["core"]).registries.models.get("core:tiny")
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    return export_safetensors(LoadedModel(comp.build({"scale": 2}), comp, comp.info, {"scale": 2}), path)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    d = tmp_path / "photos"
    for i, name in enumerate(("a.png", "b.png")):
        photo_file(d / name, seed=i)
    return d


def upscale(checkpoint: Path, *args: str | Path) -> subprocess.CompletedProcess:
    return srcore("upscale", checkpoint, *args, "--plugin", "core")


# -- upscale ------------------------------------------------------------------------------------

def test_upscale_refuses_an_output_that_is_an_input(checkpoint: Path, photos: Path, tmp_path: Path):
    link = tmp_path / "link"
    link.symlink_to(photos)
    before = snapshot(photos)
    assert_refused(upscale(checkpoint, photos, "-o", photos), "output folder", "is an input folder")
    assert_refused(upscale(checkpoint, photos, "-o", link), str(link), "input folder")  # same after resolving
    assert_refused(upscale(checkpoint, photos / "a.png", "-o", photos, "--overwrite"), "is the input",
                   str(photos / "a.png"))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.png").symlink_to(photos / "b.png")  # an output that is an input behind a symlink
    assert_refused(upscale(checkpoint, photos / "b.png", "-o", tmp_path / "out", "--overwrite"), "is the input")
    assert snapshot(photos) == before


def test_upscale_refuses_two_inputs_with_one_output_name(checkpoint: Path, photos: Path, tmp_path: Path):
    photo_file(photos / "a.jpg")
    photo_file(tmp_path / "other" / "b.png", seed=5)
    out = tmp_path / "out"
    assert_refused(upscale(checkpoint, photos, "-o", out), "a.jpg", "a.png", "would both write", str(out / "a.png"))
    assert_refused(upscale(checkpoint, photos / "b.png", tmp_path / "other", "-o", out, "--suffix", "_x2"),
                   "would both write", str(out / "b_x2.png"))
    assert not out.exists()


def test_upscale_keeps_existing_outputs_unless_told(checkpoint: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"my own file")
    res = upscale(checkpoint, photos, "-o", out)
    assert_refused(res, "output file exists", str(out / "a.png"), "--overwrite", "--suffix")
    assert snapshot(out) == {"a.png": b"my own file"}
    res = upscale(checkpoint, photos, "-o", out, "--suffix", "_x2")
    assert res.returncode == 0, res.stderr
    assert sorted(snapshot(out)) == ["a.png", "a_x2.png", "b_x2.png"] and (out / "a.png").read_bytes() == b"my own file"
    assert Image.open(out / "a_x2.png").size == (48, 40)
    res = upscale(checkpoint, photos, "-o", out, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert Image.open(out / "a.png").size == (48, 40)


def test_upscale_removes_the_temp_files_a_killed_upscale_left(checkpoint: Path, photos: Path, tmp_path: Path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    out = tmp_path / "out"
    out.mkdir()
    (out / f".a_x2.png.incomplete-{int(dead.stdout)}").write_bytes(b"half an image")  # a kill -9 mid-write
    (out / ".mine.incomplete-notes").write_bytes(b"not srcore's")
    res = upscale(checkpoint, photos, "-o", out, "--suffix", "_x2")
    assert res.returncode == 0, res.stderr
    assert sorted(snapshot(out)) == [".mine.incomplete-notes", "a_x2.png", "b_x2.png"]


def test_upscale_counts_sweep_strips_and_d_maps_among_its_outputs(checkpoint: Path, photos: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    for name in ("a_sweep.png", "a_t0.50.png", "b_t0.00.png", "b_t1.00.png", "a_x4_dmap.png"):
        (out / name).write_bytes(name.encode())
    before = snapshot(out)
    line = assert_refused(upscale(checkpoint, photos, "-o", out, "--t-sweep", "0:1:0.5"), "4 output files exist",
                          "and 1 more")
    assert "a_sweep.png" in line or "a_t0.50.png" in line
    assert_refused(upscale(checkpoint, photos, "-o", out, "--suffix", "_x4", "--save-d-map"), "a_x4_dmap.png")
    assert snapshot(out) == before


@pytest.mark.parametrize(
    ("args", "option"),
    [(["--tile", "0"], "--tile"), (["--tile", "-5"], "--tile"), (["--tile-overlap", "-1"], "--tile-overlap"),
     (["--tile", "16", "--tile-overlap", "x"], "--tile-overlap"), (["--suffix", "x/y"], "--suffix"),
     (["--t-sweep", "0:1:0"], "--t-sweep")],
)
def test_upscale_bad_numbers_are_usage_errors(checkpoint: Path, photos: Path, tmp_path: Path, args, option):
    res = upscale(checkpoint, photos, "-o", tmp_path / "out", *args)
    assert_refused(res, option)
    assert not (tmp_path / "out").exists()


def test_upscale_unwritable_output_is_one_line_and_leaves_nothing(checkpoint: Path, photos: Path, tmp_path: Path,
                                                                  tmpfs):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    res = upscale(checkpoint, photos, "-o", blocker / "out")
    assert_refused(res, str(blocker / "out"), "not a folder")
    read_only = tmpfs("ro", "ro,size=64k")
    assert_refused(upscale(checkpoint, photos, "-o", read_only / "out"), str(read_only / "out"), "not writable")
    assert_refused(upscale(checkpoint, photos, "-o", read_only), str(read_only), "not writable")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt", "photos", "ro"]
    assert snapshot(tmp_path)["file.txt"] == b"not a folder" and len(snapshot(tmp_path)) == 3


def test_repeated_input_is_upscaled_once(photos: Path):
    from srcore.cli.upscale_cmd import collect_inputs

    assert collect_inputs((str(photos), str(photos / "a.png"))) == [photos / "a.png", photos / "b.png"]


# -- data prepare -------------------------------------------------------------------------------

SMALL = ["-W", "16", "-H", "16", "--stride", "16", "-uf", "2"]


def prepare(*args: str | Path, code: str | None = None) -> subprocess.CompletedProcess:
    return srcore("data", "prepare", *args, code=code)


def test_prepare_needs_overwrite_to_replace_a_file_and_checks_before_reading(photos: Path, tmp_path: Path):
    out = tmp_path / "existing.h5"
    out.write_bytes(b"a week of work")
    (photos / "broken.png").write_bytes(b"not a png")  # read it and the error would be about this file
    assert_refused(prepare("-i", photos, "-o", out, *SMALL), str(out), "--overwrite")
    assert out.read_bytes() == b"a week of work"
    (photos / "broken.png").unlink()
    res = prepare("-i", photos, "-o", out, *SMALL, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"
    assert_refused(prepare("-i", photos, "-o", out / "x.h5", *SMALL), str(out.parent / "existing.h5/x.h5"),
                   "not a folder")


def test_prepare_announces_count_and_size_and_they_hold(photos: Path, tmp_path: Path):
    import h5py

    out = tmp_path / "p.h5"
    res = prepare("-i", photos, "-o", out, *SMALL, "--rotations", "0", "90")
    assert res.returncode == 0, res.stderr
    n = 2 * 2 * (24 // 16) * (20 // 16)
    assert f"{n} patch pairs from 2 image(s), hr (16, 16, 3), lr (8, 8, 3): about" in res.stderr
    with h5py.File(out) as f:
        assert f["hr"].shape[0] == n
    from srcore.data.prepare import H5_OVERHEAD

    assert out.stat().st_size <= n * (16 * 16 * 3 + 8 * 8 * 3) + H5_OVERHEAD


def test_free_space_check_names_both_sizes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    import shutil

    from srcore.outputs import check_free_space

    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**12, 10**12 - 5 * 10**6, 5 * 10**6))
    assert check_free_space(tmp_path / "new" / "x.h5", 4 * 10**6) == 5 * 10**6
    with pytest.raises(SrcoreError, match=r"x\.h5: it needs about 6\.0 MB, 5\.0 MB is free"):
        check_free_space(tmp_path / "new" / "x.h5", 6 * 10**6)


def test_prepare_refuses_a_run_larger_than_the_disk(photos: Path, tmp_path: Path, tmpfs):
    small = tmpfs("small", "size=256k")
    photo_file(photos / "big.png", (400, 300), seed=3)  # 25 x 18 patches of 16 x 16 (+ 8 x 8 LR) x 3 bytes
    out = small / "p.h5"
    res = prepare("-i", photos, "-o", out, *SMALL)
    assert_refused(res, str(out), "needs about 499.5 kB", "262.1 kB is free")  # 452 x 960 B + 64 KiB
    assert list(small.iterdir()) == []


def test_prepare_full_disk_removes_the_temp_file(monkeypatch: pytest.MonkeyPatch, photos: Path, tmp_path: Path):
    """Simulated in-process: the HDF5 write and then a PNG save fail with ENOSPC."""
    import h5py

    from srcore.data.prepare import PrepareOptions, prepare_h5, prepare_png

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    opts = PrepareOptions(width=16, height=16, stride=16)
    out = tmp_path / "o" / "p.h5"
    with monkeypatch.context() as m:
        m.setattr(h5py.Dataset, "__setitem__", full)
        with pytest.raises(SrcoreError) as info:
            prepare_h5(photos, out, opts)
    assert str(info.value) == f"no space left on device writing {out}"
    assert list(out.parent.iterdir()) == []
    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(SrcoreError, match="no space left on device writing"):
        prepare_png(photos, tmp_path / "H", tmp_path / "L", opts)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o", "photos"]


def test_prepare_on_a_really_full_disk_exits_cleanly(photos: Path, tmp_path: Path, tmpfs):
    """A real 256 kB tmpfs; the free-space check is patched away in the child so the writes hit ENOSPC
    (this used to segfault, exit 139, in HDF5's close)."""
    small = tmpfs("full", "size=256k")
    code = ("import shutil, collections\n"
            "shutil.disk_usage = lambda p: collections.namedtuple('u', 'total used free')(1 << 40, 0, 1 << 40)")
    photo_file(photos / "big.png", (400, 300), seed=3)
    res = prepare("-i", photos, "-o", small / "p.h5", *SMALL, "--rotations", "0,90,180,270", code=code)
    assert_refused(res, f"no space left on device writing {small / 'p.h5'}")
    assert list(small.iterdir()) == []


def _set14() -> Path:
    d = shared_data_dir() / "Set14" / "HR"
    if not d.is_dir():
        pytest.skip(f"needs Set14 at {d} (set SRCORE_SHARED_DATA)")
    return d


@pytest.mark.shared_data
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prepare_killed_removes_its_temp_file(tmp_path: Path, sig: signal.Signals):
    out = tmp_path / "s.h5"
    proc = subprocess.Popen([sys.executable, "-m", "srcore", "data", "prepare", "-i", str(_set14()), "-o", str(out),
                             "-W", "8", "-H", "8", "--stride", "4", "-uf", "2", "--single-y"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".s.h5.incomplete-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert proc.poll() is None, "finished before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    res = subprocess.CompletedProcess(proc.args, proc.returncode, "", err)
    assert_refused(res, "interrupted by", sig.name, code=128 + sig)
    assert list(tmp_path.iterdir()) == []


def test_prepare_removes_stale_temp_files_of_dead_runs(photos: Path, tmp_path: Path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    out = tmp_path / "o"
    out.mkdir()
    stale, stale_dir = out / f".old.h5.incomplete-{pid}", out / f".H.incomplete-{pid}"
    live = out / f".other.h5.incomplete-{os.getpid()}"  # this test's process is alive: kept
    stale.write_bytes(b"x" * 1000)
    stale_dir.mkdir()
    (stale_dir / "p.png").write_bytes(b"x")
    live.write_bytes(b"y")
    res = prepare("-i", photos, "-o", out / "p.h5", *SMALL)
    assert res.returncode == 0, res.stderr
    assert f"removed {stale}" in res.stderr and f"removed {stale_dir}" in res.stderr
    assert sorted(p.name for p in out.iterdir()) == [live.name, "p.h5"]


def test_space_separated_lists_as_in_the_seed_command_lines(photos: Path, tmp_path: Path):
    import h5py

    spaced = ["-uf", "2", "--rotations", "0", "90", "180", "270", "--scales", "1.0", "0.9", "--flip", "0", "1"]
    commas = ["-uf", "2", "--rotations=0,90", "180", "--rotations", "270", "--scales", "1.0,0.9", "--flips", "0,1"]
    sizes = []
    for name, lists in (("s", spaced), ("c", commas)):
        res = prepare("-i", photos, "-o", tmp_path / f"{name}.h5", "-W", "8", "-H", "8", "--stride", "8", *lists)
        assert res.returncode == 0, res.stderr
        with h5py.File(tmp_path / f"{name}.h5") as f:
            sizes.append(f["hr"].shape)
            assert f["hr"].attrs["rotations"] == "[0.0, 90.0, 180.0, 270.0]"
            assert f["hr"].attrs["scales"] == "[1.0, 0.9]" and f["hr"].attrs["flips"] == "[0, 1]"
    assert sizes[0] == sizes[1]


def test_join_list_values_keeps_options_and_negative_numbers():
    from srcore.cli.data_cmd import join_list_values

    names = frozenset({"--rotations", "-uf"})
    assert join_list_values(["-uf", "2", "3", "--rotations", "0", "-90", "-i", "d", "--seed", "1"], names) == [
        "-uf", "2,3", "--rotations", "0,-90", "-i", "d", "--seed", "1"]
    assert join_list_values(["--rotations=0", "90", "--", "-uf", "2", "3"], names) == [
        "--rotations", "0,90", "--", "-uf", "2", "3"]
    # a list option without a value is left for click to report
    assert join_list_values(["--rotations", "-i", "d"], names) == ["--rotations", "-i", "d"]
