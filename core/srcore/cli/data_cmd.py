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
@click.option("--output", "-o", type=click.Path(), help="Output: HDF5 file (.h5), or with --subimages an LMDB (.lmdb).")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing output file or LMDB (kept until the new one is done); not PNG folders.")
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
@click.option("--subimages", type=int, metavar="SIZE",
              help="BasicSR's extract_subimages: SIZE x SIZE crops of every image (e.g. 480) instead of patches.")
@click.option("--step", type=int, help="--subimages: step of the crops [default SIZE/2].")
@click.option("--thresh-size", type=click.IntRange(min=0), default=0, show_default=True,
              help="--subimages: skip a border crop when the remainder is at most this (0: cover every pixel).")
@click.option("--scale", type=click.IntRange(min=1), help="--subimages: LR scale (LR sub-images are SIZE/scale).")
@click.option("--lr-dir", help="--subimages: folder of LR images paired by name (else LR = MATLAB bicubic).")
@click.option("--raw", is_flag=True, help="--subimages LMDB: raw uint8 pixels, not PNG (faster; srcore-only).")
@click.option("--png-level", type=click.IntRange(0, 9),
              help="--subimages PNG compression [BasicSR's: 3 for folders, 1 for LMDB].")
@click.option("--shards", type=click.IntRange(min=1), metavar="N",
              help="HDF5: write OUT.h5.shards/ with N patches per file (multi-node runs read their own).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes: writing --shards in parallel; with --subimages, cutting and encoding images.")
