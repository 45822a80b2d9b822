"""Architectures of the classic CNN family (one module per method, torch imported lazily by callers)."""
