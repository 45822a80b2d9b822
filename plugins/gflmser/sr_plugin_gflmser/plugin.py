"""Entry point of the `gflmser` plugin: hook implementations that register its components."""

from __future__ import annotations
