"""Shared fixtures: the shared test data folder (skip with a reason when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from srcore.testing import shared_data_dir


def shared_data() -> Path | None:
    root = shared_data_dir()
    return root if root.is_dir() else None


@pytest.fixture
def data_root() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip("shared test data (../shared/data or $SRCORE_SHARED_DATA) is not available")
    return root


@pytest.fixture
def weights(data_root: Path):
    def get(name: str) -> Path:
        path = data_root / "weights" / name
        if not path.is_file():
            pytest.skip(f"released weights {path} are not available")
        return path

    return get
