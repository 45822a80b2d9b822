"""Core CLI: help everywhere, plugin listing, and readable exit-2 errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from srcore.cli import COMMANDS, main
from srcore.plugins import reset_plugins


@pytest.fixture(autouse=True)
def fresh_plugins() -> Iterator[None]:
    reset_plugins()
    yield
    reset_plugins()


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_top_level_help_lists_every_command() -> None:
    res = invoke("--help")
    assert res.exit_code == 0
    for name in COMMANDS:
        assert name in res.output


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    res = invoke(name, "--help")
    assert res.exit_code == 0, res.output
    assert "Usage:" in res.output


def test_plugins_json_lists_core_and_bundled_plugins() -> None:
    res = invoke("plugins", "--json")
    assert res.exit_code == 0, res.output
    names = {p["name"]: p for p in json.loads(res.output)}
    assert {"core", "srcnn", "fxsr", "gflmser", "fasrgan", "srrescgan"} <= set(names)
    assert names["core"]["components"]["loss"][:3] == ["core:charbonnier", "core:l1", "core:mse"]


def test_unknown_plugin_exits_2() -> None:
    res = invoke("plugins", "--plugin", "gflmsr")
    assert res.exit_code == 2
    assert "no installed plugin named 'gflmsr'" in res.output and "gflmser" in res.output
    assert "Traceback" not in res.output


def test_unknown_component_and_config_typo_exit_2(tmp_path) -> None:
    res = invoke("config", "show", "--plugin", "core", "--set", "model.id=core:nosuch")
    assert res.exit_code == 2
    assert "model.id: unknown model 'core:nosuch'" in res.output
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model: {id: core:nosuch}\ntrian: {seed: 1}\n")
    res = invoke("config", "show", "--plugin", "core", "-c", str(cfg))
    assert res.exit_code == 2
    assert f"invalid configuration in {cfg}" in res.output
    assert "trian: Extra inputs are not permitted" in res.output
    assert "Traceback" not in res.output


def test_config_schema_is_json_schema() -> None:
    res = invoke("config", "schema")
    assert res.exit_code == 0
    schema = json.loads(res.output)
    assert schema["title"] == "RunConfig" and "stages" in schema["properties"]


def test_python_m_srcore_entry_point() -> None:
    res = subprocess.run([sys.executable, "-m", "srcore", "--version"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.startswith("srcore, version")


def test_import_loads_no_plugin_and_no_torch() -> None:
    code = "import sys, srcore, srcore.cli; print('torch' in sys.modules, 'srcore.plugins' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["False", "False"]
