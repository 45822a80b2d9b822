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


# -- srcore config import ------------------------------------------------------------------------
# Option files written here in the shape of the originals: FASRGAN's old-BasicSR JSON
# (train_FASRGAN.json), FxSR's mmsr-style YAML (SROT's train.yml generation) and Real-ESRGAN's
# BasicSR YAML (train_realesrgan_x4plus.yml), shortened to the keys that matter plus a few
# that srcore has no equivalent for.

FASRGAN_JSON = {
    "name": "FASRGAN_x4", "use_tb_logger": True, "model": "fasrgan", "scale": 4, "gpu_ids": [0, 1],
    "datasets": {
        "train": {"name": "DIV2K", "mode": "LRHR", "dataroot_HR": "/data/DIV2K_HR_sub",
                  "dataroot_LR": "/data/DIV2K_LR_sub_x4", "subset_file": None, "use_shuffle": True,
                  "n_workers": 8, "batch_size": 16, "HR_size": 128, "use_flip": True, "use_rot": True},
        "val": {"name": "val_set14", "mode": "LRHR", "dataroot_HR": "/data/Set14/HR",
                "dataroot_LR": "/data/Set14/LR_x4"},
    },
    "path": {"root": "/code", "pretrain_model_G": "../experiments/pretrained_models/RRDB_PSNR_x4.pth"},
    "network_G": {"which_model_G": "RRDB_net", "norm_type": None, "mode": "CNA", "nf": 64, "nb": 23,
                  "in_nc": 3, "out_nc": 3, "gc": 32, "group": 1},
    "network_D": {"which_model_D": "discriminator_vgg_128", "norm_type": "batch", "act_type": "leakyrelu",
                  "mode": "CNA", "nf": 64, "in_nc": 3},
    "train": {"lr_G": 1e-4, "weight_decay_G": 0, "beta1_G": 0.9, "lr_D": 1e-4, "weight_decay_D": 0,
              "beta1_D": 0.9, "lr_scheme": "MultiStepLR", "lr_steps": [50000, 100000, 200000, 300000],
              "lr_gamma": 0.5, "pixel_criterion": "l1", "pixel_weight": 1e-2, "feature_criterion": "l1",
              "feature_weight": 1, "gan_type": "vanilla", "gan_weight": 5e-3, "D_update_ratio": 1,
              "D_init_iters": 0, "gan_mask_weight": 5e-3, "atten_weight": 5e-2, "manual_seed": 0,
              "niter": 5e5, "val_freq": 5e3},
    "logger": {"print_freq": 200, "save_checkpoint_freq": 5e3},
}

FXSR_YAML = """
name: FxSR-PD_4x
use_tb_logger: true
model: srgan
distortion: sr
scale: 4
gpu_ids: [0]
datasets:
  train:
    name: DIV2K
    mode: LQGT
    dataroot_GT: ../datasets/DIV2K/DIV2K_train_HR_sub
    dataroot_LQ: ../datasets/DIV2K/DIV2K_train_LR_bicubic_sub/X4
    use_shuffle: true
    n_workers: 6
    batch_size: 16
    GT_size: 128
    use_flip: true
    use_rot: true
    color: RGB
network_G:
  which_model_G: RRDBNet
  in_nc: 4
  out_nc: 3
  nf: 64
  nb: 23
network_D:
  which_model_D: discriminator_vgg_128
  in_nc: 3
  nf: 64
train:
  lr_G: !!float 1e-4
  weight_decay_G: 0
  beta1_G: 0.9
  beta2_G: 0.99
  lr_D: !!float 1e-4
  weight_decay_D: 0
  beta1_D: 0.9
  beta2_D: 0.99
  lr_scheme: MultiStepLR
  niter: 400000
  warmup_iter: -1
  lr_steps: [50000, 100000, 200000, 300000]
  lr_gamma: 0.5
  pixel_criterion: l1
  pixel_weight: !!float 1e-2
  feature_criterion: l1
  feature_weight: 1
  gan_type: ragan
  gan_weight: !!float 5e-3
  D_update_ratio: 1
  D_init_iters: 0
  manual_seed: 10
  val_freq: !!float 5e3
logger:
  print_freq: 100
  save_checkpoint_freq: !!float 5e3
"""

