"""``load_checkpoint``: one entry for every weights format; checkpoint folder hygiene."""

from __future__ import annotations

import json

import pytest
import torch

from srcore.engine import checkpoint as C
from srcore.errors import CheckpointError
from srcore.hookspecs import hookimpl
from srcore.registry import CheckpointMatch


@pytest.fixture
def tiny(srcore_manager):
    comp = srcore_manager.registries.models.get("core:tiny")
    torch.manual_seed(1)
    return comp.build({"scale": 3, "channels": 6})


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_canonical_keys_strip_ddp_and_compile_prefixes():
    t = torch.zeros(1)
    got = C.canonical_keys({"module._orig_mod.body.0.weight": t, "_orig_mod.module.x": t, "a._orig_mod.b": t})
    assert set(got) == {"body.0.weight", "x", "a.b"}


def test_unwrap_state_prefers_params_ema_and_finds_nested_state_dicts():
    a, b = {"w": torch.ones(1)}, {"w": torch.zeros(1)}
    assert torch.equal(C.unwrap_state({"params": b, "params_ema": a})["w"], a["w"])
    assert torch.equal(C.unwrap_state({"state_dict": {"module.w": torch.ones(2)}, "epoch": 3})["w"], torch.ones(2))
    with pytest.raises(CheckpointError, match="no state dict found; top-level keys: epoch"):
        C.unwrap_state({"epoch": 3})


@pytest.mark.parametrize("wrap", ["plain", "params", "params_ema", "module"])
def test_pth_files_with_model_named(srcore_manager, tiny, tmp_path, wrap):
    sd = tiny.state_dict()
    obj = {
        "plain": sd,
        "params": {"params": sd},
        "params_ema": {"params_ema": sd, "params": {k: v + 1 for k, v in sd.items()}},
        "module": {f"module.{k}": v for k, v in sd.items()},
    }[wrap]
    torch.save(obj, tmp_path / "w.pth")
    loaded = C.load_checkpoint(tmp_path / "w.pth", model="core:tiny", params={"scale": 3, "channels": 6},
                               manager=srcore_manager)
    assert same_weights(loaded.module, tiny) and loaded.scale == 3 and not loaded.module.training


def test_safetensors_and_run_folders_describe_their_model(srcore_manager, tiny, tmp_path):
    from srcore.export import export_safetensors

    loaded = C.LoadedModel(tiny, srcore_manager.registries.models.get("core:tiny"), tiny_info(srcore_manager),
                           {"scale": 3, "channels": 6})
    path = export_safetensors(loaded, tmp_path / "t.safetensors")
    back = C.load_checkpoint(path, manager=srcore_manager)
    assert back.component.id == "core:tiny" and back.params == {"scale": 3, "channels": 6}
    assert same_weights(back.module, tiny)

    run = tmp_path / "run"
    torch.manual_seed(5)
    other = srcore_manager.registries.models.get("core:tiny").build({"scale": 3, "channels": 6})
    nets = {"generator": tiny, "generator_ema": other}
    for step in (2, 4, 6):
        C.save_run_checkpoint(run, step, nets, {"global_step": step}, {"step": step, "config": {"x": 1}},
                              "core:tiny", {"scale": 3, "channels": 6})
    (run / "checkpoints" / ".tmp_step_0000008_1").mkdir()  # an interrupted write is ignored
    assert [p.name for p in C.list_checkpoints(run)] == ["step_0000002", "step_0000004", "step_0000006"]
    C.prune_checkpoints(run, keep_last=2)
    assert [p.name for p in C.list_checkpoints(run)] == ["step_0000004", "step_0000006"]
    ema_loaded = C.load_checkpoint(run, manager=srcore_manager)
    raw = C.load_checkpoint(run, manager=srcore_manager, prefer_ema=False)
    assert same_weights(ema_loaded.module, other) and same_weights(raw.module, tiny)
    assert ema_loaded.config == {"x": 1} and ema_loaded.source.endswith("step_0000006")
    C.mark_best(run, run / "checkpoints" / "step_0000004")
    assert C.load_checkpoint(run, manager=srcore_manager).source.endswith("best")
    assert C.load_checkpoint(run / "last", manager=srcore_manager).source.endswith("step_0000006")


def tiny_info(manager):
    return manager.registries.models.get("core:tiny").info


class Detector:
    """A plugin that recognises 'released' files with its own key names (``conv_a``/``conv_b``)."""

    @hookimpl
    def srcore_detect_checkpoint(self, state_dict):
        if "conv_a.weight" not in state_dict:
            return None
        channels = state_dict["conv_a.weight"].shape[0]
        rename = {"conv_a": "body.0", "conv_b": "body.2"}
        converted = {rename[k.split(".")[0]] + "." + k.split(".")[1]: v for k, v in state_dict.items()}
        scale = int((state_dict["conv_b.weight"].shape[0] // 3) ** 0.5)
        return CheckpointMatch("core:tiny", {"scale": scale, "channels": channels}, converted, note="by key names")


def test_plain_state_dict_is_recognised_by_a_plugin(srcore_manager, srcore_plugin, tiny, tmp_path):
    srcore_plugin(Detector(), "det")
    released = {k.replace("body.0", "conv_a").replace("body.2", "conv_b"): v for k, v in tiny.state_dict().items()}
    torch.save(released, tmp_path / "released.pth")
    loaded = C.load_checkpoint(tmp_path / "released.pth", manager=srcore_manager)
    assert loaded.component.id == "core:tiny" and loaded.params == {"scale": 3, "channels": 6}
    assert same_weights(loaded.module, tiny) and "detected as core:tiny" in loaded.notes[0]


def test_unrecognised_state_dict_lists_the_closest_models(srcore_manager, tiny, tmp_path):
    sd = {k: v for k, v in tiny.state_dict().items() if k != "body.2.bias"}
    sd["extra.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"Closest registered models: core:tiny \(\d+% match\)"):
        C.load_checkpoint(tmp_path / "odd.pth", manager=srcore_manager)


def test_pickled_objects_are_refused(srcore_manager, tmp_path):
    torch.save({"net": torch.nn.Linear(1, 1)}, tmp_path / "pickled.pth")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        C.load_checkpoint(tmp_path / "pickled.pth", model="core:tiny", manager=srcore_manager)


def test_wrong_architecture_names_model_and_params(srcore_manager, tiny, tmp_path):
    torch.save(tiny.state_dict(), tmp_path / "w.pth")
    with pytest.raises(CheckpointError, match=r"does not fit model core:tiny with params \{'scale': 2\}"):
        C.load_checkpoint(tmp_path / "w.pth", model="core:tiny", params={"scale": 2}, manager=srcore_manager)


def test_meta_json_is_written_last_and_whole(tmp_path, tiny):
    path = C.save_run_checkpoint(tmp_path, 3, {"generator": tiny}, {"a": 1}, {"step": 3}, "core:tiny", {})
    assert json.loads((path / "meta.json").read_text()) == {"step": 3}
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".tmp")]
