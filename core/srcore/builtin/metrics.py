"""Built-in metrics of the core plugin."""

from __future__ import annotations

from srcore.registry import Registrar


def register_metrics(register: Registrar) -> None:
    """Register the core's metrics (filled in by the issue that owns them)."""