@handle_errors
def prepare(
    input_: str, data_root: tuple[str, ...], number: int | None, output: str | None, overwrite: bool, use_h5py: bool,
    output_hr: str | None, output_lr: str | None, width: int, height: int, stride: int, padding: int,
    ufs: tuple[str, ...], scales: tuple[str, ...], upsampling: tuple[str, ...], rotations: tuple[str, ...],
    flips: tuple[str, ...], single_y: bool, same_size: bool, seed: int, no_shuffle: bool, cumulative: bool,
    kernel_size: int | None, subimages: int | None, step: int | None, thresh_size: int, scale: int | None,
    lr_dir: str | None, raw: bool, png_level: int | None, shards: int | None, jobs: int,
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

    \b
    Sub-images (BasicSR's DIV2K preparation; LMDB in BasicSR's layout, read by data.train.hr: X.lmdb):
      srcore data prepare -i DIV2K_train_HR --subimages 480 --step 240 -o DIV2K_train_HR_sub.lmdb
      srcore data prepare -i DIV2K_train_HR --subimages 480 --step 240 --scale 4 \\
        --lr-dir DIV2K_train_LR_bicubic/X4 -o HR_sub.lmdb --output-lr LR_X4_sub.lmdb
    """
    from tqdm import tqdm

    ctx = click.get_current_context()
    given = {n for n in ctx.params if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT}
    if subimages is not None:
        _prepare_subimages(given, input_, data_root, number, output, overwrite, output_hr, output_lr, subimages,
                           step, thresh_size, scale, lr_dir, raw, png_level, shards, jobs)
        return
    only_sub = sorted(given & SUBIMAGE_ONLY)
    if only_sub:
        raise SrcoreError(f"{', '.join(_flag(n) for n in only_sub)}: only with --subimages SIZE")
    if (shards or jobs > 1) and not output:
        raise SrcoreError("--shards and --jobs write HDF5: give --output FILE.h5")
    if jobs > 1 and not shards:
        raise SrcoreError("--jobs: patches are written in parallel only as --shards N (or use --subimages)")

    from srcore.data.h5 import is_h5
    from srcore.data.prepare import NO_SHUFFLED_SHARDS, PrepareOptions, prepare_h5, prepare_png, shards_dir
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
    if shards and opts.shuffle:
        raise SrcoreError(NO_SHUFFLED_SHARDS)
    if output and not is_h5(output):
        raise SrcoreError(f"--output {output}: patches go to an HDF5 file (.h5); LMDB (.lmdb) is for --subimages")
    check_targets([shards_dir(Path(output))] if shards and output else targets, bool(output), overwrite, opts)
    root = list(data_root) if data_root else default_data_root()
    src = resolve_set(input_, root)
    total = announce_plan(src, opts, targets[0], bool(output))
    with signals_interrupt(), tqdm(total=total, unit="patch", desc="prepare", disable=None, file=sys.stderr) as bar:
        if output:
            res = prepare_h5(src, Path(output), opts, progress=bar.update, shards=shards, jobs=jobs)
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


SUBIMAGE_ONLY = frozenset({"step", "thresh_size", "scale", "lr_dir", "raw", "png_level"})
PATCH_ONLY = frozenset({"use_h5py", "width", "height", "stride", "padding", "ufs", "scales", "upsampling", "rotations",
                        "flips", "single_y", "same_size", "seed", "no_shuffle", "cumulative", "kernel_size"})


def _flag(name: str) -> str:
    """The option of a parameter name, as the user types it (``ufs`` -> ``--upscale-factor``)."""
    for p in click.get_current_context().command.params:
        if p.name == name:
            return p.opts[0]
    return name


def _prepare_subimages(
    given: set[str], input_: str, data_root: tuple[str, ...], number: int | None, output: str | None,
    overwrite: bool, output_hr: str | None, output_lr: str | None, size: int, step: int | None, thresh: int,
    scale: int | None, lr_dir: str | None, raw: bool, png_level: int | None, shards: int | None, jobs: int,
) -> None:
    """``data prepare --subimages``: check every option and image first, then write one output."""
    from tqdm import tqdm

    from srcore.data.h5 import is_h5
    from srcore.data.lmdb_store import is_lmdb, write_lmdb
    from srcore.data.prepare import select_files, shards_dir
    from srcore.data.sets import default_data_root, resolve_set
    from srcore.data.subimages import (
        SubimageOptions,
        estimate_bytes,
        plan_subimages,
        write_folders,
        write_h5_file,
    )
    from srcore.outputs import check_free_space, format_bytes

    problems = []
    bad = sorted(given & PATCH_ONLY)
    if bad:
        problems.append(f"{', '.join(_flag(n) for n in bad)}: not with --subimages (patch options)")
    kind = "h5" if output and is_h5(output) else "lmdb" if output and is_lmdb(output) else "folder"
    if bool(output) == bool(output_hr):
        problems.append("give one output: --output X.lmdb, --output X.h5 or --output-hr FOLDER")
    elif output and kind == "folder":
        problems.append(f"--output {output}: use a .lmdb or .h5 name (or --output-hr FOLDER for PNG files)")
    if kind == "h5" and output_lr:
        problems.append("--output X.h5 holds the LR sub-images itself: drop --output-lr")
    if kind == "lmdb" and output_lr and not is_lmdb(output_lr):
        problems.append(f"--output-lr {output_lr}: the LR of an LMDB goes to an LMDB too (.lmdb)")
    make_lr = kind == "h5" or bool(output_lr)
    if make_lr and scale is None:
        problems.append("LR sub-images (--output X.h5 or --output-lr) need --scale")
    if lr_dir and not make_lr:
        problems.append("--lr-dir: nowhere to write LR sub-images (give --output-lr, or --output X.h5)")
    if raw and kind != "lmdb":
        problems.append("--raw stores raw pixels in an LMDB: only with --output X.lmdb")
    if png_level is not None and kind == "h5":
        problems.append("--png-level: an HDF5 file stores pixels, not PNG")
    if shards and kind != "h5":
        problems.append("--shards writes HDF5 shards: only with --output X.h5")
    opts = SubimageOptions(size, step if step is not None else max(size // 2, 1), thresh, scale)
    problems += opts.problems()
    if problems:
        raise SrcoreError("; ".join(problems))
    main = Path(output or output_hr)  # type: ignore[arg-type]
    targets = [shards_dir(main) if shards else main] + ([Path(output_lr)] if output_lr else [])
    check_subimage_targets(targets, overwrite, kind == "folder")
    root = list(data_root) if data_root else default_data_root()
    src = resolve_set(input_, root)
    files = select_files(src, number)
    lr_files = None
    if lr_dir:
        from srcore.data.datasets import match_lr_files  # imports torch: only when pairing

        lr_files = match_lr_files(files, resolve_set(lr_dir, root), scale or 1)
    plan = plan_subimages(files, opts, lr_files, make_lr)
    needed = estimate_bytes(plan, kind, shards)
    free = check_free_space(main, needed)
    lr_note = f", lr ({plan.lr_size}, {plan.lr_size}, 3)" if make_lr else ""
    click.echo(f"{plan.total} sub-images from {len(files)} image(s), hr ({size}, {size}, 3){lr_note}: "
               f"about {format_bytes(needed)} ({format_bytes(free)} free)", err=True)
    with signals_interrupt(), tqdm(total=plan.total, unit="sub-image", desc="prepare", disable=None,
                                   file=sys.stderr) as bar:
        if kind == "h5":
            written = write_h5_file(plan, src, main, shards=shards, jobs=jobs, progress=bar.update)
        elif kind == "lmdb":
            write_lmdb(plan, main, Path(output_lr) if output_lr else None, level=1 if png_level is None else png_level,
                       raw=raw, progress=bar.update, jobs=jobs)
            written = main
        else:
            write_folders(plan, main, Path(output_lr) if output_lr else None,
                          level=3 if png_level is None else png_level, progress=bar.update, jobs=jobs)
            written = main
    also = f" and {output_lr}" if output_lr else ""
    click.echo(f"wrote {plan.total} sub-images from {len(files)} image(s) to {written}{also}")


def check_subimage_targets(targets: list[Path], overwrite: bool, folders: bool) -> None:
    """Refuse existing outputs unless --overwrite (PNG folders: unless empty, as in patch mode, even
    with --overwrite); fail early on an unwritable place; clear the temporary outputs of killed runs."""
    from srcore.data.prepare import check_png_folders
    from srcore.outputs import check_output_dir, refuse_existing, remove_stale_temps

    if len(set(targets)) < len(targets):
        raise SrcoreError(f"the HR and LR outputs are the same path: {targets[0]}")
    if folders:
        check_png_folders(*targets)
    elif not overwrite:
        refuse_existing(targets, "use --overwrite to replace it")
    for t in targets:
        check_output_dir(t.parent, t)
        for p in remove_stale_temps(t.parent):
            click.echo(f"removed {p}, left by a run that was killed", err=True)
from srcore.cli import data_bench_cmd  # noqa: E402, F401  (registers `data bench` on the group)
