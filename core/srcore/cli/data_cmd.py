"""``srcore data prepare``: HDF5 or PNG training patches with the options of seed004's data_aug.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from srcore.cli.common import handle_errors
from srcore.errors import SrcoreError


@click.group()
def data() -> None:
    """Prepare training data."""


def _split(values: tuple[str, ...], cast: Any, name: str) -> list[Any]:
    """Repeatable options that also accept comma/space-separated lists: --flips 0,1,2 or --flips 0 --flips 1."""
    out = []
    for v in values:
        for part in v.replace(",", " ").split():
            try:
                out.append(cast(part))
            except ValueError:
                raise SrcoreError(f"{name}: '{part}' is not a valid value") from None
    return out


@data.command()
@click.option("--input", "-i", "input_", required=True, help="Folder of source images or a named set.")
@click.option("--data-root", type=click.Path(), help="Root of named sets [env SRCORE_DATA_ROOT, else ../shared/data].")
@click.option("--number", "-n", type=click.IntRange(min=1), help="Use the first N images (sorted by name).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="HDF5 output file (.h5).")
@click.option("--use-h5py", "--use_h5py", is_flag=True, help="data_aug.py compatibility (implied by --output).")
@click.option("--output-hr", "--output_HR", type=click.Path(file_okay=False), help="PNG mode: folder of HR patches.")
@click.option("--output-lr", "--output_LR", type=click.Path(file_okay=False), help="PNG mode: folder of LR patches.")
@click.option("--width", "-W", type=int, default=41, show_default=True, help="HR patch width.")
@click.option("--height", "-H", type=int, default=41, show_default=True, help="HR patch height.")
@click.option("--stride", type=int, default=41, show_default=True, help="Step of the crop grid (HR pixels).")
@click.option("--padding", type=int, default=0, show_default=True, help="Shrink each HR box by P on every side.")
@click.option("--upscale-factor", "-uf", "ufs", multiple=True, default=("2",), show_default=True,
              help="Scale factor(s), e.g. -uf 2,3,4.")
@click.option("--scales", multiple=True, default=("1.0",), show_default=True,
              help="Image rescales before cutting, e.g. --scales 1.0,0.7,0.5.")
@click.option("--upsampling", multiple=True, default=("bicubic",), show_default=True,
              help="LR resampling: bicubic, bilinear, nearest, antialias (PIL) or matlab.")
@click.option("--rotations", multiple=True, default=("0",), show_default=True, help="Rotations in degrees.")
@click.option("--flips", "--flip", multiple=True, default=("0",), show_default=True,
              help="0 none, 1 left-right, 2 top-bottom, 3 both.")
@click.option("--single-y", "--single_y", is_flag=True, help="Keep only Y (MATLAB BT.601, rounded).")
@click.option("--same-size", "--same_size", is_flag=True, help="LR upsampled back to the HR size (SRCNN/VDSR).")
@click.option("--seed", type=int, default=1234, show_default=True, help="Seed of the patch shuffle.")
@click.option("--no-shuffle", is_flag=True, help="Keep patches in generation order.")
@click.option("--cumulative", is_flag=True, help="Reproduce data_aug.py's cumulative flips/rotations quirk.")
@click.option("--kernel-size", "--kernel_size", type=int, help="data_aug.py compatibility; unused there too.")
@handle_errors
def prepare(
    input_: str, data_root: str | None, number: int | None, output: str | None, use_h5py: bool,
    output_hr: str | None, output_lr: str | None, width: int, height: int, stride: int, padding: int,
    ufs: tuple[str, ...], scales: tuple[str, ...], upsampling: tuple[str, ...], rotations: tuple[str, ...],
    flips: tuple[str, ...], single_y: bool, same_size: bool, seed: int, no_shuffle: bool, cumulative: bool,
    kernel_size: int | None,
) -> None:
    """Cut training patches from a folder of images (streamed; bounded memory; atomic output).

    \b
    VDSR (seed004 README):
      srcore data prepare -i DIR -o vdsr.h5 --upsampling nearest,bicubic -W 41 -H 41 --stride 41 \\
        -uf 2,3,4 --scales 1.0,0.7,0.5 --rotations 0,90,180,270 --flips 0,1,2,3 --same-size --single-y
    """
    from tqdm import tqdm

    from srcore.data.prepare import PrepareOptions, count_patches, image_sizes, prepare_h5, prepare_png, select_files
    from srcore.data.sets import default_data_root, resolve_set

    if bool(output) == bool(output_hr or output_lr):
        raise SrcoreError("give either --output FILE.h5 or both --output-hr and --output-lr")
    if (output_hr is None) != (output_lr is None):
        raise SrcoreError("--output-hr and --output-lr go together")
    opts = PrepareOptions(
        width=width, height=height, stride=stride, padding=padding,
        upscale_factors=_split(ufs, int, "--upscale-factor"), scales=_split(scales, float, "--scales"),
        upsampling=[m.lower() for m in _split(upsampling, str, "--upsampling")],
        rotations=_split(rotations, float, "--rotations"), flips=_split(flips, int, "--flips"),
        single_y=single_y, same_size=same_size, number=number, seed=seed, shuffle=not no_shuffle,
        cumulative=cumulative,
    )
    opts.validate()
    root = Path(data_root) if data_root else default_data_root()
    src = resolve_set(input_, root)
    files = select_files(src, number)
    total = count_patches(image_sizes(files), opts)
    with tqdm(total=total, unit="patch", desc="prepare", disable=None, file=sys.stderr) as bar:
        if output:
            res = prepare_h5(src, Path(output), opts, progress=bar.update)
        else:
            assert output_hr and output_lr
            res = prepare_png(src, Path(output_hr), Path(output_lr), opts, progress=bar.update)
    click.echo(f"wrote {res.patches} patch pairs from {res.images} image(s) to {res.output}: "
               f"hr {res.hr_shape}, lr {res.lr_shape}")
