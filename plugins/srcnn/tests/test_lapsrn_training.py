"""The LapSRN recipes train stably: 200 real steps of ``srcnn:lapsrn-x4`` on Set14 patches stay
finite and lower the loss (the recipe used to reach 1.6e9 at step 2 and NaN at step 3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def train_losses(run: Path) -> list[float]:
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [line["loss/total"] for line in lines if line.get("kind") == "train"]


def test_lapsrn_recipes_use_a_scale_free_optimizer(registries):
    """Summed Charbonnier with plain SGD scales the step with batch x pixels; Adam does not."""
    for scale in (2, 4, 8):
        stage = registries.recipes.get(f"srcnn:lapsrn-x{scale}").extra["defaults"]["stages"][0]
        assert stage["step_params"]["optimizer"] == "stage" and stage["optim"]["type"] == "adam"
        assert stage["losses"][0]["params"] == {"eps": 1e-3, "reduction": "sum"}


def test_lapsrn_x4_trains_200_steps_on_set14_patches(data_root, tmp_path, one_thread):
    from srcore.cli import main

    run = tmp_path / "lapsrn"
    res = CliRunner().invoke(main, [
        "train", "-r", "srcnn:lapsrn-x4", "--run-dir", str(run), "--plugin", "srcnn", "--no-progress",
        "--device", "cpu", "-s", f"data.train.hr={data_root / 'Set14' / 'HR'}", "-s", "data.train.patch_size=32",
        "-s", "data.train.batch_size=2", "-s", "stages.0.steps=200", "-s", "val.sets=[]", "-s", "train.log_every=1",
    ])
    assert res.exit_code == 0, res.output
    losses = train_losses(run)
    assert len(losses) == 200 and all(torch.isfinite(torch.tensor(losses)))
    first, last = sum(losses[:20]) / 20, sum(losses[-50:]) / 50
    assert last < 0.85 * first, (first, last)
