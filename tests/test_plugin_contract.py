"""The plugin contract holds for third parties (issue 16): throwaway distributions, pip-installed.

Six distributions are built in a temp dir and installed with one pip call into a private
``--target`` folder that only these tests put on the path (``PYTHONPATH`` for the ``srcore``
subprocesses, ``sys.path`` in-process), so the shared virtualenv is never changed and tests
running beside these never see the broken plugins. Each case asserts the user's exact message
and exit code: an entry-point name declared by two distributions, a detector that raises, a
detector that refuses, a plugin whose import fails, a recipe typo caught by conformance, and a
run folder whose plugin is not installed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from srcore.plugins import PluginManager, reset_plugins

PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "{version}"
dependencies = []

[project.entry-points.srcore]
{ep} = "{module}.plugin"

[tool.setuptools]
packages = ["{module}"]
"""

RECIPE_PLUGIN = '''from srcore import hookimpl


@hookimpl
def srcore_register_recipes(register):
    register("{recipe}", defaults={{"model": {{"id": "core:tiny"}}}}, description="{dist}")
'''

RAISING = '''from srcore import hookimpl


@hookimpl
def srcore_detect_checkpoint(state_dict):
    head = state_dict["raisenet.head.weight"]  # a KeyError on every other file: the bug to report
    if head.ndim == 4:
        raise ValueError("cannot parse the header")
    return None
'''

REFUSING = '''from srcore import hookimpl
from srcore.registry import CheckpointRefusal


@hookimpl
def srcore_detect_checkpoint(state_dict):
    if "refusenet.v0.weight" in state_dict:
        raise CheckpointRefusal("a RefuseNet v0 release; convert it with refusenet-convert first")
    return None
'''

TYPO = '''from pydantic import Field
from torch import nn

from srcore import hookimpl
from srcore.registry import StrictModel


class TypoConfig(StrictModel):
    scale: int = Field(2, description="Upscaling factor.")
    nf: int = Field(8, ge=1, description="Hidden channels.")


def build(cfg):
    return nn.Sequential(nn.Conv2d(3, 3 * cfg.scale**2, 3, padding=1), nn.PixelShuffle(cfg.scale))


@hookimpl
def srcore_register_models(register):
    register("typonet", build, config=TypoConfig, description="one conv", scales=(2, 3))


@hookimpl
def srcore_register_recipes(register):
    register("typonet-x2", defaults={"model": {"id": "typo:typonet", "params": {"scale": 2, "n_f": 16}},
                                     "stages": [{"name": "l1", "steps": 10, "losses": [{"id": "core:l1"}]}]})
'''

# distribution -> (entry point, version, plugin.py)
DISTS: dict[str, tuple[str, str, str]] = {
    "sr-plugin-clasha": ("clashy", "0.1.0", RECIPE_PLUGIN.format(recipe="a-x2", dist="clasha")),
    "sr-plugin-clashb": ("clashy", "0.2.0", RECIPE_PLUGIN.format(recipe="b-x2", dist="clashb")),
    "sr-plugin-raisedet": ("raisedet", "0.1.0", RAISING),
    "sr-plugin-refusedet": ("refusedet", "0.1.0", REFUSING),
    "sr-plugin-importfail": ("importfail", "0.1.0", "import imdn_cuda_ext  # noqa: F401 - not installed\n"),
    "sr-plugin-typo": ("typo", "0.1.0", TYPO),
}


def write_dist(root: Path, dist: str, ep: str, version: str, plugin_py: str) -> Path:
    module = dist.replace("-", "_")
    (root / dist / module).mkdir(parents=True)
    (root / dist / "pyproject.toml").write_text(PYPROJECT.format(dist=dist, version=version, ep=ep, module=module))
    (root / dist / module / "__init__.py").write_text("")
    (root / dist / module / "plugin.py").write_text(plugin_py)
    return root / dist


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The folder the six throwaway distributions are installed into (one pip call)."""
    root = tmp_path_factory.mktemp("contract")
    dirs = [str(write_dist(root / "src", d, *spec)) for d, spec in DISTS.items()]
    target = root / "site"
    res = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "-q", "--no-deps",
         "--no-build-isolation", "--target", str(target), *dirs],
        capture_output=True, text=True, timeout=300,
    )
    assert res.returncode == 0, res.stderr
    yield target


@pytest.fixture
def on_path(site: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The throwaway distributions visible in this process (entry points and imports)."""
    import importlib

    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    reset_plugins()
    yield site
    reset_plugins()


def srcore(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "srcore", *args], capture_output=True, text=True,
                          timeout=300, env=env, cwd=cwd)


