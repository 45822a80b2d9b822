"""Built-in steps of the core plugin."""

from __future__ import annotations

from srcore.registry import RecipeRegistrar


def register_steps(register: RecipeRegistrar) -> None:
    """Register the core's steps (filled in by the issue that owns them)."""
