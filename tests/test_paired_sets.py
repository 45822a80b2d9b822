"""Test sets with their own LR: pairing by name across the conventions in use, in validation."""

from __future__ import annotations

import pytest
import torch

from srcore.config import validate_run_config
from srcore.data.datasets import make_eval_dataset, pair_key
from srcore.data.io import write_image
from srcore.engine.validate import val_labels


@pytest.mark.parametrize(("stem", "key", "role"), [
    ("baby", "baby", None), ("babyx4", "baby", None), ("baby_x4", "baby", None),
    ("baby_HR", "baby", "hr"), ("baby_LR", "baby", "lr"),
    ("img_001_SRF_4_HR", "img_001", "hr"), ("img_001_SRF_4_LR", "img_001", "lr"),
    ("x4", "x4", None),  # a name that is only the suffix stays itself
])
def test_pair_key(stem, key, role):
    assert pair_key(stem, 4) == (key, role)


def _write(folder, names, size):
    folder.mkdir(exist_ok=True)
    for i, n in enumerate(names):
        write_image(folder / f"{n}.png", torch.full((3, size, size), (i + 1) / 10))


def test_selfexsr_layout_hr_and_lr_in_one_folder(tmp_path):
    d = tmp_path / "image_SRF_4"
    _write(d, ["img_001_SRF_4_HR", "img_002_SRF_4_HR"], 16)
    _write(d, ["img_001_SRF_4_LR", "img_002_SRF_4_LR"], 4)
    ds = make_eval_dataset({"hr": str(d), "lr": str(d)}, scale=4, root=None)
    assert [f.name for f in ds.hr_files] == ["img_001_SRF_4_HR.png", "img_002_SRF_4_HR.png"]
    assert [f.name for f in ds.lr_files] == ["img_001_SRF_4_LR.png", "img_002_SRF_4_LR.png"]
    item = ds[1]
    assert item["lr"].shape == (3, 4, 4) and item["hr"].shape == (3, 16, 16)


def test_seed_collection_test_dirs_with_x_suffix(tmp_path):
    _write(tmp_path / "test_HR", ["a", "b"], 12)
    _write(tmp_path / "test_LR", ["ax3", "bx3"], 4)
    ds = make_eval_dataset({"hr": str(tmp_path / "test_HR"), "lr": str(tmp_path / "test_LR")}, scale=3, root=None)
    assert [f.name for f in ds.lr_files] == ["ax3.png", "bx3.png"]
    with pytest.raises(Exception, match=r"no LR image in .* for 2 HR image\(s\): a.png, b.png .*a_SRF_4_HR"):
        make_eval_dataset({"hr": str(tmp_path / "test_HR"), "lr": str(tmp_path / "test_LR")}, scale=2, root=None)


def test_paired_val_set_in_a_run_config(srcore_manager, tmp_path):
    _write(tmp_path / "hr", ["p_HR"], 16)
    _write(tmp_path / "lr", ["p_LR"], 8)
    cfg = validate_run_config({"model": {"id": "core:tiny", "params": {"scale": 2}},
                               "val": {"sets": ["set5", {"hr": str(tmp_path / "hr"), "lr": str(tmp_path / "lr"),
                                                         "name": "mine"}]}}, srcore_manager.registries)
    from srcore.engine.loop import _eval_sets

    sets = _eval_sets(cfg.model_copy(update={"val": cfg.val.model_copy(update={"sets": cfg.val.sets[1:]})}), 2)
    assert list(sets) == ["mine"] and sets["mine"][0]["lr"].shape == (3, 8, 8)
    assert val_labels(sets, [("psnr", None)], [None]) == ["mine/psnr"]


def _lr_pairs(tmp_path, scale):
    """HR crops of two photos as a_HR.png and their MATLAB-bicubic LR as a_LR.png (8-bit, as stored)."""
    from skimage import data as skd

    from srcore.data.resize import imresize

    (tmp_path / "HR").mkdir()
    (tmp_path / "LR").mkdir()
    for name, img in (("astro", skd.astronaut()), ("coffee", skd.coffee())):
        hr = torch.from_numpy(img[:96, :96].copy()).permute(2, 0, 1).float() / 255
        write_image(tmp_path / "HR" / f"{name}_HR.png", hr)
        write_image(tmp_path / "LR" / f"{name}_LR.png", imresize(hr[None].double(), scale=1 / scale)[0].clamp(0, 1))


def test_eval_with_the_sets_own_lr_equals_the_same_lr_made_on_the_fly(tmp_path):
    from click.testing import CliRunner

    from srcore.cli import main

    _lr_pairs(tmp_path, 2)
    common = ["--model", "bicubic", "--scale", "2", "--json"]
    own = CliRunner().invoke(main, ["eval", "--hr-dir", str(tmp_path / "HR"), "--lr-dir", str(tmp_path / "LR"),
                                    *common, str(tmp_path / "own.json")])
    made = CliRunner().invoke(main, ["eval", "--data", str(tmp_path / "HR"), *common, str(tmp_path / "made.json")])
    assert own.exit_code == 0 and made.exit_code == 0, own.output + made.output
    import json

    a, b = (json.loads((tmp_path / f).read_text()) for f in ("own.json", "made.json"))
    ra, rb = a["results"][0], b["results"][0]
    assert ra["metrics"] == rb["metrics"] and ra["n_images"] == 2
    assert a["protocol"]["lr"] == f"the set's own LR ({tmp_path / 'LR'})"
    bad = CliRunner().invoke(main, ["eval", "--lr-dir", str(tmp_path / "LR"), "--model", "bicubic", "--scale", "2"])
    assert bad.exit_code == 2 and "--lr-dir goes with --hr-dir" in bad.output


def test_eval_model_params_and_several_data_roots(tmp_path):
    from click.testing import CliRunner

    from srcore.builtin.models import TinySR
    from srcore.cli import main

    torch.save(TinySR(2, 6).state_dict(), tmp_path / "tiny.pth")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    (two / "Mine").mkdir(parents=True)
    _write(two / "Mine" / "HR", ["a", "b"], 16)
    args = ["eval", "-c", str(tmp_path / "tiny.pth"), "--model", "core:tiny", "-p", "channels=6", "--scale", "2",
            "--data", "mine", "--data-root", str(one), "--data-root", str(two), "--plugin", "core"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "core:tiny" in res.output and "mine" in res.output.lower()
    res = CliRunner().invoke(main, [a for a in args if a not in ("-p", "channels=6")])  # default channels: 8
    assert res.exit_code == 2 and "does not fit model core:tiny" in res.output
