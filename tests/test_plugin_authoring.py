"""The worked example of docs/plugin-authoring.md, installed for real as a third-party plugin.

The files are extracted from the page, pip-installed into the running environment, discovered
through their entry point by `srcore plugins`, built by id, tested with the page's own test file,
and uninstalled afterwards. A second throwaway distribution whose import raises shows up as failed
while the others keep working.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from srcore.plugins import PluginManager

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugin-authoring.md"
BLOCK = re.compile(r"```\w+ file=(?P<path>\S+)\n(?P<body>.*?)```", re.S)

BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "sr-plugin-brokenexample"
version = "0.0.1"
dependencies = []

[project.entry-points.srcore]
brokenexample = "sr_plugin_brokenexample"

[tool.setuptools]
packages = ["sr_plugin_brokenexample"]
"""


def extract_example(dest: Path) -> list[str]:
    files = []
    for m in BLOCK.finditer(DOC.read_text()):
        target = dest / m["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(m["body"])
        files.append(m["path"])
    return files


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True, text=True, timeout=300,
    )


def srcore(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "srcore", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("thirdparty")
    example = root / "sr-plugin-tinyres"
    assert set(extract_example(example)) == {
        "pyproject.toml", "sr_plugin_tinyres/__init__.py", "sr_plugin_tinyres/plugin.py", "tests/test_tinyres.py"
    }
    broken = root / "sr-plugin-brokenexample"
    (broken / "sr_plugin_brokenexample").mkdir(parents=True)
    (broken / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (broken / "sr_plugin_brokenexample" / "__init__.py").write_text(
        'raise RuntimeError("this plugin is broken on purpose")\n'
    )
    res = pip("install", "--no-build-isolation", "--no-deps", str(example), str(broken))
    assert res.returncode == 0, res.stderr
    try:
        yield example
    finally:
        pip("uninstall", "-y", "sr-plugin-tinyres", "sr-plugin-brokenexample")


def test_cli_discovers_example_and_reports_broken_plugin(installed: Path) -> None:
    res = srcore("plugins", "--json")
    assert res.returncode == 0, res.stderr
    by_name = {p["name"]: p for p in json.loads(res.stdout)}
    tiny = by_name["tinyres"]
    assert tiny["status"] == "ok"
    assert tiny["distribution"] == "sr-plugin-tinyres" and tiny["version"] == "0.1.0"
    assert tiny["components"] == {"model": ["tinyres:tinyres"], "recipe": ["tinyres:tinyres-x2"]}
    bad = by_name["brokenexample"]
    assert bad["status"] == "failed"
    assert "RuntimeError: this plugin is broken on purpose" in bad["error"]
    assert bad["distribution"] == "sr-plugin-brokenexample"
    # the rest keep working: the core and the bundled plugins are all there
    assert by_name["core"]["status"] == "ok"
    for name in ("srcnn", "fxsr", "gflmser", "fasrgan", "srrescgan"):
        assert by_name[name]["status"] == "ok", by_name[name]


def test_example_model_builds_by_id(installed: Path) -> None:
    import torch

    manager = PluginManager().load(only=["tinyres"])
    assert set(manager.plugins) == {"tinyres", "core"}
    model = manager.registries.build("model", "tinyres:tinyres", {"scale": 4})
    assert model(torch.rand(2, 3, 5, 7)).shape == (2, 3, 20, 28)
    recipe = manager.registries.recipes.get("tinyres-x2")
    assert recipe.extra["defaults"]["model"]["id"] == "tinyres:tinyres"


def test_example_own_tests_pass(installed: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(installed / "tests")],
        capture_output=True, text=True, timeout=300, cwd=installed,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 passed" in res.stdout
