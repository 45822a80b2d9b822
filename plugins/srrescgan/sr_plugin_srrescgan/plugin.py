"""Entry point of the `srrescgan` plugin: hook implementations that register its components."""

from __future__ import annotations
