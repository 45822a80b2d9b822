"""``srcore data prepare``: HDF5 or PNG training patches with the options of seed004's data_aug.py."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


def is_list_value(token: str) -> bool:
    """A token that belongs to the list before it: not an option (negative numbers are values)."""
    if not token.startswith("-"):
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


def join_list_values(args: Sequence[str], names: frozenset[str]) -> list[str]:
    """``--rotations 0 90 180`` -> ``--rotations 0,90,180`` for the options in ``names``."""
    out: list[str] = []
    rest = list(args)
    while rest:
        token = rest.pop(0)
        if token == "--":
            return [*out, token, *rest]
        name, eq, first = token.partition("=")
        if name not in names:
            out.append(token)
            continue
        values = [first] if eq else []
        while rest and is_list_value(rest[0]):
            values.append(rest.pop(0))
        out += [name, ",".join(values)] if values else [token]
    return out


class ListOptionsCommand(click.Command):
    """data_aug.py's lists were argparse ``nargs='+'``: its command lines (``-uf 2 3 4``) work as
    written. Click cannot take several values per option occurrence, so the values that follow
    a repeatable option are joined with commas before parsing."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        names = frozenset(n for p in self.params if isinstance(p, click.Option) and p.multiple for n in p.opts)
        return super().parse_args(ctx, join_list_values(args, names))


