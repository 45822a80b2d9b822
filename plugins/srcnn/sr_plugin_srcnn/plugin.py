"""Entry point of the `srcnn` plugin: hook implementations that register its components."""

from __future__ import annotations
