"""Built-in degradations of the core plugin."""

from __future__ import annotations

from srcore.registry import Registrar


def register_degradations(register: Registrar) -> None:
    """Register the core's degradations (filled in by the issue that owns them)."""
