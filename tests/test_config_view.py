"""``srcore config show`` prints the fields a stage's training step reads; ``--all`` prints every field."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from srcore.cli import main


def show(*args: str) -> dict:
    res = CliRunner().invoke(main, ["config", "show", *args])
    assert res.exit_code == 0, res.output
    return yaml.safe_load(res.output)


def test_sgd_step_shows_only_the_optimizer_fields_it_reads():
    stage = show("-r", "srcnn:vdsr-x2")["stages"][0]
    assert stage["optim"] == {"lr": 0.1, "weight_decay": 0.0001}  # no unused 'type: adam'
    assert "discriminator" not in stage and "gan" not in stage and "optim_d" not in stage
    assert {"schedule", "grad_clip", "accumulate", "losses"} <= set(stage)
    full = show("-r", "srcnn:vdsr-x2", "--all")["stages"][0]
    assert full["optim"]["type"] == "adam" and "gan" in full


def test_supervised_and_adversarial_stages():
    psnr, gan = show("-r", "fasrgan:esrgan-x4")["stages"]
    assert "gan" not in psnr and "discriminator" not in psnr and psnr["optim"]["type"] == "adam"
    assert gan["discriminator"]["id"] == "core:vgg128" and "gan" in gan and "optim_d" in gan
