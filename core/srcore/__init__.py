"""srcore: a plugin-based framework for single-image super-resolution.

Plugin authors need only ``from srcore import hookimpl``; nothing heavy is imported here and no
plugin is loaded at import time.
"""

from __future__ import annotations

from typing import Any

from srcore.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl", "load_checkpoint", "load_plugins"]


def load_plugins(*args: Any, **kwargs: Any) -> Any:
    """Load installed plugins and return the plugin manager (see ``srcore.plugins``)."""
    from srcore.plugins import load_plugins as _load

    return _load(*args, **kwargs)


def load_checkpoint(*args: Any, **kwargs: Any) -> Any:
    """Load any supported checkpoint into a ready model (see ``srcore.engine.checkpoint``)."""
    from srcore.engine.checkpoint import load_checkpoint as _load

    return _load(*args, **kwargs)
