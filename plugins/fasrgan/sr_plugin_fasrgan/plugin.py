"""Entry point of the `fasrgan` plugin: hook implementations that register its components."""

from __future__ import annotations
