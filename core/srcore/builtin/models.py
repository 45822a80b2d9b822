"""Built-in models of the core plugin."""

from __future__ import annotations

from srcore.registry import Registrar


def register_models(register: Registrar) -> None:
    """Register the core's models (filled in by the issue that owns them)."""
