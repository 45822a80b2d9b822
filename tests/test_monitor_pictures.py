"""Pictures of a run: labelled sample grids, and the same grids and learning rates in TensorBoard."""

from __future__ import annotations

import math

import torch

from srcore.config import validate_run_config
from srcore.data.io import read_image
from srcore.engine.loop import train
from srcore.engine.monitor import HEADER, sample_grid
from srcore.testing import RandomPairs


def test_grid_has_column_titles_and_a_psnr_on_each_tile(tmp_path):
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(3, 40, 40, generator=g)
    rows = [(hr * 0.5, hr, hr), (hr.flip(-1), hr * 0.9, hr)]
    img = read_image(sample_grid(rows, tmp_path / "g.png", crop=32))
    assert img.shape == (3, HEADER + 2 * 36, 3 * 36)
    band = img[:, :HEADER]
    for col in range(3):  # dark title text in each column of the white band
        assert (band[:, :, col * 36:(col + 1) * 36] < 0.5).any()
    plain = read_image(tmp_path / "g.png")[:, HEADER:]
    hr_tile = plain[:, 36 + 20:36 + 32, 72:72 + 32]  # below the text line, the HR tile is the HR crop
    assert torch.allclose(hr_tile, hr[:, 4 + 20:4 + 32, 4:36], atol=1 / 255)
    sr_text = plain[:, 36:36 + 20, 36:36 + 32]  # the "99.00 dB" label of a perfect SR tile
    assert (sr_text > 0.95).any() and (sr_text < 0.05).any()




def test_tensorboard_gets_sample_grids_and_learning_rates(srcore_manager, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = validate_run_config({"model": {"id": "core:tiny", "params": {"channels": 4, "scale": 2}},
                               "data": {"train": {"batch_size": 2, "patch_size": 16}},
                               "stages": [{"steps": 4, "optim": {"lr": 0.01}}],
                               "train": {"tensorboard": True, "log_every": 2, "samples": 1},
                               "val": {"every": 2}}, srcore_manager.registries)
    val = {"v": [{"name": "a", **RandomPairs()[0]}]}
    train(cfg, srcore_manager, run_dir=tmp_path / "r", dataset=RandomPairs(), eval_sets=val, device="cpu",
          progress=False)
    acc = EventAccumulator(str(tmp_path / "r" / "tb"), size_guidance={"images": 0})
    acc.Reload()
    assert [e.step for e in acc.Images("samples")] == [2, 4]
    assert [e.step for e in acc.Scalars("lr/generator")] == [1, 2, 4]
    assert all(math.isclose(e.value, 0.01, rel_tol=1e-6) for e in acc.Scalars("lr/generator"))