REALESRGAN_YAML = """
name: train_RealESRGANx4plus_400k
model_type: RealESRGANModel
scale: 4
num_gpu: auto
manual_seed: 0
queue_size: 180
datasets:
  train:
    name: DF2K+OST
    type: RealESRGANDataset
    dataroot_gt: datasets/DF2K
    meta_info: datasets/DF2K/meta_info/meta_info_DF2Kmultiscale+OST_sub.txt
    io_backend: {type: disk}
    blur_kernel_size: 21
    gt_size: 256
    use_hflip: true
    use_rot: false
    num_worker_per_gpu: 5
    batch_size_per_gpu: 12
network_g:
  type: RRDBNet
  num_in_ch: 3
  num_out_ch: 3
  num_feat: 64
  num_block: 23
  num_grow_ch: 32
network_d:
  type: UNetDiscriminatorSN
  num_in_ch: 3
  num_feat: 64
  skip_connection: true
path:
  pretrain_network_g: experiments/pretrained_models/RealESRNet_x4plus.pth
  param_key_g: params_ema
train:
  ema_decay: 0.999
  optim_g: {type: Adam, lr: !!float 1e-4, weight_decay: 0, betas: [0.9, 0.99]}
  optim_d: {type: Adam, lr: !!float 1e-4, weight_decay: 0, betas: [0.9, 0.99]}
  scheduler: {type: MultiStepLR, milestones: [400000], gamma: 0.5}
  total_iter: 400000
  warmup_iter: -1
  pixel_opt: {type: L1Loss, loss_weight: 1.0, reduction: mean}
  perceptual_opt:
    type: PerceptualLoss
    layer_weights: {conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1, conv4_4: 1, conv5_4: 1}
    vgg_type: vgg19
    use_input_norm: true
    perceptual_weight: !!float 1.0
    style_weight: 0
    criterion: l1
  gan_opt: {type: GANLoss, gan_type: vanilla, real_label_val: 1.0, fake_label_val: 0.0, loss_weight: !!float 1e-1}
  net_d_iters: 1
  net_d_init_iters: 0
val:
  val_freq: !!float 5e3
  save_img: true
  metrics:
    psnr: {type: calculate_psnr, crop_border: 4, test_y_channel: false}
logger:
  print_freq: 100
  save_checkpoint_freq: !!float 5e3
"""


def _import(tmp_path: Path, name: str, text: str) -> tuple[dict, str]:
    f = tmp_path / name
    f.write_text(text)
    out = tmp_path / "imported.yaml"
    res = CliRunner().invoke(main, ["config", "import", str(f), "-o", str(out)])
    assert res.exit_code == 0, res.output + res.stderr
    return yaml.safe_load(out.read_text()), res.stderr


def _all_plugins():
    return PluginManager().load(only=["fasrgan", "fxsr"]).registries


def test_import_fasrgan_old_basicsr_json(tmp_path: Path) -> None:
    cfg, err = _import(tmp_path, "train_FASRGAN.json", json.dumps(FASRGAN_JSON))
    assert cfg["model"] == {"id": "fasrgan:rrdbnet", "params": {"nf": 64, "nb": 23, "in_nc": 3, "out_nc": 3,
                                                                   "gc": 32, "scale": 4}}
    assert cfg["data"]["train"] == {"hr": "/data/DIV2K_HR_sub", "lr": "/data/DIV2K_LR_sub_x4", "patch_size": 128,
                                    "batch_size": 16, "num_workers": 8, "flip": True, "rot90": True}
    st = cfg["stages"][0]
    assert st["steps"] == 500_000 and st["optim"] == {"lr": 1e-4, "weight_decay": 0.0, "betas": [0.9, 0.999]}
    assert st["schedule"] == {"type": "multistep", "milestones": [50000, 100000, 200000, 300000], "gamma": 0.5}
    assert st["losses"] == [{"id": "core:l1", "weight": 0.01},
                            {"id": "core:perceptual", "weight": 1.0,
                             "params": {"layers": {"conv5_4": 1.0}, "criterion": "l1"}}]
    assert st["gan"] == {"type": "ragan", "weight": 5e-3, "d_steps": 1, "d_start": 0}  # model fasrgan: RaGAN
    assert st["discriminator"] == {"id": "core:vgg128", "params": {"in_nc": 3, "nf": 64}}
    assert cfg["val"] == {"sets": ["/data/Set14/HR"], "every": 5000}
    assert cfg["train"] == {"seed": 0, "save_every": 5000, "log_every": 200}
    for key in ("train.gan_mask_weight", "train.atten_weight", "network_G.norm_type", "network_D.norm_type",
                "gpu_ids", "path.pretrain_model_G", "datasets.train.mode"):
        assert key in err
    assert "relativistic" in err and "RRDB_PSNR_x4.pth" in err
    resolve_run_config(_all_plugins(), files=[tmp_path / "imported.yaml"])  # a valid srcore config


