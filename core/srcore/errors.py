"""Typed errors. Every user-facing error is a ``SrcoreError``: the CLI prints it and exits 2."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class SrcoreError(Exception):
    """An error caused by the user's input (config, file, name); shown without a traceback."""

    exit_code = 2


class ConfigError(SrcoreError):
    """One or more configuration problems, each with its field path."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid configuration{f' in {source}' if source else ''}"
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head} ({len(self.problems)} problem(s)):\n{lines}")


class ComponentError(SrcoreError):
    """Base of registry errors."""


class UnknownComponentError(ComponentError, KeyError):
    def __init__(self, kind: str, ref: str, close: Iterable[str] = (), known: Iterable[str] = ()) -> None:
        self.kind, self.ref, self.close = kind, ref, list(close)
        hint = f" Did you mean: {', '.join(self.close)}?" if self.close else ""
        if not self.close:
            known = sorted(known)
            hint = f" Known {kind}s: {', '.join(known)}." if known else f" No {kind}s are registered."
        super().__init__(f"unknown {kind} '{ref}'.{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class AmbiguousComponentError(ComponentError):
    def __init__(self, kind: str, ref: str, candidates: Iterable[str]) -> None:
        self.candidates = sorted(candidates)
        super().__init__(f"{kind} name '{ref}' is ambiguous; use one of: {', '.join(self.candidates)}")


class DuplicateComponentError(ComponentError):
    def __init__(self, kind: str, cid: str, first: str, second: str) -> None:
        self.kind, self.cid = kind, cid
        super().__init__(
            f"{kind} '{cid}' is registered twice (by plugin '{first}' and by plugin '{second}')"
        )


class PluginError(SrcoreError):
    """A plugin could not be found or loaded."""


class MissingWeightsError(SrcoreError):
    """A pretrained network's weight file (ImageNet VGG/AlexNet, Inception, ...) is not available
    offline; the message names the file and where it goes."""


class CheckpointError(SrcoreError):
    """A checkpoint could not be read or matched to a model."""