def error_line(res: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import numpy as np
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "lr.png"
    Image.fromarray(np.full((8, 8, 3), 128, np.uint8)).save(path)
    return path


CLASH = ("entry point 'clashy' (group srcore) is declared by 2 distributions, sr-plugin-clasha 0.1.0 and "
         "sr-plugin-clashb 0.2.0: neither is loaded; uninstall all but one")
IMPORT_FAIL = "ModuleNotFoundError: No module named 'imdn_cuda_ext'"


def test_entry_point_clash_fails_both_and_check_exits_2(site: Path) -> None:
    res = srcore(site, "plugins", "--check", "--plugin", "clashy", "--plugin", "importfail")
    assert res.returncode == 2
    assert error_line(res) == ("error: 3 plugin(s) failed to load: clashy (sr-plugin-clasha 0.1.0), "
                               "clashy (sr-plugin-clashb 0.2.0), importfail (sr-plugin-importfail 0.1.0)")
    assert f"clashy  (sr-plugin-clasha 0.1.0)  FAILED\n    error: {CLASH}\n" in res.stdout
    assert f"clashy  (sr-plugin-clashb 0.2.0)  FAILED\n    error: {CLASH}\n" in res.stdout
    assert f"importfail  (sr-plugin-importfail 0.1.0)  FAILED\n    error: {IMPORT_FAIL}\n" in res.stdout
    listing = srcore(site, "plugins", "--json", "--plugin", "clashy")
    assert listing.returncode == 0  # without --check the listing is a listing
    rows = [p for p in json.loads(listing.stdout) if p["name"] == "clashy"]
    assert [(p["distribution"], p["status"], p["error"]) for p in rows] == [
        ("sr-plugin-clasha", "failed", CLASH), ("sr-plugin-clashb", "failed", CLASH)]


def test_components_of_a_failed_plugin_say_why(site: Path) -> None:
    res = srcore(site, "config", "show", "-r", "clashy:a-x2", "--plugin", "clashy")
    assert res.returncode == 2
    assert error_line(res) == f"error: recipe clashy:a-x2 belongs to plugin clashy, which failed to load: {CLASH}"
    res = srcore(site, "config", "show", "-r", "importfail:imdn-x2", "--plugin", "importfail")
    assert res.returncode == 2
    assert error_line(res) == (f"error: recipe importfail:imdn-x2 belongs to plugin importfail, which failed to "
                               f"load: {IMPORT_FAIL}")


def test_failed_plugin_message_for_every_kind(on_path: Path) -> None:
    from srcore.errors import UnknownComponentError
    from srcore.registry import KINDS

    regs = PluginManager().load(only=["importfail"]).registries
    for kind in KINDS:
        with pytest.raises(UnknownComponentError) as err:
            regs[kind].get("importfail:x")
        want = f"{kind} importfail:x belongs to plugin importfail, which failed to load: {IMPORT_FAIL}"
        assert str(err.value) == want
    with pytest.raises(UnknownComponentError, match=r"Failed to load, so not searched: plugin\(s\) importfail"):
        regs.models.get("imdn")


def write_state(path: Path, key: str) -> Path:
    import torch

    torch.save({key: torch.zeros(4, 3, 3, 3)}, path)
    return path


def test_raising_detector_is_named_and_recorded(site: Path, on_path: Path, image: Path, tmp_path: Path) -> None:
    import torch

    ckpt = write_state(tmp_path / "raise.pth", "raisenet.head.weight")
    res = srcore(site, "upscale", str(ckpt), str(image), "-o", str(tmp_path / "out"), "--plugin", "raisedet")
    assert res.returncode == 2
    assert re.fullmatch(
        re.escape(f"error: {ckpt}: the checkpoint detector of plugin 'raisedet' raised ValueError: cannot parse "
                  "the header, and no other installed plugin recognises this state dict (first keys: "
                  "raisenet.head.weight). Closest registered models: ")
        + r"core:\w+ \(\d+% match\), core:\w+ \(\d+% match\)\. "
        + re.escape("Name it with --model ID (and -p KEY=VALUE for its parameters)."),
        error_line(res),
    ), res.stderr
    manager = PluginManager().load(only=["raisedet"])
    assert manager.detect_checkpoint({"raisenet.head.weight": torch.zeros(4, 3, 3, 3)}) is None
    info = {p.name: p for p in manager.info()}["raisedet"]
    assert info.ok and info.detection == "yes"  # its other components would keep working
    assert info.as_dict()["checkpoint_detection"] == {
        "provided": True, "order": "yes", "error": "ValueError: cannot parse the header"}
    listing = srcore(site, "plugins", "--plugin", "raisedet")  # probes each detector with a foreign file
    assert listing.returncode == 0
    assert ("raisedet  (sr-plugin-raisedet 0.1.0)  ok\n"
            "    checkpoints:     detected (srcore_detect_checkpoint)\n"
            "    detection:       FAILED: KeyError: 'raisenet.head.weight'\n") in listing.stdout


def test_refusing_detector_reason_reaches_the_user(site: Path, image: Path, tmp_path: Path) -> None:
    ckpt = write_state(tmp_path / "refuse.pth", "refusenet.v0.weight")
    res = srcore(site, "upscale", str(ckpt), str(image), "-o", str(tmp_path / "out"), "--plugin", "refusedet")
    assert res.returncode == 2
    assert error_line(res) == (f"error: {ckpt}: the checkpoint detector of plugin 'refusedet' refused it: "
                               "a RefuseNet v0 release; convert it with refusenet-convert first")


def test_conformance_catches_a_recipe_typo(on_path: Path) -> None:
    from srcore.testing import check_conformance

    regs = PluginManager().load(only=["typo"]).registries
    assert check_conformance(regs, "typo") == [
        "typo:typonet-x2: model.params.n_f: Extra inputs are not permitted (got 16)"]
    assert check_conformance(regs, "typo", kinds=("model",)) == []  # the model itself conforms


def test_run_folder_names_the_distribution_to_install(site: Path, image: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    ckpt = tmp_path / "imdn_run" / "checkpoints" / "step_0000010"
    ckpt.mkdir(parents=True)
    save_file({"w": torch.zeros(1)}, str(ckpt / "generator.safetensors"),
              metadata={"format": "srcore", "model": "imdn:imdn", "params": "{}"})
    meta = {"format": "srcore-checkpoint/1", "step": 10, "model": "imdn:imdn",
            "plugins": {"imdn": {"distribution": "sr-plugin-imdn", "version": "0.1.0"},
                        "core": {"distribution": "srcore", "version": "0.1.0"}}}
    (ckpt / "meta.json").write_text(json.dumps(meta))
    res = srcore(site, "upscale", str(tmp_path / "imdn_run"), str(image), "-o", str(tmp_path / "out"),
                 "--plugin", "core")
    assert res.returncode == 2
    assert error_line(res) == (f"error: {ckpt}: model imdn:imdn belongs to plugin imdn, which is not installed "
                               "(see `srcore plugins`); this run needs sr-plugin-imdn 0.1.0 (recorded in meta.json): "
                               "pip install it")


def test_training_step_example_of_the_authoring_page_runs(tmp_path: Path) -> None:
    """docs/plugin-authoring.md section 5: the step module, registered as plugin ``tvstep``, conforms
    and its recipe's preflight builds the step and feeds it one batch."""
    import importlib.util

    from srcore.testing import check_conformance

    page = (Path(__file__).resolve().parents[1] / "docs" / "plugin-authoring.md").read_text()
    (block,) = re.findall(r"```python example=step\n(.*?)```", page, re.S)
    (tmp_path / "tvstep_example.py").write_text(block)
    spec = importlib.util.spec_from_file_location("tvstep_example", tmp_path / "tvstep_example.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    manager = PluginManager().load(only=["core"])
    manager.register(module, "tvstep")
    regs = manager.registries
    assert regs.steps.get("tvstep:tv").config_cls is module.TvParams
    assert check_conformance(regs, "tvstep", recipes_preflight=True) == []
    bad = check_conformance(regs, "tvstep", kinds=(), recipes_preflight=True, overrides=["stages.0.step_params.tv=-1"])
    assert bad == ["tvstep:tiny-tv-x2: stages.0.step_params.tv: Input should be greater than or equal to 0 (got -1)"]


def test_plugins_listing_shows_detection_and_training_steps() -> None:
    from click.testing import CliRunner

    from srcore.cli.plugins_cmd import plugins

    res = CliRunner().invoke(plugins, ["--plugin", "core"])
    assert res.exit_code == 0, res.output
    assert "    training steps:  core:adversarial, core:supervised\n" in res.output
    assert "    checkpoints:     detected (srcore_detect_checkpoint)\n" in res.output
    res = CliRunner().invoke(plugins, ["--plugin", "core", "--json", "--check"])
    assert res.exit_code == 0, res.output
    (core,) = [p for p in json.loads(res.output) if p["name"] == "core"]
    assert core["training_steps"] == ["core:adversarial", "core:supervised"]
    assert core["checkpoint_detection"] == {"provided": True, "order": "yes", "error": None}


def test_closest_model_scores_are_percentages_and_ranking_is_silent(tmp_path: Path, capfd) -> None:
    """A state dict of core:tiny itself scores 100 % (was 110 %); a model that prints and warns
    while it is built for the ranking (GLEAN's latent-bank note) stays silent."""
    import logging

    import torch
    from torch import nn

    from srcore import hookimpl
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.errors import CheckpointError

    class Noisy:
        @hookimpl
        def srcore_register_models(self, register):
            def build(cfg):
                print("noisy: building")
                logging.getLogger("noisy").warning("noisy: random initialisation")
                return nn.Conv2d(3, 3, 1)

            register("noisy", build, scales=(1,))

    manager = PluginManager().load(only=["core"])
    manager.register(Noisy(), "noisy")
    torch.save(manager.registries.build("model", "core:tiny").state_dict(), tmp_path / "tiny.pth")
    capfd.readouterr()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "tiny.pth", manager=manager)
    assert "Closest registered models: core:tiny (100% match), " in str(err.value)
    assert all(0 <= int(s) <= 100 for s in re.findall(r"\((\d+)% match\)", str(err.value)))
    assert capfd.readouterr() == ("", "")
