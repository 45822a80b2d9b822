"""Set-level metrics (FID) in training validation: computed over the whole set, equal to the
metric run directly on the same SR images, for each condition value and pooled over ranks;
one without measure()/add() is left out with a note where its statistics would have to pool."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from srcore.data.resize import imresize
from srcore.engine.dist import DistInfo
from srcore.engine.validate import validate
from srcore.infer import Upscaler, super_resolve
from srcore.registry import ModelInfo


@pytest.fixture
def fid_and_psnr(srcore_manager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import torchvision

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.manual_seed(0)  # random Inception weights of the right architecture (the real ones are not here)
    net = torchvision.models.inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    torch.save(net.state_dict(), hub / "pt_inception-2015-12-05-6726825d.pth")
    regs = srcore_manager.registries
    fid = regs.build("metric", "core:fid", {"batch_size": 2, "dims": 64})
    psnr = regs.build("metric", "core:psnr", {"crop_border": 2, "y_channel": True})
    return fid, psnr


def _set(n: int = 3) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(4)
    items = []
    for _ in range(n):
        hr = torch.rand(3, 32, 32, generator=g)
        items.append({"lr": imresize(hr[None].double(), scale=0.5).float().clamp(0, 1)[0], "hr": hr})
    return items


def _upscaler() -> Upscaler:
    return Upscaler(lambda x, c: imresize(x.double(), scale=2).float(), ModelInfo(scales=(2,)), 2)


def test_fid_over_the_set_equals_the_metric_on_the_same_images(fid_and_psnr) -> None:
    fid, psnr = fid_and_psnr
    items = _set()
    out, _ = validate(_upscaler(), {"toy": items}, [("psnr", psnr), ("fid", fid)], [None], DistInfo(),
                      torch.device("cpu"))
    srs = torch.cat([super_resolve(_upscaler(), it["lr"]) for it in items])
    hrs = torch.stack([it["hr"] for it in items])
    fid.reset()
    fid.update(srs, hrs)
    assert out["toy/fid"] == pytest.approx(fid.compute(), rel=1e-9)
    assert out["toy/psnr"] == pytest.approx(float(psnr.update(srs, hrs).mean()), rel=1e-12)


def _conditional() -> Upscaler:
    """Bicubic x2 darkened by the condition value t (so each t has its own FID)."""
    return Upscaler(lambda x, c: imresize(x.double(), scale=2).float() * (1 - 0.3 * c.mean()),
                    ModelInfo(scales=(2,), condition="t"), 2)


class _ThreadRanks:
    """Ranks run as threads of this process, with in-memory collectives in place of gloo's."""

    def __init__(self, world: int) -> None:
        self.world, self.local = world, threading.local()
        self.barrier = threading.Barrier(world, timeout=120)
        self.slots: list[object] = [None] * world

    def _exchange(self, obj: object) -> list[object]:
        self.slots[self.local.rank] = obj
        self.barrier.wait()
        out = list(self.slots)
        self.barrier.wait()
        return out

    def gather_to_main(self, obj: object) -> list[object] | None:
        out = self._exchange(obj)
        return out if self.local.rank == 0 else None

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        parts = self._exchange(t.clone())
        total = parts[0].clone()
        for part in parts[1:]:
            total += part
        return total

    def run(self, fn):
        def rank(r: int):
            self.local.rank = r
            return fn(DistInfo(r, self.world, r))

        with ThreadPoolExecutor(self.world) as pool:
            return list(pool.map(rank, range(self.world)))


def test_set_level_metric_pooled_over_ranks_and_conditions(fid_and_psnr, monkeypatch: pytest.MonkeyPatch) -> None:
    import srcore.engine.dist as D

    fid, psnr = fid_and_psnr
    items, up, cpu = _set(4), _conditional(), torch.device("cpu")
    metrics = [("psnr", psnr), ("fid", fid)]
    single, _ = validate(up, {"toy": items}, metrics, [0.0, 1.0], DistInfo(), cpu)
    assert set(single) == {"toy/psnr@0", "toy/fid@0", "toy/psnr@1", "toy/fid@1"}
    hrs = torch.stack([it["hr"] for it in items])
    for t in (0.0, 1.0):  # reference: the metric on all of this condition's SR images at once
        srs = torch.cat([super_resolve(up, it["lr"], cond=t) for it in items])
        fid.reset()
        fid.update(srs, hrs)
        assert single[f"toy/fid@{t:g}"] == pytest.approx(fid.compute(), rel=1e-9)
    assert single["toy/fid@0"] != pytest.approx(single["toy/fid@1"], rel=1e-3)
    for world in (2, 3):
        ranks = _ThreadRanks(world)
        monkeypatch.setattr(D, "gather_to_main", ranks.gather_to_main)
        monkeypatch.setattr(D, "all_reduce_sum", ranks.all_reduce_sum)
        outs = [out for out, _ in ranks.run(lambda info: validate(up, {"toy": items}, metrics, [0.0, 1.0], info, cpu))]
        assert all(out == outs[0] for out in outs), world  # the same numbers on every rank
        for label, value in single.items():
            if "fid" in label:  # features pooled on rank 0 in image order: exactly the single-process value
                assert outs[0][label] == value, (world, label)
            else:  # means of the all-reduced sums
                assert outs[0][label] == pytest.approx(value, rel=1e-12), (world, label)


def test_set_level_metric_without_measure_left_out_across_ranks_or_conditions(capsys) -> None:
    from srcore.metrics.base import SetMetric

    class Streamed(SetMetric):  # a plugin metric written before measure()/add()
        name = "streamed"

        def reset(self) -> None:
            self.n = 0

        def update(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> None:
            self.n += len(sr)

        def compute(self) -> float:
            return float(self.n)

    m = Streamed()
    out, _ = validate(_upscaler(), {"toy": _set()}, [("streamed", m)], [None], DistInfo(), torch.device("cpu"))
    assert out == {"toy/streamed": 3.0}  # one process, one condition: streamed as before
    out, _ = validate(_conditional(), {"toy": _set()}, [("streamed", m)], [0.0, 1.0], DistInfo(), torch.device("cpu"))
    assert out == {}
    assert "streamed left out of validation" in capsys.readouterr().err
