"""Run configuration: merging, typed --set overrides, one validation pass listing every problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srcore.config import (
    RunConfig,
    apply_overrides,
    deep_merge,
    read_config_file,
    resolve_run_config,
    run_config_schema,
    validate_run_config,
)
from srcore.errors import ConfigError
from srcore.plugins import PluginManager


@pytest.fixture(scope="module")
def registries():
    return PluginManager().load(only=["core"]).registries


BASE = {"model": {"id": "core:tiny", "params": {"scale": 2}}}


def test_deep_merge_replaces_lists_and_merges_dicts() -> None:
    a = {"train": {"seed": 1, "amp": "off"}, "stages": [{"steps": 5}]}
    b = {"train": {"seed": 2}, "stages": [{"steps": 7}, {"steps": 9}]}
    assert deep_merge(a, b) == {"train": {"seed": 2, "amp": "off"}, "stages": [{"steps": 7}, {"steps": 9}]}
    assert a["train"]["seed"] == 1  # inputs untouched


def test_overrides_are_typed_by_field() -> None:
    data = apply_overrides(
        {**BASE, "stages": [{"steps": 5}]},
        [
            "stages.0.steps=12",
            "stages.0.optim.lr=2e-4",
            "stages.0.schedule.milestones=[10, 20]",
            "train.channels_last=true",
            "name=1234",  # a string field keeps the text, not the int
            "model.params.scale=4",
            "val.sets=[set5, set14]",
        ],
    )
    cfg = RunConfig.model_validate(data)
    assert cfg.stages[0].steps == 12 and cfg.stages[0].optim.lr == 2e-4
    assert cfg.stages[0].schedule.milestones == [10, 20]
    assert cfg.train.channels_last is True
    assert cfg.name == "1234"
    assert cfg.model.params == {"scale": 4}
    assert cfg.val.sets == ["set5", "set14"]


def test_override_errors() -> None:
    with pytest.raises(ConfigError, match="expected section.key=value"):
        apply_overrides(BASE, ["train.seed"])
    with pytest.raises(ConfigError, match="not an index of a list of 1"):
        apply_overrides({**BASE, "stages": [{}]}, ["stages.3.steps=1"])


def test_every_problem_is_reported_with_its_path(registries) -> None:
    data = {
        "model": {"id": "core:nosuchmodel"},
        "stages": [{"steps": 0, "losses": [{"id": "core:l2"}, {"id": "core:l1", "params": {"reduce": "x"}}]}],
        "train": {"amp": "fp8"},
    }
    with pytest.raises(ConfigError) as err:
        validate_run_config(data, registries)
    problems = err.value.problems
    # structure and types of the sections...
    assert "stages.0.steps: Input should be greater than or equal to 1" in problems
    assert "train.amp: Input should be 'off', 'bf16' or 'fp16'" in problems
    # ...and every component id and its parameters, in the same pass
    assert any(p.startswith("model.id: unknown model 'core:nosuchmodel'") for p in problems)
    assert any(p.startswith("stages.0.losses.0.id: unknown loss 'core:l2'") and "core:l1" in p for p in problems)
    assert any(p.startswith("stages.0.losses.1.params.reduce: Extra inputs are not permitted") for p in problems)


def test_read_config_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_config_file(bad)
    lst = tmp_path / "list.json"
    lst.write_text(json.dumps([1, 2]))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        read_config_file(lst)
    from srcore.errors import SrcoreError

    with pytest.raises(SrcoreError, match="cannot read config file"):
        read_config_file(tmp_path / "missing.yaml")


def test_resolve_needs_a_model(registries) -> None:
    with pytest.raises(ConfigError, match="model: required"):
        resolve_run_config(registries)


def test_schema_describes_sections() -> None:
    schema = run_config_schema()
    assert {"model", "stages", "data", "train", "val"} <= set(schema["properties"])
    assert schema["required"] == ["model"]


def test_overrides_into_sections_the_data_lacks_start_from_defaults() -> None:
    data = apply_overrides(BASE, ["stages.0.steps=7", "stages.0.optim.lr=1e-3", "train.seed=5"])
    cfg = RunConfig.model_validate(data)
    assert len(cfg.stages) == 1 and cfg.stages[0].steps == 7 and cfg.stages[0].optim.lr == 1e-3
    assert cfg.stages[0].losses[0].id == "core:l1"  # the default stage's other fields stay
    assert cfg.train.seed == 5 and cfg.train.device == "auto"
