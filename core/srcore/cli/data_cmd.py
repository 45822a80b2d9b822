"""``srcore data ...`` (wired by the data issue)."""

from __future__ import annotations

import click


@click.group()
def data() -> None:
    """Prepare training data."""
