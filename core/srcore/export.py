"""Export a loaded model: safetensors (canonical keys + srcore metadata) or ONNX (dynamic H, W).

The ONNX graph is the network itself, in its own colour space (Y for Y-channel models, the
pre-upsampled image for SRCNN-style models), with inputs ``input`` (N,C,H,W) and, for
conditional models, ``cond`` (N,1,H,W). ``check_onnx`` runs it with onnxruntime on a real
photograph and compares with PyTorch.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from srcore.atomic import atomic_target
from srcore.engine.checkpoint import LoadedModel, state_dict_cpu
from srcore.errors import SrcoreError
from srcore.weights_io import short_error


def export_safetensors(loaded: LoadedModel, path: Path) -> Path:
    """Canonical-key weights with the srcore metadata that makes the file self-describing; atomic."""
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    md = {"format": "srcore", "model": loaded.component.id, "params": json.dumps(loaded.params)}
    with atomic_target(path, "export output") as tmp:
        try:
            save_file(state_dict_cpu(loaded.module), str(tmp), metadata=md)
        except SafetensorError as exc:  # its I/O errors (disk full) are not OSError
            raise OSError(str(exc).splitlines()[0]) from None
    return path


def _example_inputs(loaded: LoadedModel, h: int, w: int) -> tuple[torch.Tensor, ...]:
    info = loaded.info
    side_h, side_w = (h * loaded.scale, w * loaded.scale) if info.pre_upsampled else (h, w)
    m = info.size_multiple
    side_h, side_w = max(-(-side_h // m) * m, info.min_size), max(-(-side_w // m) * m, info.min_size)
    if info.fixed_size:
        side_h = side_w = info.fixed_size
    x = torch.rand(1, info.in_channels, side_h, side_w, generator=torch.Generator().manual_seed(0))
    if info.condition:
        return x, torch.full((1, 1, side_h, side_w), 0.5)
    return (x,)


def export_onnx(loaded: LoadedModel, path: Path, opset: int = 17) -> Path:
    inputs = _example_inputs(loaded, 24, 24)
    names = ["input", "cond"][: len(inputs)]
    dynamic = {n: {0: "batch", 2: "height", 3: "width"} for n in [*names, "output"]}
    if loaded.info.fixed_size:
        dynamic = {n: {0: "batch"} for n in [*names, "output"]}
    module = loaded.module.cpu().eval()
    with atomic_target(path, "export output") as tmp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript exporter: needs no onnxscript
                warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # its internal notes
                torch.onnx.export(module, inputs, str(tmp), input_names=names, output_names=["output"],
                                  dynamic_axes=dynamic, opset_version=opset, dynamo=False)
        except Exception as exc:
            raise SrcoreError(f"ONNX export of {loaded.component.id} failed: {short_error(exc, 1)}") from None
    return path


def network_input(loaded: LoadedModel, rgb: torch.Tensor) -> torch.Tensor:
    """What the bare network takes for an RGB [0,1] LR image (Y and/or pre-upsampled)."""
    from srcore.data.color import rgb_to_y
    from srcore.data.resize import imresize

    x = rgb.unsqueeze(0) if rgb.dim() == 3 else rgb
    if loaded.info.in_channels == 1:
        x = rgb_to_y(x)
    if loaded.info.pre_upsampled:
        x = imresize(x, scale=loaded.scale)
    return x.float()


def check_onnx(loaded: LoadedModel, path: Path, rgb: torch.Tensor) -> dict[str, Any]:
    """Max/mean absolute difference between onnxruntime and PyTorch on the image ``rgb``."""
    import onnxruntime as ort

    x = network_input(loaded, rgb)
    feeds = {"input": x.numpy()}
    args: tuple[torch.Tensor, ...] = (x,)
    if loaded.info.condition:
        c = torch.full((1, 1, *x.shape[-2:]), 0.5)
        feeds["cond"] = c.numpy()
        args = (x, c)
    with torch.no_grad():
        ref = loaded.module.cpu().eval()(*args).numpy()
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["output"], feeds)[0]
    diff = abs(got - ref)
    return {"shape": list(got.shape), "max_abs_diff": float(diff.max()), "mean_abs_diff": float(diff.mean())}


def sample_photo(size: int = 96) -> torch.Tensor:
    """A real photograph (scikit-image's astronaut, centre crop), RGB (3,size,size) in [0,1]."""
    from skimage import data

    img = torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255.0
    h, w = img.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return img[:, top : top + size, left : left + size].contiguous()


def require_onnxruntime(option: str) -> Any:
    """The onnxruntime module, or one line saying what to install."""
    try:
        import onnxruntime
    except ImportError:
        raise SrcoreError(f"{option} needs onnxruntime, which is not installed (pip install onnxruntime)") from None
    return onnxruntime


def onnx_upscaler(loaded: LoadedModel, path: Path) -> Any:
    """An ``srcore.infer.Upscaler`` that runs the ONNX graph ``path`` (an ``export_onnx`` of
    ``loaded``) with onnxruntime on the CPU: ``super_resolve`` keeps its colour, padding and
    ensemble handling. Its memory is onnxruntime's, which srcore cannot probe: it is tiled
    only when asked (``tile``); a model whose exact tiling needs a ``tile_split`` (image-wide
    statistics split from its convs) is then tiled like one that is not tile-exact."""
    from srcore.infer import Upscaler

    ort = require_onnxruntime("--backend onnx")
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise SrcoreError(f"cannot load ONNX graph {path}: {short_error(exc, 1)}") from None
    names = {i.name for i in sess.get_inputs()}
    if "input" not in names or ("cond" in names) != bool(loaded.info.condition):
        raise SrcoreError(f"ONNX graph {path} has inputs {sorted(names)}; expected what srcore export writes "
                          f"for {loaded.component.id}")

    def forward(x: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        feeds = {"input": x.detach().cpu().float().numpy()}
        if c is not None:
            feeds["cond"] = c.detach().cpu().float().numpy()
        return torch.from_numpy(sess.run(["output"], feeds)[0])

    info = loaded.info
    if hasattr(loaded.module, "tile_split"):
        info = info.model_copy(update={"tile_exact": False})
    return Upscaler(forward, info, loaded.scale, f"{loaded.component.id} (onnx)")