class Interrupted(SrcoreError):
    """SIGINT/SIGTERM: raised in the main thread so that the temporary output is removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}; nothing was written")
        self.exit_code = 128 + signum


@contextmanager
def signals_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: Any) -> None:
        for s in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the cleanup short
            signal.signal(s, signal.SIG_IGN)
        raise Interrupted(signum)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@data.command(cls=ListOptionsCommand)
@click.option("--input", "-i", "input_", required=True, help="Folder of source images or a named set.")
@click.option("--data-root", "data_root", multiple=True, type=click.Path(),
              help="Root of named sets, repeatable (searched in order) [env SRCORE_DATA_ROOT, else ../shared/data].")
@click.option("--number", "-n", type=click.IntRange(min=1), help="Use the first N images (sorted by name).")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="HDF5 output file (.h5).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file (kept until the new one is done).")
@click.option("--use-h5py", "--use_h5py", is_flag=True, help="data_aug.py compatibility (implied by --output).")
@click.option("--output-hr", "--output_HR", type=click.Path(file_okay=False), help="PNG mode: folder of HR patches.")
@click.option("--output-lr", "--output_LR", type=click.Path(file_okay=False), help="PNG mode: folder of LR patches.")
@click.option("--width", "-W", type=int, default=41, show_default=True, help="HR patch width.")
@click.option("--height", "-H", type=int, default=41, show_default=True, help="HR patch height.")
@click.option("--stride", type=int, default=41, show_default=True, help="Step of the crop grid (HR pixels).")
@click.option("--padding", type=int, default=0, show_default=True, help="Shrink each HR box by P on every side.")
@click.option("--upscale-factor", "-uf", "ufs", multiple=True, default=("2",), show_default=True, metavar="LIST",
              help="Scale factor(s), e.g. -uf 2 3 4.")
@click.option("--scales", multiple=True, default=("1.0",), show_default=True, metavar="LIST",
              help="Image rescales before cutting, e.g. --scales 1.0 0.7 0.5.")
@click.option("--upsampling", multiple=True, default=("bicubic",), show_default=True, metavar="LIST",
              help="LR resampling: bicubic, bilinear, nearest, antialias (PIL) or matlab.")
@click.option("--rotations", multiple=True, default=("0",), show_default=True, metavar="LIST",
              help="Rotations in degrees, e.g. --rotations 0 90 180 270.")
@click.option("--flips", "--flip", multiple=True, default=("0",), show_default=True, metavar="LIST",
              help="0 none, 1 left-right, 2 top-bottom, 3 both.")
@click.option("--single-y", "--single_y", is_flag=True, help="Keep only Y (MATLAB BT.601, rounded).")
@click.option("--same-size", "--same_size", is_flag=True, help="LR upsampled back to the HR size (SRCNN/VDSR).")
@click.option("--seed", type=int, default=1234, show_default=True, help="Seed of the patch shuffle.")
@click.option("--no-shuffle", is_flag=True, help="Keep patches in generation order.")
@click.option("--cumulative", is_flag=True, help="Reproduce data_aug.py's cumulative flips/rotations quirk.")
@click.option("--kernel-size", "--kernel_size", type=int, help="data_aug.py compatibility; unused there too.")
@handle_errors
def prepare(
    input_: str, data_root: tuple[str, ...], number: int | None, output: str | None, overwrite: bool, use_h5py: bool,
    output_hr: str | None, output_lr: str | None, width: int, height: int, stride: int, padding: int,
    ufs: tuple[str, ...], scales: tuple[str, ...], upsampling: tuple[str, ...], rotations: tuple[str, ...],
    flips: tuple[str, ...], single_y: bool, same_size: bool, seed: int, no_shuffle: bool, cumulative: bool,
    kernel_size: int | None,
) -> None:
    """Cut training patches from a folder of images (streamed; bounded memory; atomic output).

    LIST options take values separated by spaces or commas, or repeated (-uf 2 3 4 = -uf 2,3,4 =
    -uf 2 -uf 3 -uf 4), so data_aug.py's command lines work as written. The patch count and
    output size are printed first; a run that does not fit on the disk is refused. An interrupted
    run or a full disk removes the temporary output (.NAME.incomplete-PID); those of killed runs
    are removed by the next run.

    \b
    VDSR (seed004 README):
      srcore data prepare -i DIR -o vdsr.h5 --upsampling nearest bicubic -W 41 -H 41 --stride 41 \\
        -uf 2 3 4 --scales 1.0 0.7 0.5 --rotations 0 90 180 270 --flips 0 1 2 3 --same-size --single-y
    """
    from tqdm import tqdm

    from srcore.data.prepare import PrepareOptions, prepare_h5, prepare_png
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
    targets = [Path(output)] if output else [Path(output_hr), Path(output_lr)]  # type: ignore[arg-type]
    check_targets(targets, bool(output), overwrite, opts)
    root = list(data_root) if data_root else default_data_root()
    src = resolve_set(input_, root)
    total = announce_plan(src, opts, targets[0], bool(output))
    with signals_interrupt(), tqdm(total=total, unit="patch", desc="prepare", disable=None, file=sys.stderr) as bar:
        if output:
            res = prepare_h5(src, Path(output), opts, progress=bar.update)
        else:
            res = prepare_png(src, targets[0], targets[1], opts, progress=bar.update)
    click.echo(f"wrote {res.patches} patch pairs from {res.images} image(s) to {res.output}: "
               f"hr {res.hr_shape}, lr {res.lr_shape}")


def check_targets(targets: list[Path], h5: bool, overwrite: bool, opts: Any) -> None:
    """Before any image is read: refuse to replace a file silently, fail early on an unwritable
    place, and clear the temporary outputs of killed runs."""
    from srcore.data.prepare import check_h5_shapes, check_png_folders
    from srcore.outputs import check_output_dir, refuse_existing, remove_stale_temps

    if h5:
        check_h5_shapes(opts)
        if not overwrite:
            refuse_existing(targets, "use --overwrite to replace it")
    else:
        check_png_folders(*targets)
    for t in targets:
        check_output_dir(t.parent, t)
        for p in remove_stale_temps(t.parent):
            click.echo(f"removed {p}, left by a run that was killed", err=True)


def announce_plan(src: Path, opts: Any, target: Path, h5: bool) -> int:
    """Print what the run will write and refuse it when it cannot fit on the disk."""
    from srcore.data.prepare import plan_prepare
    from srcore.outputs import check_free_space, format_bytes

    plan = plan_prepare(src, opts)
    needed = plan.h5_bytes if h5 else plan.png_bytes
    free = check_free_space(target, needed)
    click.echo(f"{plan.patches} patch pairs from {len(plan.files)} image(s), hr {plan.hr_patch}, "
               f"lr {plan.lr_patch}: about {format_bytes(needed)} ({format_bytes(free)} free)", err=True)
    return plan.patches
