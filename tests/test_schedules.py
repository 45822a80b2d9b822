"""Learning-rate schedules as multipliers of the base rate, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from srcore.config import ScheduleConfig
from srcore.engine.context import schedule_factor


def test_linear_decay_after_its_start() -> None:
    f = schedule_factor(ScheduleConfig(type="linear", decay_start=50), total=150, base_lr=2e-4)
    assert [f(t) for t in (0, 49, 50)] == [1.0, 1.0, 1.0]
    assert f(100) == pytest.approx(0.5)
    assert f(150) == 0.0 and f(500) == 0.0
    floor = schedule_factor(ScheduleConfig(type="linear", min_lr=1e-5), total=100, base_lr=1e-4)
    assert floor(0) == 1.0 and floor(50) == pytest.approx(0.55) and floor(100) == pytest.approx(0.1)


def test_warmup_then_cosine_and_multistep() -> None:
    cos = schedule_factor(ScheduleConfig(type="cosine", warmup_steps=10), total=110, base_lr=1.0)
    assert cos(0) == pytest.approx(0.1) and cos(9) == pytest.approx(1.0)
    assert cos(60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    ms = schedule_factor(ScheduleConfig(type="multistep", milestones=[5, 8], gamma=0.5), total=10, base_lr=1.0)
    assert [ms(t) for t in (4, 5, 7, 8)] == [1.0, 0.5, 0.5, 0.25]
