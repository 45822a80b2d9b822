"""Built-in discriminators of the core plugin."""

from __future__ import annotations

from srcore.registry import Registrar


def register_discriminators(register: Registrar) -> None:
    """Register the core's discriminators (filled in by the issue that owns them)."""
