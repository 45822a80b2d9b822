"""Registries: namespaced ids, bare names, typed errors with close matches, config validation."""

from __future__ import annotations

import pytest
from pydantic import Field

from srcore.errors import (
    AmbiguousComponentError,
    ComponentError,
    ConfigError,
    DuplicateComponentError,
    UnknownComponentError,
)
from srcore.registry import Component, ModelInfo, Registrar, Registry, StrictModel


class WidthConfig(StrictModel):
    width: int = Field(8, ge=1, description="Hidden width.")


def comp(name: str, plugin: str, kind: str = "loss") -> Component:
    return Component(kind, name, plugin, lambda c: c, WidthConfig, "test")  # type: ignore[arg-type]


def test_namespaced_and_bare_lookup() -> None:
    reg = Registry("loss")
    reg.add(comp("l1", "core"))
    reg.add(comp("vgg", "fxsr"))
    assert reg.get("core:l1").plugin == "core"
    assert reg.get("vgg").id == "fxsr:vgg"
    assert "l1" in reg and "nope" not in reg
    assert reg.ids() == ["core:l1", "fxsr:vgg"]


def test_duplicate_names_both_plugins() -> None:
    reg = Registry("loss")
    reg.add(comp("l1", "core"))
    with pytest.raises(DuplicateComponentError) as err:
        reg.add(comp("l1", "core"))
    assert "'core:l1'" in str(err.value) and "plugin 'core'" in str(err.value)


def test_ambiguous_bare_name_lists_candidates() -> None:
    reg = Registry("loss")
    reg.add(comp("vgg", "fxsr"))
    reg.add(comp("vgg", "fasrgan"))
    with pytest.raises(AmbiguousComponentError) as err:
        reg.get("vgg")
    assert err.value.candidates == ["fasrgan:vgg", "fxsr:vgg"]


def test_unknown_suggests_close_matches() -> None:
    reg = Registry("model")
    reg.add(comp("fsrcnn", "srcnn", "model"))
    reg.add(comp("srcnn", "srcnn", "model"))
    with pytest.raises(UnknownComponentError) as err:
        reg.get("fsrcn")
    assert "fsrcnn" in err.value.close[0]
    assert "Did you mean" in str(err.value)
    with pytest.raises(UnknownComponentError) as err2:
        reg.get("qqqqqqqq")
    assert "Known models: srcnn:fsrcnn, srcnn:srcnn" in str(err2.value)


def test_config_validation_names_field_and_forbids_extra() -> None:
    c = comp("l1", "core")
    assert c.build({"width": 3}).width == 3
    with pytest.raises(ConfigError) as err:
        c.build({"widht": 3, "width": 0})
    problems = " | ".join(err.value.problems)
    assert "widht: Extra inputs are not permitted" in problems
    assert "width: Input should be greater than or equal to 1" in problems


def test_registrar_validates_model_description() -> None:
    got: list[Component] = []
    register = Registrar("model", "myplug", got.append)
    register("net", lambda c: c, scales=(2, 4), in_channels=1)
    assert got[0].info == ModelInfo(scales=(2, 4), in_channels=1)
    assert got[0].info.color == "y"
    with pytest.raises(ComponentError, match="bad model description"):
        register("bad", lambda c: c, scales=(2,), colour="rgb")
    with pytest.raises(ComponentError, match="must not contain ':'"):
        register("a:b", lambda c: c, scales=(2,))


def test_description_defaults_to_builder_docstring() -> None:
    got: list[Component] = []

    def build(cfg: object) -> object:
        """First line wins.

        Not this one."""
        return cfg

    Registrar("loss", "p", got.append)("x", build)
    assert got[0].description == "First line wins."
