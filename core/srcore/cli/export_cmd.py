"""``srcore export CHECKPOINT --format onnx|safetensors``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from srcore.cli.common import handle_errors, plugin_option
from srcore.cli.upscale_cmd import parse_params
from srcore.progress import progress_option


@click.command(name="export")
@click.argument("checkpoint", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx", "safetensors"]), required=True)
@click.option("--output", "-o", type=click.Path(), help="Output file (default: next to the input).")
@click.option("--model", metavar="ID", help="Model id, when the file does not say.")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="Model parameter (with --model).")
@click.option("--opset", type=int, default=17, show_default=True)
@click.option("--check-image", type=click.Path(exists=True, dir_okay=False),
              help="Image to compare ONNX and PyTorch on (default: a scikit-image photograph).")
@click.option("--tolerance", type=float, default=1e-4, show_default=True, help="Max |ONNX - PyTorch| allowed.")
@progress_option
@plugin_option
@handle_errors
def export(checkpoint: str, fmt: str, output: str | None, model: str | None, params: tuple[str, ...], opset: int,
           check_image: str | None, tolerance: float, progress: bool | None, plugins: tuple[str, ...]) -> None:
    """Export a checkpoint to ONNX (dynamic height/width, verified) or safetensors.

    Progress (on a terminal, or with --progress): one bar over the phases load, trace, check.
    """
    from srcore.cli.common import get_manager
    from srcore.engine.checkpoint import load_checkpoint, resolve_checkpoint_path
    from srcore.errors import SrcoreError
    from srcore.export import check_onnx, export_onnx, export_safetensors
    from srcore.progress import phases

    out = _output_path(resolve_checkpoint_path(checkpoint), output, fmt)
    img = _check_image(check_image) if fmt == "onnx" else None  # a bad image fails before anything is written
    names = ["load", "write"] if fmt == "safetensors" else ["load", "trace", "check"]
    with phases(names, desc=f"export {fmt}", enabled=progress) as step:
        step("load")
        loaded = load_checkpoint(checkpoint, model=model, params=parse_params(params) or None,
                                 manager=get_manager(plugins))
        if fmt == "safetensors":
            step("write")
            export_safetensors(loaded, out)
        else:
            assert img is not None
            step("trace")
            export_onnx(loaded, out, opset=opset)
            step("check")
            report = check_onnx(loaded, out, img)
    if fmt == "safetensors":
        click.echo(f"wrote {out} ({loaded.component.id})")
        return
    click.echo(f"wrote {out} ({loaded.component.id}); onnxruntime vs PyTorch on a {tuple(img.shape[-2:])} image: "
               f"max |diff| {report['max_abs_diff']:.2e}, mean {report['mean_abs_diff']:.2e}")
    if report["max_abs_diff"] > tolerance:
        raise SrcoreError(f"ONNX output differs from PyTorch by {report['max_abs_diff']:.3g} (> {tolerance})")


def _output_path(src: Path, output: str | None, fmt: str) -> Path:
    """The file to write (default: next to the input), checked before the model is loaded:
    writable, and not the input itself (an in-place export would replace the user's file)."""
    from srcore.atomic import check_writable
    from srcore.outputs import refuse_inputs_as_outputs

    option = "-o/--output" if output else "the default output (next to the input; choose one with -o)"
    out = Path(output) if output else src.with_name(f"{src.stem if src.is_file() else src.name}.{fmt}")
    check_writable(out, option)
    refuse_inputs_as_outputs([out], [src])
    return out


def _check_image(path: str | None) -> Any:
    """The image ONNX and PyTorch are compared on: the given file, else a real photograph."""
    if path is None:
        from srcore.export import sample_photo

        return sample_photo()
    from srcore.data.io import read_image

    return read_image(path)
