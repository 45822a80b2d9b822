"""Shared fixtures of the srcnn plugin tests: the plugin's registries and the shared test data."""

from __future__ import annotations

from pathlib import Path

import pytest

from srcore.plugins import PluginManager
from srcore.registry import Registries
from srcore.testing import shared_data_dir


def shared_data() -> Path | None:
    path = shared_data_dir()
    return path.resolve() if path.is_dir() else None


@pytest.fixture(scope="session")
def registries() -> Registries:
    return PluginManager().load(only=["srcnn"]).registries


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data()
    if root is None:
        pytest.skip("shared test data (../shared/data or $SRCORE_SHARED_DATA) is absent")
    return root


@pytest.fixture(scope="session")
def weights(data_root: Path) -> Path:
    folder = data_root / "weights"
    if not folder.is_dir():
        pytest.skip(f"released weights folder {folder} is absent")
    return folder
