"""Fine-tuning from a file: ``model.pretrained`` / ``--pretrained`` and ``stages[i].discriminator.pretrained``."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from srcore.builtin.models import TinySR
from srcore.config import validate_run_config
from srcore.engine.checkpoint import list_checkpoints, load_checkpoint, load_safetensors
from srcore.engine.loop import train
from srcore.engine.preflight import PreflightError
from srcore.testing import RandomPairs, TinyDiscriminatorPlugin, tiny_discriminator


def released(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return TinySR(2, 4).state_dict()


def cfg_of(manager, pretrained=None, stages=None):
    model = {"id": "core:tiny", "params": {"channels": 4, "scale": 2}}
    if pretrained is not None:
        model["pretrained"] = pretrained
    data = {"model": model, "data": {"train": {"batch_size": 2, "patch_size": 16}},
            "stages": stages or [{"steps": 1, "optim": {"lr": 1e-12}}], "train": {"save_every": 100}}
    return validate_run_config(data, manager.registries)


def trained(manager, run, cfg) -> dict[str, torch.Tensor]:
    train(cfg, manager, run_dir=run, dataset=RandomPairs(), device="cpu", progress=False)
    return load_checkpoint(run, manager=manager).module.state_dict()


def close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


def test_a_basicsr_style_wrapped_release_starts_the_generator(srcore_manager, tmp_path, capsys):
    ema, plain = released(1), released(2)
    torch.save({"params": plain, "params_ema": ema}, tmp_path / "release.pth")
    got = trained(srcore_manager, tmp_path / "a", cfg_of(srcore_manager, {"path": str(tmp_path / "release.pth")}))
    assert close(got, ema) and not close(got, plain)  # params_ema first, as BasicSR's users expect
    assert "note: model.pretrained: 4 of 4 tensors from" in capsys.readouterr().err
    pre = {"path": str(tmp_path / "release.pth"), "param_key": "params"}
    assert close(trained(srcore_manager, tmp_path / "b", cfg_of(srcore_manager, pre)), plain)
    assert not close(trained(srcore_manager, tmp_path / "c", cfg_of(srcore_manager)), ema)  # control


def test_a_run_folder_is_a_pretrained_source_and_resume_does_not_reread_it(srcore_manager, tmp_path):
    first = trained(srcore_manager, tmp_path / "first", cfg_of(srcore_manager, stages=[{"steps": 3}]))
    cfg = cfg_of(srcore_manager, {"path": str(tmp_path / "first")})
    assert close(trained(srcore_manager, tmp_path / "second", cfg), first)
    import shutil

    shutil.rmtree(tmp_path / "first")  # gone: a resume reads the run's own checkpoint only
    longer = cfg.model_copy(update={"stages": [cfg.stages[0].model_copy(update={"steps": 2})]})
    train(longer, srcore_manager, run_dir=tmp_path / "second", resume=True, dataset=RandomPairs(), device="cpu",
          progress=False)
    assert list_checkpoints(tmp_path / "second")[-1].name == "step_0000002"


def test_strict_refuses_before_step_1_and_non_strict_lists_what_it_left(srcore_manager, tmp_path, capsys):
    sd = released(3)
    sd["extra.weight"] = torch.zeros(2)
    del sd["body.0.bias"]
    torch.save(sd, tmp_path / "odd.pth")
    with pytest.raises(PreflightError, match=r"model.pretrained: .*odd.pth does not fit core:tiny: 1 missing "
                                             r"\(e.g. body.0.bias\); 1 unexpected \(e.g. extra.weight\); set "
                                             r"model.pretrained.strict=false"):
        train(cfg_of(srcore_manager, {"path": str(tmp_path / "odd.pth")}), srcore_manager, run_dir=tmp_path / "x",
              dataset=RandomPairs(), device="cpu", progress=False)
    assert not (tmp_path / "x").exists()
    got = trained(srcore_manager, tmp_path / "y", cfg_of(srcore_manager, {"path": str(tmp_path / "odd.pth"),
                                                                          "strict": False}))
    assert torch.allclose(got["body.0.weight"], sd["body.0.weight"], atol=1e-6)
    assert "3 of 4 tensors from" in capsys.readouterr().err




def test_the_gan_stage_discriminator_starts_from_its_file(srcore_manager, srcore_plugin, tmp_path):
    srcore_plugin(TinyDiscriminatorPlugin(), "ftd")
    torch.manual_seed(7)
    d_weights = tiny_discriminator().state_dict()
    torch.save(d_weights, tmp_path / "d.pth")
    stages = [{"name": "psnr", "steps": 1},
              {"name": "gan", "steps": 1, "step": "adversarial", "optim_d": {"lr": 1e-12},
               "discriminator": {"id": "ftd:tinyd", "pretrained": {"path": str(tmp_path / "d.pth")}}}]
    train(cfg_of(srcore_manager, stages=stages), srcore_manager, run_dir=tmp_path / "g", dataset=RandomPairs(),
          device="cpu", progress=False)
    saved, _ = load_safetensors(list_checkpoints(tmp_path / "g")[-1] / "discriminator.safetensors")
    assert close(saved, d_weights)


def test_train_pretrained_option(srcore_manager, tmp_path):
    import yaml

    from srcore.cli import main

    torch.save(released(4), tmp_path / "w.pth")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg_of(srcore_manager).model_dump(mode="json")))
    res = CliRunner().invoke(main, ["train", "-c", str(tmp_path / "c.yaml"), "--pretrained", str(tmp_path / "w.pth"),
                                    "--run-dir", str(tmp_path / "r"), "--plugin", "core", "--no-progress",
                                    "-s", "data.train.hr=builtin:skimage", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert close(load_checkpoint(tmp_path / "r", manager=srcore_manager).module.state_dict(), released(4))
