"""Where metric backbones find their ImageNet weights (they are never downloaded by srcore).

A file is looked up at the explicit path given in the metric's config, else in the torch hub
cache (``torch.hub.get_dir()/checkpoints``, i.e. ``$TORCH_HOME/hub/checkpoints``), where the
libraries that own these networks would have downloaded it. When missing, the error names the
file and both places.
"""

from __future__ import annotations

from pathlib import Path

from srcore.errors import MissingWeightsError


def hub_checkpoints_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(filename: str, explicit: str | None, what: str, option: str = "weights") -> Path:
    """The weight file ``filename`` (or ``explicit``), with a clear error when it is absent."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise MissingWeightsError(f"{what}: weight file not found at {p} (from the metric's '{option}' option)")
        return p
    p = hub_checkpoints_dir() / filename
    if not p.is_file():
        raise MissingWeightsError(
            f"{what} needs the pretrained weights '{filename}', which srcore does not download. "
            f"Put the file at {p} (the torch hub cache; set TORCH_HOME to move it) or give its path "
            f"with the metric option '{option}'."
        )
    return p
