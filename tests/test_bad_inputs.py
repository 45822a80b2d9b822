"""One clear line for every bad input: a table of bad inputs across eval, export, upscale
(loading), config and data prepare.

Each case must exit with code 2 and print exactly one non-empty stderr line, starting with
``error:`` and naming the file or option at fault, with no traceback, and must leave no file
behind (no output, no 0-byte file, no temporary file). Most cases run in-process through
click's CliRunner; ``SUBPROCESS`` cases run the real ``srcore`` executable, where library
warnings, log records and OpenCV's own messages would reach stderr too.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import save_file

from srcore.builtin.models import TinySR
from srcore.cli import main
from srcore.data.io import write_image
from srcore.testing import shared_data_dir

TINY_MD = {"format": "srcore", "model": "core:tiny", "params": '{"scale": 2, "channels": 8}'}


def _image(path: Path, h: int, w: int) -> None:
    write_image(path, torch.rand(3, h, w, generator=torch.Generator().manual_seed(h * w)))


def _weights(d: Path) -> None:
    sd = TinySR(2, 8).state_dict()
    save_file(sd, str(d / "good.safetensors"), metadata=TINY_MD)
    torch.save(sd, d / "good.pth")
    raw = (d / "good.safetensors").read_bytes()
    (d / "trunc.safetensors").write_bytes(raw[: len(raw) // 2])
    (d / "rand.safetensors").write_bytes(np.random.default_rng(0).bytes(300))
    (d / "empty.safetensors").write_bytes(b"")
    (d / "empty.pth").write_bytes(b"")
    (d / "rand.pth").write_bytes(np.random.default_rng(1).bytes(300))
    (d / "trunc.pth").write_bytes((d / "good.pth").read_bytes()[:700])
    torch.save([1, 2, 3], d / "list.pth")
    torch.save(torch.zeros(3), d / "tensor.pth")
    # an old-style training checkpoint: its argparse.Namespace needs code to unpickle
    torch.save({"args": argparse.Namespace(lr=1e-4), "state_dict": sd}, d / "code.pth")
    torch.save({"foo.weight": torch.zeros(3)}, d / "wrongkeys.pth")
    nan = {k: v.clone() for k, v in sd.items()}
    nan["body.0.weight"][0, 0, 0, 0] = float("nan")
    torch.save(nan, d / "nan.pth")
    save_file(nan, str(d / "nan.safetensors"), metadata=TINY_MD)
    torch.save({}, d / "emptydict.pth")
    save_file(sd, str(d / "badmeta.safetensors"), metadata={**TINY_MD, "params": "{scale: 2"})
    (d / "badckpt").mkdir()
    (d / "badckpt" / "meta.json").write_text("{not json")
    inf = {k: v.clone() for k, v in sd.items()}
    inf["body.2.bias"][0] = float("inf")
    torch.save(inf, d / "inf.pth")


def _backbones(d: Path) -> None:
    """Wrong-shape LPIPS (AlexNet), FID (Inception) and VGG19 state dicts, made by the test."""
    import torchvision

    from srcore.nn.vgg import vgg19_features

    alex = torchvision.models.alexnet(weights=None).state_dict()
    alex["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(alex, d / "alex_shape.pth")
    inception = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    sd = inception.state_dict()
    sd["Conv2d_1a_3x3.conv.weight"] = torch.zeros(32, 3, 5, 5)
    torch.save(sd, d / "inception_shape.pth")
    vgg = {f"features.{k}": v for k, v in vgg19_features(2).state_dict().items()}
    vgg["features.0.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(vgg, d / "vgg_shape.pth")


def _folders(d: Path) -> None:
    for name, (h, w) in {"hr1": (1, 1), "hr23": (2, 3), "hr55": (5, 5), "ok": (24, 24)}.items():
        (d / name).mkdir()
        _image(d / name / "a.png", h, w)
    (d / "emptydir").mkdir()
    (d / "notimage").mkdir()
    (d / "notimage" / "a.png").write_text("not an image")
    (d / "corrupt").mkdir()
    png = (d / "ok" / "a.png").read_bytes()
    (d / "corrupt" / "a.png").write_bytes(png[:60] + bytes(80) + png[-12:])  # IEND kept: decoder must say it
    (d / "afile").write_text("a regular file, so afile/x cannot be created")
    (d / "bad.yaml").write_text("model: [1,\n")


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("bad")
    _weights(d)
    _backbones(d)
    _folders(d)
    return d


def case(case_id: str, command: str, *mentions: str) -> object:
    """One row: ``command`` split like a shell line ({d} = the fixture folder, {ev} = ``eval
    --data-root {d}``, {bic} = bicubic on the good folder at x2); ``mentions`` must all be in
    the error line."""
    command = command.replace("{ev}", "eval --data-root {d}").replace("{bic}", "--model bicubic --data ok --scale 2")
    return pytest.param(shlex.split(command), list(mentions), id=case_id)


UP = "upscale {w} {d}/ok -o {d}/out"  # an upscale whose output folder must never appear
GLEAN = ("--model srcnn:glean -p in_size=4 -p scale=8 -p num_rrdbs=1 -p rrdb_channels=8 -p style_channels=16 "
         "-p num_mlps=1 -p channel_multiplier=1 -p max_channels=16 -p stylegan2_weights={d}/")


def up(weights: str, extra: str = "") -> str:
    return UP.replace("{w}", f"{{d}}/{weights}") + (f" {extra}" if extra else "")


CASES = [
    # -- eval: images too small for the scale, the border crop or the SSIM window
    case("eval-sr-1x1", "{ev} --sr-dir {d}/hr1 --hr-dir {d}/hr1 --scale 2", "hr1/a", "1x1", "5x5"),
    case("eval-sr-2x3", "{ev} --sr-dir {d}/hr23 --hr-dir {d}/hr23 --scale 2", "hr23/a", "2x3"),
    case("eval-sr-5x5-ssim", "{ev} --sr-dir {d}/hr55 --hr-dir {d}/hr55 --scale 2", "5x5", "ssim", "15x15"),
    case("eval-data-1x1", "{ev} --model bicubic --data hr1 --scale 2", "a.png", "1x1", "x2"),
    case("eval-data-2x3", "{ev} --model bicubic --data hr23 --scale 2", "hr23/a", "2x2"),
    case("eval-data-5x5", "{ev} --model bicubic --data hr55 --scale 2", "hr55/a", "4x4"),
    # -- eval: names, numbers, metric options, folders, files
    case("eval-no-set", "{ev} --model bicubic --data nosuchset --scale 2", "nosuchset"),
    case("eval-scale-0", "{ev} --model bicubic --data ok --scale 0", "--scale", "'0'"),
    case("eval-scale-abc", "{ev} --model bicubic --data ok --scale abc", "--scale", "abc"),
    case("eval-unknown-metric", "{ev} {bic} --metrics psnr,foo", "metric", "foo"),
    case("eval-metric-param-typo", "{ev} {bic} --metrics psnr,lpips --metric-param lpips.nett=vgg", "nett"),
    case("eval-metric-param-form", "{ev} {bic} --metric-param foo=1", "--metric-param", "foo"),
    case("eval-metric-param-not-chosen", "{ev} {bic} --metrics psnr --metric-param ssim.crop_border=1",
         "--metric-param", "ssim"),
    case("eval-hr-dir-file", "{ev} --sr-dir {d}/ok --hr-dir {d}/afile --scale 2", "--hr-dir", "afile"),
    case("eval-hr-dir-empty", "{ev} --sr-dir {d}/ok --hr-dir {d}/emptydir --scale 2", "no images", "emptydir"),
    case("eval-sr-dir-empty", "{ev} --sr-dir {d}/emptydir --hr-dir {d}/ok --scale 2", "emptydir", "a.png"),
    case("eval-data-empty", "{ev} --model bicubic --data emptydir --scale 2", "emptydir"),
    case("eval-not-an-image", "{ev} --model bicubic --data notimage --scale 2", "notimage/a.png"),
    case("eval-corrupt-png", "{ev} --sr-dir {d}/corrupt --hr-dir {d}/ok --scale 2", "corrupt/a.png"),
    # -- eval: outputs that cannot be written, devices
    case("eval-json-unwritable", "{ev} {bic} --json {d}/afile/r.json", "--json", "afile/r.json"),
    case("eval-csv-unwritable", "{ev} {bic} --csv {d}/afile/sub/r.csv", "--csv", "r.csv"),
    case("eval-json-is-folder", "{ev} {bic} --json {d}/ok", "--json", "folder"),
    case("eval-device-tpu9", "{ev} {bic} --device tpu9", "--device", "tpu9", "cpu"),
    case("eval-device-cuda7", "{ev} {bic} --device cuda:7", "--device", "cuda:7"),
    # -- eval -c: bad checkpoints
    case("eval-c-trunc-safetensors", "{ev} -c {d}/trunc.safetensors --data ok --scale 2",
         "not a valid safetensors file", "trunc.safetensors"),
    case("eval-c-nan", "{ev} -c {d}/nan.safetensors --data ok --scale 2", "nan.safetensors", "NaN"),
    case("eval-c-bad-meta-json", "{ev} -c {d}/badckpt --data ok --scale 2", "badckpt/meta.json"),
    case("eval-c-empty-pth", "{ev} -c {d}/empty.pth --data ok --scale 2 --model core:tiny", "empty.pth", "empty"),
    # -- eval: LPIPS / FID weight files
    case("eval-lpips-code-pickle", "{ev} {bic} --metrics psnr,lpips --metric-param lpips.backbone_weights={d}/code.pth",
         "code.pth", "backbone_weights", "argparse.Namespace"),
    case("eval-lpips-random", "{ev} {bic} --metrics psnr,lpips --metric-param lpips.backbone_weights={d}/rand.pth",
         "rand.pth", "backbone_weights"),
    case("eval-lpips-wrong-shape",
         "{ev} {bic} --metrics psnr,lpips --metric-param lpips.backbone_weights={d}/alex_shape.pth",
         "alex_shape.pth", "backbone_weights", "shape"),
    case("eval-fid-truncated", "{ev} {bic} --metrics psnr,fid --metric-param fid.weights={d}/trunc.pth",
         "trunc.pth", "'weights'"),
    case("eval-fid-wrong-shape", "{ev} {bic} --metrics psnr,fid --metric-param fid.weights={d}/inception_shape.pth",
         "inception_shape.pth", "'weights'", "shape"),
    case("eval-fid-wrong-keys", "{ev} {bic} --metrics psnr,fid --metric-param fid.weights={d}/wrongkeys.pth",
         "wrongkeys.pth", "missing key"),
    # -- upscale: loading only
    case("upscale-empty-pth", up("empty.pth", "--model core:tiny"), "empty.pth"),
    case("upscale-random-pth", up("rand.pth"), "rand.pth"),
    case("upscale-list-pth", up("list.pth"), "list.pth", "list"),
    case("upscale-tensor-pth", up("tensor.pth"), "tensor.pth", "Tensor"),
    case("upscale-code-pickle", up("code.pth"), "code.pth", "argparse.Namespace"),
    case("upscale-trunc-pth", up("trunc.pth"), "trunc.pth"),
    case("upscale-empty-dict", up("emptydict.pth"), "emptydict.pth", "empty dict"),
    case("upscale-bad-params-metadata", up("badmeta.safetensors"), "badmeta.safetensors", "params"),
    case("upscale-wrong-keys", up("wrongkeys.pth", "--model core:tiny"), "wrongkeys.pth", "core:tiny", "missing"),
    case("upscale-trunc-safetensors", up("trunc.safetensors"), "not a valid safetensors file", "trunc.safetensors"),
    case("upscale-random-safetensors", up("rand.safetensors"), "not a valid safetensors file", "rand.safetensors"),
    case("upscale-empty-safetensors", up("empty.safetensors"), "not a valid safetensors file", "empty.safetensors"),
    case("upscale-nan-pth", up("nan.pth", "--model core:tiny"), "nan.pth", "body.0.weight"),
    case("upscale-inf-pth", up("inf.pth", "--model core:tiny"), "inf.pth", "body.2.bias"),
    case("upscale-device-tpu9", up("good.safetensors", "--device tpu9"), "--device", "tpu9"),
    case("upscale-device-cuda7", up("good.safetensors", "--device cuda:7"), "--device", "cuda:7"),
    case("upscale-glean-random", up("good.pth", GLEAN + "rand.pth"), "GLEAN stylegan2_weights", "rand.pth"),
    case("upscale-glean-code-pickle", up("good.pth", GLEAN + "code.pth"), "GLEAN stylegan2_weights", "code.pth"),
    case("upscale-glean-list", up("good.pth", GLEAN + "list.pth"), "GLEAN stylegan2_weights", "list.pth"),
    case("upscale-glean-wrong-keys", up("good.pth", GLEAN + "wrongkeys.pth"), "GLEAN stylegan2_weights",
         "wrongkeys.pth"),
    # -- export
    case("export-trunc-safetensors", "export {d}/trunc.safetensors --format safetensors -o {d}/x.safetensors",
         "not a valid safetensors file", "trunc.safetensors"),
    case("export-nan", "export {d}/nan.pth --format onnx -o {d}/x.onnx --model core:tiny", "nan.pth", "NaN"),
    case("export-o-unwritable", "export {d}/good.safetensors --format safetensors -o {d}/afile/x.safetensors",
         "-o", "afile/x.safetensors"),
    case("export-onnx-o-unwritable", "export {d}/good.safetensors --format onnx -o {d}/afile/x.onnx",
         "-o", "afile/x.onnx"),
    case("export-check-image-corrupt", "export {d}/good.safetensors --format onnx -o {d}/x.onnx "
         "--check-image {d}/corrupt/a.png", "corrupt/a.png"),
    case("export-onto-its-input", "export {d}/good.safetensors --format safetensors", "good.safetensors", "input"),
    # -- config show
    case("config-unknown-recipe", "config show -r srcnn:nosuch", "recipe", "srcnn:nosuch"),
    case("config-bad-set-value", "config show -r srcnn:vdsr-x2 -s stages.0.steps=abc", "stages.0.steps"),
    case("config-unknown-key", "config show -r srcnn:vdsr-x2 -s foo.bar=1", "foo"),
    case("config-set-form", "config show -r srcnn:vdsr-x2 -s noequals", "--set", "noequals"),
    case("config-bad-yaml", "config show -c {d}/bad.yaml", "bad.yaml", "YAML"),
    case("config-missing-file", "config show -c {d}/missing.yaml", "missing.yaml"),
    # -- data prepare (owned elsewhere: only a case that already passed)
    case("data-prepare-missing-input", "data prepare -i {d}/nosuchdir -o {d}/p.h5 -W 42 -H 42 --stride 42 -uf 2",
         "nosuchdir"),
]

# Run as real processes: no warning, log record or OpenCV message may reach stderr beside the error.
SUBPROCESS = {"eval-corrupt-png", "eval-lpips-code-pickle", "upscale-nan-pth", "upscale-glean-list",
              "export-trunc-safetensors"}

# What these cases did before this work (run against commit 30be681), for the record.
TRACEBACK, NO_OPTION = "traceback", "no such option (metric weights unreachable from eval)"
BROKEN_BEFORE = {
    "eval-sr-1x1": TRACEBACK, "eval-sr-2x3": TRACEBACK, "eval-sr-5x5-ssim": TRACEBACK, "eval-data-1x1": TRACEBACK,
    "eval-data-2x3": TRACEBACK, "eval-data-5x5": TRACEBACK,
    "eval-metric-param-typo": NO_OPTION, "eval-metric-param-form": NO_OPTION, "eval-metric-param-not-chosen": NO_OPTION,
    "eval-hr-dir-file": "misleading: 'no SR image in ok for 1 HR image(s): afile'",
    "eval-corrupt-png": "two lines: OpenCV's '[ WARN:0@0.06] ... PNG input buffer is incomplete' first",
    "eval-json-unwritable": TRACEBACK, "eval-csv-unwritable": TRACEBACK,
    "eval-json-is-folder": "click usage error, three lines", "eval-device-tpu9": TRACEBACK,
    "eval-device-cuda7": TRACEBACK, "eval-c-trunc-safetensors": TRACEBACK,
    "eval-c-nan": "exit 0, PSNR of a black image", "eval-c-empty-pth": TRACEBACK + " (IndexError in the message)",
    "eval-lpips-code-pickle": NO_OPTION, "eval-lpips-random": NO_OPTION, "eval-lpips-wrong-shape": NO_OPTION,
    "eval-fid-truncated": NO_OPTION, "eval-fid-wrong-shape": NO_OPTION, "eval-fid-wrong-keys": NO_OPTION,
    "upscale-empty-pth": TRACEBACK + " (IndexError in the message)",
    "upscale-random-pth": "one line of torch's advice, 400+ characters", "upscale-trunc-pth": "torch's advice",
    "upscale-code-pickle": "torch's advice, not the class", "upscale-list-pth": "did not name the file",
    "upscale-tensor-pth": "did not name the file", "upscale-wrong-keys": "every key of torch's message",
    "upscale-trunc-safetensors": TRACEBACK, "upscale-random-safetensors": TRACEBACK,
    "upscale-empty-safetensors": TRACEBACK, "upscale-nan-pth": "exit 0, black image written",
    "upscale-inf-pth": "exit 0, black image written", "upscale-device-tpu9": TRACEBACK,
    "upscale-glean-random": TRACEBACK, "upscale-glean-code-pickle": TRACEBACK, "upscale-glean-list": TRACEBACK,
    "export-trunc-safetensors": TRACEBACK, "export-nan": "exit 0, NaN model exported",
    "export-o-unwritable": TRACEBACK, "export-check-image-corrupt": "x.onnx written, then the error",
    "eval-c-bad-meta-json": TRACEBACK, "upscale-bad-params-metadata": TRACEBACK,
    "upscale-empty-dict": "'no state dict found; top-level keys: ' (empty), file not named",
    "export-onto-its-input": "exit 0, the input file replaced",
    "config-bad-set-value": "two lines", "config-unknown-key": "two lines", "config-set-form": "two lines",
    "config-bad-yaml": "five lines",
}


def _tree(d: Path) -> set[str]:
    return {str(p.relative_to(d)) for p in d.rglob("*")}


def _run(argv: list[str], in_process: bool) -> tuple[int, str, str]:
    if in_process:
        res = CliRunner().invoke(main, argv)
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            raise res.exception
        return res.exit_code, res.stdout, res.stderr
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "srcore", *argv], capture_output=True, text=True, env=env,
                          timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize(("argv", "mentions"), CASES)
def test_bad_input_is_one_error_line(bad: Path, argv: list[str], mentions: list[str],
                                     request: pytest.FixtureRequest) -> None:
    case = request.node.callspec.id
    args = [a.replace("{d}", str(bad)) for a in argv]
    before = _tree(bad)
    code, _, err = _run(args, in_process=case not in SUBPROCESS)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in mentions:
        assert word in lines[0], (word, lines[0])
    assert _tree(bad) == before, f"files left behind: {_tree(bad) ^ before}"


def test_table_size_and_record() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) >= 40
    assert set(BROKEN_BEFORE) <= set(ids) and SUBPROCESS <= set(ids)


def test_named_model_gets_the_plugins_key_conversion(bad: Path) -> None:
    """The released yjn870 FSRCNN x3 loads with --model srcnn:fsrcnn -p scale=3 (was a key mismatch)."""
    weights = shared_data_dir() / "weights" / "fsrcnn_x3_yjn870.pth"
    if not weights.is_file():
        pytest.skip(f"released weights not found: {weights}")
    out = bad.parent / "fsrcnn_out"
    res = CliRunner().invoke(main, ["upscale", str(weights), str(bad / "ok"), "-o", str(out),
                                    "--model", "srcnn:fsrcnn", "-p", "scale=3", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert (out / "a.png").is_file()
    assert "srcnn:fsrcnn" in res.stderr


def test_float_hdf5_patches_are_refused_before_training(tmp_path: Path) -> None:
    import h5py

    from srcore.data.h5 import H5Patches

    hr = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    for name, declared in (("plain.h5", None), ("declared.h5", 1.0)):
        with h5py.File(tmp_path / name, "w") as f:
            for key, arr in (("hr", hr), ("lr", hr[:, ::2, ::2])):
                f.create_dataset(key, data=arr)
                if declared is not None:
                    f[key].attrs["max_value"] = declared
    with pytest.raises(Exception, match=r"plain\.h5: dataset 'lr' holds float32 patches") as info:
        H5Patches(tmp_path / "plain.h5")
    assert "\n" not in str(info.value)
    _, hr_patch = H5Patches(tmp_path / "declared.h5")[0]
    assert torch.allclose(hr_patch, torch.from_numpy(hr[0]).permute(2, 0, 1))


def test_failed_write_leaves_neither_output_nor_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk in the middle of a write: one-line error, the old file kept, no temp file."""
    import errno

    from srcore.atomic import write_atomic
    from srcore.errors import SrcoreError

    target = tmp_path / "r.json"
    target.write_text("old")

    def full(self: Path, data: bytes) -> int:
        self.write_text("partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", full)
    with pytest.raises(SrcoreError, match=r"--json .*r\.json: cannot write: No space left"):
        write_atomic(target, "{}", "--json")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"] and target.read_text() == "old"


@pytest.mark.parametrize(("name", "words"), [
    ("code.pth", ["argparse.Namespace"]), ("rand.pth", ["not a PyTorch weights file"]),
    ("trunc.pth", ["truncated"]), ("list.pth", ["list"]), ("good.pth", ["features"]),
    ("vgg_shape.pth", ["shape", "0.weight"]),
])
def test_bad_vgg19_weights_are_one_line(bad: Path, name: str, words: list[str]) -> None:
    """The perceptual loss's VGG19 file (loss option ``weights``): same one-line errors."""
    from srcore.errors import SrcoreError
    from srcore.nn.vgg import VGGFeatureExtractor

    with pytest.raises(SrcoreError) as info:
        VGGFeatureExtractor(("conv1_2",), weights=str(bad / name))
    message = str(info.value)
    assert "\n" not in message and name in message and "loss option 'weights'" in message
    for word in words:
        assert word in message, message
