"""Named sets under several data roots (``--data-root`` repeated, ``a:b`` in SRCORE_DATA_ROOT or data.root)."""

from __future__ import annotations

import os

import pytest
import torch

from srcore.data.io import write_image
from srcore.data.sets import data_roots, resolve_set
from srcore.errors import SrcoreError


def _set(root, name):
    d = root / name / "HR"
    d.mkdir(parents=True)
    write_image(d / "a.png", torch.rand(3, 8, 8))
    return d


def test_sets_resolve_under_the_first_root_that_has_them(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    set5, bsd = _set(one, "Set5"), _set(two, "BSD100")
    _set(two, "Set5")  # shadowed by the first root
    roots = [one, two]
    assert resolve_set("set5", roots) == set5 and resolve_set("bsd100", roots) == bsd
    assert resolve_set("bsd100", f"{one}{os.pathsep}{two}") == bsd
    assert data_roots(f"{one}{os.pathsep}{two}") == [one, two]
    with pytest.raises(SrcoreError, match=r"no set 'urban100': 'urban100' not found in .*one \(available: Set5\); "
                                          r"'urban100' not found in .*two \(available: BSD100, Set5\)"):
        resolve_set("urban100", roots)


def test_a_missing_path_is_named_as_a_path(tmp_path):
    with pytest.raises(SrcoreError, match=f"^{tmp_path / 'nosuchdir'} does not exist$"):
        resolve_set(str(tmp_path / "nosuchdir"), tmp_path)


def test_data_prepare_takes_several_roots(tmp_path):
    from click.testing import CliRunner

    from srcore.cli import main

    _set(tmp_path / "two", "Mine")
    (tmp_path / "one").mkdir()
    res = CliRunner().invoke(main, ["data", "prepare", "-i", "mine", "--data-root", str(tmp_path / "one"),
                                    "--data-root", str(tmp_path / "two"), "-o", str(tmp_path / "p.h5"),
                                    "-W", "4", "-H", "4", "--stride", "4"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "p.h5").is_file()
