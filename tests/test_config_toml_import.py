"""TOML run configs, lists merged by position with the recipe's, ``config show --diff``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from srcore.cli import main
from srcore.config import deep_merge, read_config_file, resolve_run_config
from srcore.errors import ConfigError
from srcore.plugins import PluginManager

RECIPE = "srcnn:fsrcnn-x2"


@pytest.fixture(scope="module")
def registries():
    return PluginManager().load(only=["srcnn"]).registries


def test_toml_file_is_read_and_validated_as_yaml_is(registries, tmp_path: Path) -> None:
    toml = tmp_path / "run.toml"
    toml.write_text('name = "t"\n[model]\nid = "core:tiny"\n[model.params]\nscale = 3\n'
                    "[data.train]\nbatch_size = 4\n[[stages]]\nsteps = 7\n[[stages.losses]]\nid = \"core:mse\"\n")
    yml = tmp_path / "run.yaml"
    yml.write_text(yaml.safe_dump(read_config_file(toml)))
    a, b = (resolve_run_config(registries, files=[f]) for f in (toml, yml))
    assert a == b and a.model.params == {"scale": 3} and a.stages[0].losses[0].id == "core:mse"
    toml.write_text("[model]\nid = \"core:tiny\"\n[model.params]\nscale = 9\n[train]\namp = \"fp8\"\n")
    with pytest.raises(ConfigError) as err:
        resolve_run_config(registries, files=[toml])
    assert "model.params.scale" in str(err.value) and "train.amp" in str(err.value)
    toml.write_text("[model\nid = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        read_config_file(toml)


def test_toml_in_a_yaml_named_file_says_so(tmp_path: Path) -> None:
    f = tmp_path / "run.yaml"
    f.write_text('name = "t"\n')
    with pytest.raises(ConfigError, match=r"needs the \.toml suffix"):
        read_config_file(f)


def test_a_file_touching_stages_keeps_the_recipe_stage(registries, tmp_path: Path) -> None:
    recipe = resolve_run_config(registries, RECIPE)
    f = tmp_path / "short.toml"
    f.write_text("[[stages]]\nsteps = 10\n")
    cfg = resolve_run_config(registries, RECIPE, files=[f])
    assert cfg.stages[0].steps == 10
    assert cfg.stages[0].model_copy(update={"steps": recipe.stages[0].steps}) == recipe.stages[0]


def test_list_merge_rules() -> None:
    base = {"stages": [{"steps": 5, "losses": [{"id": "core:l1", "weight": 1.0, "params": {"a": 1}}]},
                       {"steps": 6}], "val": {"sets": ["set5", "set14"]}}
    # by position, the recipe's tail kept, scalar lists replaced
    out = deep_merge(base, {"stages": [{"losses": [{"weight": 2.0}]}], "val": {"sets": ["set14"]}})
    assert out["stages"][0] == {"steps": 5, "losses": [{"id": "core:l1", "weight": 2.0, "params": {"a": 1}}]}
    assert out["stages"][1] == {"steps": 6} and out["val"]["sets"] == ["set14"]
    # another component at a position replaces the item; extra items are added
    out = deep_merge(base, {"stages": [{"losses": [{"id": "core:l2"}, {"id": "core:mse"}]}]})
    assert out["stages"][0]["losses"] == [{"id": "core:l2"}, {"id": "core:mse"}]
    # _replace: the whole list
    out = deep_merge(base, {"stages": [{"steps": 1}]}, replace=["stages"])
    assert out["stages"] == [{"steps": 1}]


def test_replace_key_in_a_file(registries, tmp_path: Path) -> None:
    f = tmp_path / "own.yaml"
    f.write_text(yaml.safe_dump({"_replace": ["stages"], "stages": [{"steps": 3}]}))
    cfg = resolve_run_config(registries, RECIPE, files=[f])
    assert cfg.stages[0].step == "supervised" and cfg.stages[0].steps == 3
    f.write_text(yaml.safe_dump({"_replace": "stages"}))
    with pytest.raises(ConfigError, match="_replace"):
        resolve_run_config(registries, RECIPE, files=[f])


def test_config_show_diff(tmp_path: Path) -> None:
    f = tmp_path / "short.toml"
    f.write_text("[data.train]\nbatch_size = 4\n[[stages]]\nsteps = 10\n")
    args = ["config", "show", "-r", RECIPE, "-c", str(f), "-s", "train.seed=7", "--plugin", "srcnn", "--diff"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert "data.train.batch_size: 64 -> 4" in lines and "train.seed: 0 -> 7" in lines
    assert len(lines) == 3 and any(ln.startswith("stages.0.steps: ") and ln.endswith("-> 10") for ln in lines)
    res = CliRunner().invoke(main, [*args, "--json"])
    assert json.loads(res.output)["train.seed"] == {"from": 0, "to": 7}
    res = CliRunner().invoke(main, ["config", "show", "-r", RECIPE, "--plugin", "srcnn", "--diff"])
    assert "no changes relative to recipe" in res.output
