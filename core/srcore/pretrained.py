"""Absent pretrained weights during a preflight: build with random weights, remember which.

The preflight (``srcore.engine.preflight``) must check a perceptual loss's shapes even on a
machine without ``vgg19-dcbb9e9d.pth``; it also has to tell the user the real stage would stop
there. A loader that finds its file missing calls ``absent(where, message)``: inside
``random_if_absent()`` that records the message and answers True (go on with random weights);
elsewhere it answers False and the loader raises as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_RECORD: ContextVar[list[tuple[str, str]] | None] = ContextVar("srcore_absent_weights", default=None)


@contextmanager
def random_if_absent() -> Iterator[list[tuple[str, str]]]:
    """Within this block, missing pretrained weights are recorded as (where, message) instead of raised."""
    found: list[tuple[str, str]] = []
    token = _RECORD.set(found)
    try:
        yield found
    finally:
        _RECORD.reset(token)


def absent(where: str, message: str) -> bool:
    """Record a missing weight file; True when the caller may continue with random weights."""
    record = _RECORD.get()
    if record is None:
        return False
    record.append((where, message))
    return True
