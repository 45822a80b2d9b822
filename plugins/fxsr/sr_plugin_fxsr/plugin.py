"""Entry point of the `fxsr` plugin: hook implementations that register its components."""

from __future__ import annotations
