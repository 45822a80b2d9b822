"""Plugin manager: selective loading, env controls, failure isolation, check_pending, detection."""

from __future__ import annotations

import pytest

from srcore import hookimpl
from srcore.errors import PluginError
from srcore.plugins import PluginManager, available_entry_points
from srcore.registry import CheckpointMatch

BUNDLED = {"srcnn", "fxsr", "gflmser", "fasrgan", "srrescgan"}


class GoodPlugin:
    @hookimpl
    def srcore_register_losses(self, register):
        register("double_l1", lambda c: "built", description="twice L1")

    @hookimpl
    def srcore_detect_checkpoint(self, state_dict):
        if "good.weight" in state_dict:
            return CheckpointMatch(model="good:net", params={}, state_dict=dict(state_dict))
        return None


class RaisingPlugin:
    @hookimpl
    def srcore_register_models(self, register):
        register("half", lambda c: c, scales=(2,))
        raise RuntimeError("boom inside a hook")

    @hookimpl
    def srcore_detect_checkpoint(self, state_dict):
        raise ValueError("detector crashed")


class MisspeltPlugin:
    @hookimpl
    def srcore_register_modles(self, register):  # misspelt on purpose
        register("x", lambda c: c, scales=(2,))


def test_bundled_plugins_are_entry_points() -> None:
    assert BUNDLED <= set(available_entry_points())


def test_only_loads_named_plugin_and_core() -> None:
    manager = PluginManager().load(only=["srcnn"])
    assert set(manager.plugins) == {"srcnn", "core"}


def test_unknown_plugin_name_is_a_readable_error() -> None:
    with pytest.raises(PluginError, match=r"no installed plugin named 'srcn'.*Did you mean: srcnn"):
        PluginManager().load(only=["srcn"])


def test_env_controls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRCORE_DISABLE_PLUGIN_AUTOLOAD", "1")
    assert set(PluginManager().load().plugins) == {"core"}
    monkeypatch.delenv("SRCORE_DISABLE_PLUGIN_AUTOLOAD")
    monkeypatch.setenv("SRCORE_LOAD_PLUGINS", "fxsr,gflmser")
    assert set(PluginManager().load().plugins) == {"fxsr", "gflmser", "core"}
    monkeypatch.delenv("SRCORE_LOAD_PLUGINS")
    monkeypatch.setenv("SRCORE_BLOCK_PLUGINS", "fxsr")
    loaded = set(PluginManager().load().plugins)
    assert "fxsr" not in loaded and BUNDLED - {"fxsr"} <= loaded


def test_core_plugin_registers_through_hooks(srcore_manager: PluginManager) -> None:
    regs = srcore_manager.registries
    assert {"core:l1", "core:mse", "core:charbonnier"} <= set(regs.losses.ids())
    assert srcore_manager.plugins["core"].distribution == "srcore"


def test_raising_hook_marks_plugin_failed_and_others_work(srcore_plugin) -> None:
    srcore_plugin(GoodPlugin(), "good")
    regs = srcore_plugin(RaisingPlugin(), "raising")
    assert "good:double_l1" in regs.losses.ids()
    assert "raising:half" not in regs.models.ids()  # partial registrations are rolled back
    from srcore.plugins import load_plugins

    info = {p.name: p for p in load_plugins().info()}
    assert info["raising"].error == "RuntimeError in srcore_register_models: boom inside a hook"
    assert info["good"].ok and info["good"].components == {"loss": ["good:double_l1"]}


def test_misspelt_hook_fails_at_registration(srcore_manager: PluginManager) -> None:
    srcore_manager.register(MisspeltPlugin(), "misspelt")
    info = srcore_manager.plugins["misspelt"]
    assert not info.ok and "srcore_register_modles" in info.error
    assert not srcore_manager.pm.has_plugin("misspelt")


def test_detection_is_first_result_and_skips_crashing_detectors(srcore_plugin) -> None:
    srcore_plugin(GoodPlugin(), "good")
    srcore_plugin(RaisingPlugin(), "raising")
    from srcore.plugins import load_plugins

    manager = load_plugins()
    match = manager.detect_checkpoint({"good.weight": 1})
    assert match is not None and match.model == "good:net"
    assert manager.detect_checkpoint({"other": 1}) is None


def test_same_name_in_two_plugins_is_namespaced(srcore_plugin) -> None:
    class Clash:
        @hookimpl
        def srcore_register_losses(self, register):
            register("double_l1", lambda c: c)

    srcore_plugin(GoodPlugin(), "good")
    regs = srcore_plugin(Clash(), "clash")
    assert "clash:double_l1" in regs.losses.ids()  # namespaced ids do not clash
    assert regs.losses.get("good:double_l1").plugin == "good"


def test_duplicate_registration_fails_the_plugin_with_a_typed_error(srcore_plugin) -> None:
    class Twice:
        @hookimpl
        def srcore_register_losses(self, register):
            register("l", lambda c: c)
            register("l", lambda c: c)

    regs = srcore_plugin(Twice(), "twice")
    from srcore.plugins import load_plugins

    info = {p.name: p for p in load_plugins().info()}
    assert info["twice"].error.startswith("DuplicateComponentError in srcore_register_losses")
    assert "plugin 'twice'" in info["twice"].error
    assert "twice:l" not in regs.losses.ids()