def test_import_fxsr_mmsr_yaml(tmp_path: Path) -> None:
    cfg, err = _import(tmp_path, "train_FxSR.yml", FXSR_YAML)
    assert cfg["model"] == {"id": "fxsr:fxsr", "params": {"nf": 64, "nb": 23, "scale": 4}}
    assert cfg["data"]["train"]["patch_size"] == 128 and cfg["data"]["train"]["lr"].endswith("X4")
    st = cfg["stages"][0]
    assert st["optim"]["betas"] == [0.9, 0.99] and st["optim_d"]["betas"] == [0.9, 0.99]
    assert st["schedule_d"] == st["schedule"] and st["steps"] == 400_000 and st["gan"]["type"] == "ragan"
    assert cfg["val"] == {"every": 5000} and cfg["train"]["seed"] == 10
    for key in ("model", "distortion", "datasets.train.color", "use_tb_logger"):
        assert key in err.split("not mapped", 1)[1]
    resolve_run_config(_all_plugins(), files=[tmp_path / "imported.yaml"])


def test_import_realesrgan_basicsr_yaml(tmp_path: Path) -> None:
    cfg, err = _import(tmp_path, "train_realesrgan_x4plus.yml", REALESRGAN_YAML)
    assert cfg["model"] == {"id": "core:rrdbnet", "params": {"in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23,
                                                                "gc": 32, "scale": 4}}
    assert cfg["data"]["train"] == {"hr": "datasets/DF2K", "patch_size": 256, "batch_size": 12, "num_workers": 5,
                                    "flip": True, "rot90": False}
    st = cfg["stages"][0]
    assert st["ema_decay"] == 0.999 and st["steps"] == 400_000
    assert st["optim"] == st["optim_d"] == {"type": "adam", "lr": 1e-4, "weight_decay": 0.0, "betas": [0.9, 0.99]}
    layers = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    assert st["losses"] == [{"id": "core:l1", "weight": 1.0},
                            {"id": "core:perceptual", "weight": 1.0,
                             "params": {"layers": layers, "criterion": "l1", "use_input_norm": True}}]
    assert st["gan"] == {"type": "vanilla", "weight": 0.1, "d_steps": 1, "d_start": 0} and "discriminator" not in st
    assert cfg["val"]["metrics"] == [{"id": "core:psnr", "params": {"crop_border": 4, "y_channel": False}}]
    unmapped = err.split("not mapped", 1)[1]
    for key in ("network_d.type", "network_d.skip_connection", "datasets.train.type", "datasets.train.blur_kernel_size",
                "queue_size", "num_gpu", "val.save_img", "path.param_key_g"):
        assert key in unmapped
    assert "second-order degradation" in err
    data = yaml.safe_load((tmp_path / "imported.yaml").read_text())
    data["stages"][0]["discriminator"] = {"id": "core:vgg128"}  # the one key to add by hand
    from srcore.config import validate_run_config

    validate_run_config(data, PluginManager().load(only=["core"]).registries)


def test_import_neosr_toml(tmp_path: Path) -> None:
    toml = ('name = "neo"\nscale = 2\n[network_g]\ntype = "compact"\nnum_feat = 16\nnum_conv = 4\nupscale = 2\n'
            '[train]\ntotal_iter = 1000\n[train.optim_g]\ntype = "adamw"\nlr = 5e-4\nbetas = [0.9, 0.99]\n'
            '[train.pixel_opt]\ntype = "L1Loss"\nloss_weight = 1.0\n[train.wavelet_guided]\nenabled = true\n')
    cfg, err = _import(tmp_path, "neo.toml", toml)
    assert cfg["model"] == {"id": "spandrel:compact",
                            "params": {"hyperparameters": {"num_feat": 16, "num_conv": 4, "upscale": 2}, "scale": 2}}
    assert cfg["stages"][0]["optim"] == {"type": "adamw", "lr": 5e-4, "betas": [0.9, 0.99]}
    assert "train.wavelet_guided.enabled" in err

