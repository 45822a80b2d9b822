"""VGG19 feature extractor for perceptual losses (ESRGAN's "VGG54", SRResCGAN, FxSR, GLEAN).

The layout is torchvision's ``vgg19().features`` (same indices, so a torchvision state dict
``features.{i}.weight`` loads as it is); only the layers up to the deepest requested one are
built. ImageNet weights are never downloaded: they are read from the torch hub cache
(``$TORCH_HOME/hub/checkpoints/vgg19-dcbb9e9d.pth``, the file torchvision itself downloads) or
from an explicit path; ``weights="random"`` gives a randomly initialised network (tests only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from srcore.errors import MissingWeightsError, SrcoreError
from srcore.weights_io import load_into, read_mapping

VGG19_FILE = "vgg19-dcbb9e9d.pth"
"""File name torchvision uses for ImageNet VGG19 weights (``VGG19_Weights.IMAGENET1K_V1``)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's configuration "E" (VGG19): channel widths, "M" = 2x2 max-pool.
_VGG19_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)


def _layer_names() -> tuple[str, ...]:
    """Names of ``features`` indices 0..36: conv1_1, relu1_1, ..., conv5_4 (34), relu5_4, pool5."""
    names: list[str] = []
    block, idx = 1, 1
    for item in _VGG19_CFG:
        if item == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return tuple(names)


VGG19_LAYERS: tuple[str, ...] = _layer_names()
VGG19_INDEX: dict[str, int] = {name: i for i, name in enumerate(VGG19_LAYERS)}


def layer_index(name: str) -> int:
    """Index in ``vgg19().features`` of a named layer, e.g. ``conv5_4`` -> 34 (before ReLU)."""
    try:
        return VGG19_INDEX[name]
    except KeyError:
        raise SrcoreError(
            f"unknown VGG19 layer {name!r}; use names like conv5_4 (before ReLU) or relu2_2 "
            f"(after ReLU), pool3; known: {', '.join(VGG19_LAYERS)}"
        ) from None


def vgg19_features(last_index: int = len(VGG19_LAYERS) - 1) -> nn.Sequential:
    """torchvision's VGG19 ``features`` truncated after ``last_index``; ReLUs are not in-place
    so an intermediate pre-ReLU output stays intact when a later layer is also read."""
    layers: list[nn.Module] = []
    in_ch = 3
    for item in _VGG19_CFG:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(in_ch, int(item), 3, padding=1), nn.ReLU(inplace=False)]
            in_ch = int(item)
    return nn.Sequential(*layers[: last_index + 1])


def default_weights_path() -> Path:
    """Where torchvision caches the ImageNet VGG19 weights (honours ``TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def resolve_weights(weights: str | Path | None) -> Path:
    """The weights file to read: an explicit path, else the torch hub cache; a clear error if absent."""
    path = Path(weights).expanduser() if weights not in (None, "") else default_weights_path()
    if not path.is_file():
        where = (
            f"the explicit path {path}"
            if weights not in (None, "")
            else f"the torch hub cache folder {path.parent}"
        )
        raise MissingWeightsError(
            f"VGG19 ImageNet weights not found: {path} does not exist. The perceptual loss needs "
            f"torchvision's '{VGG19_FILE}' (https://download.pytorch.org/models/{VGG19_FILE}); put it "
            f"in {where} (or set TORCH_HOME, or give the file with the loss option `weights`)."
        )
    return path


def _weights_unless_absent(weights: str | Path | None) -> Path | None:
    """The weights file, or None where a preflight checks shapes without it (``srcore.pretrained``)."""
    from srcore.pretrained import absent

    try:
        return resolve_weights(weights)
    except MissingWeightsError as exc:
        if absent("VGG19 perceptual features", str(exc)):
            return None
        raise


def weights_label(weights: str | Path | None) -> str:
    """How errors name the VGG19 file: from the loss option, or found in the torch hub cache."""
    return "VGG19 weights (loss option 'weights')" if weights not in (None, "") else "VGG19 weights (torch hub cache)"


def load_vgg19_state(path: str | Path, what: str = "VGG19 weights") -> dict[str, torch.Tensor]:
    """Read a VGG19 state dict (torchvision layout, ``features.`` keys) without unpickling code."""
    state = read_mapping(path, what)
    if isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    feats = {str(k).removeprefix("module.")[len("features."):]: v for k, v in state.items()
             if str(k).removeprefix("module.").startswith("features.")}
    if not feats:
        raise SrcoreError(f"{what} {path}: no 'features.*' keys (is this torchvision's vgg19?)")
    return feats


class VGGFeatureExtractor(nn.Module):
    """Frozen VGG19 returning ``{layer_name: features}`` for the requested layers.

    ``input_range`` is the value range of the inputs (1 for [0, 1], 255 for 0..255 tensors):
    inputs are divided by it before the ImageNet mean/std normalisation (skipped when
    ``use_input_norm`` is false).
    """

    def __init__(
        self,
        layers: Sequence[str] = ("conv5_4",),
        weights: str | Path | None = None,
        use_input_norm: bool = True,
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        if not layers:
            raise SrcoreError("VGGFeatureExtractor: give at least one layer name")
        self.layers = tuple(layers)
        self._indices = {layer_index(n): n for n in self.layers}
        self.features = vgg19_features(max(self._indices))
        path = None if weights == "random" else _weights_unless_absent(weights)
        if path is not None:
            what = weights_label(weights)
            state = load_vgg19_state(path, what)
            own = self.features.state_dict()
            load_into(self.features, {k: v for k, v in state.items() if k in own}, path, what, "the VGG19 layers")
        self.use_input_norm = use_input_norm
        self.input_range = float(input_range)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGGFeatureExtractor:
        """Always in eval mode: the extractor is a fixed function."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.input_range != 1.0:
            x = x / self.input_range
        if self.use_input_norm:
            x = (x - self.mean) / self.std
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._indices:
                out[self._indices[i]] = x
        return out


class PerceptualLoss(nn.Module):
    """Weighted sum over VGG19 layers of a distance between features of ``sr`` and ``hr``.

    The ``hr`` features are computed without gradient. ``criterion`` is ``l1`` or ``l2``/``mse``
    (mean over elements, as ESRGAN's ``feature_criterion``).
    """

    def __init__(
        self,
        layer_weights: Mapping[str, float],
        criterion: str = "l1",
        weights: str | Path | None = None,
        use_input_norm: bool = True,
        input_range: float = 1.0,
    ) -> None:
        super().__init__()
        if criterion not in ("l1", "l2", "mse"):
            raise SrcoreError(f"perceptual loss: criterion must be l1, l2 or mse, not {criterion!r}")
        self.layer_weights = dict(layer_weights)
        self.criterion = nn.L1Loss() if criterion == "l1" else nn.MSELoss()
        self.vgg = VGGFeatureExtractor(tuple(self.layer_weights), weights, use_input_norm, input_range)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        f_sr = self.vgg(sr)
        with torch.no_grad():
            f_hr = self.vgg(hr)
        return sum(
            (w * self.criterion(f_sr[n], f_hr[n]) for n, w in self.layer_weights.items()),
            start=sr.new_zeros(()),
        )
