"""``srcore upscale CHECKPOINT INPUTS... -o DIR``: super-resolve files or folders."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

import click

from srcore.cli.common import handle_errors, plugin_option


def parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs with YAML-parsed values (``scale=4`` -> 4)."""
    import yaml

    from srcore.errors import SrcoreError

    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise SrcoreError(f"--param {item!r}: expected KEY=VALUE")
        k, v = item.split("=", 1)
        out[k.strip()] = yaml.safe_load(v)
    return out


def parse_sweep(text: str) -> list[float]:
    """``0,0.5,1`` or ``start:stop:step`` (inclusive) -> values (at least one)."""
    from srcore.errors import SrcoreError

    bad = SrcoreError(f"--t-sweep {text!r}: expected 'a,b,c' or 'start:stop:step' (step > 0, start <= stop)")
    try:
        if ":" in text:
            a, b, s = (float(v) for v in text.split(":"))
            if s <= 0 or b < a:
                raise bad
            n = round((b - a) / s) + 1
            values = [round(a + i * s, 6) for i in range(n)]
        else:
            values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise bad from None
    if not values:
        raise bad
    return values


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
MEMORY_FRACTION = 0.25
"""--max-memory auto's hard limit: this share of the RAM (CPU) or VRAM (CUDA) free at start."""
MEMORY_TARGET = 2**30
"""--max-memory auto's soft limit (estimated activations): above it a model whose tiles add at most
25% work is tiled as well. SRResCGAN x4 on a 510x339 photo: peak RSS 4.77 -> 1.44 GB, the same
output bit for bit, 1.16x the CPU time (benchmarks/bench_tiling.py)."""


def parse_memory(text: str) -> int | None:
    """``1.5G``, ``800M``, ``2GB``, bytes -> bytes; ``auto`` -> None (decided by free memory), ``0``/``off`` -> 0."""
    from srcore.errors import SrcoreError

    t = text.strip().upper().removesuffix("B").removesuffix("I")
    if t == "AUTO":
        return None
    if t in ("OFF", "NONE"):
        return 0
    unit = t[-1] if t and t[-1] in _UNITS else ""
    try:
        value = float(t[: len(t) - len(unit)])
    except ValueError:
        raise SrcoreError(f"--max-memory {text!r}: expected a size such as 1.5G, 800M or 'auto'") from None
    if value < 0:
        raise SrcoreError(f"--max-memory {text!r}: must not be negative")
    return int(value * _UNITS[unit])


def memory_limits(text: str, dev: Any) -> tuple[int | None, int | None]:
    """--max-memory as ``super_resolve``'s (max_memory, memory_target): auto = a share of the free
    memory as the hard limit and MEMORY_TARGET as the soft one; a size = that hard limit; off = none."""
    budget = parse_memory(text)
    if budget is None:
        return int(free_memory(dev) * MEMORY_FRACTION), MEMORY_TARGET
    return budget or None, None


def free_memory(dev: Any) -> int:
    """Bytes free now on ``dev``: CUDA's free VRAM, else the kernel's MemAvailable."""
    import torch

    if dev.type == "cuda":
        return int(torch.cuda.mem_get_info(dev)[0])
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30  # no /proc (macOS, Windows): a guess that tiles only very large images


def collect_inputs(inputs: tuple[str, ...]) -> list[Path]:
    """Image files of the arguments (folders listed by name); one entry per distinct file."""
    from srcore.data.io import is_image_file
    from srcore.errors import SrcoreError

    files: list[Path] = []
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            files += sorted(f for f in p.iterdir() if f.is_file() and is_image_file(f))
        elif p.is_file():
            files.append(p)
        else:
            raise SrcoreError(f"input not found: {p}")
    if not files:
        raise SrcoreError("no input images found")
    unique = {f.resolve(): f for f in reversed(files)}  # `photos photos/a.png` is one input, not two
    return [f for f in files if unique[f.resolve()] is f]


def output_name(stem: str, suffix: str, tag: str = "", kind: str = "") -> str:
    """The one naming rule of upscale's outputs: ``<stem><suffix><tag><kind>.png``."""
    return f"{stem}{suffix}{tag}{kind}.png"


def sweep_tag(c: Any, sweep: bool) -> str:
    return f"_t{c:.2f}" if sweep else ""


def planned_outputs(files: list[Path], out: Path, suffix: str, sweep: list[float] | None,
                    d_map: bool) -> dict[Path, list[Path]]:
    """Every file each input will write (results, --save-d-map maps, the --t-sweep strip)."""
    tags = [sweep_tag(c, True) for c in sweep] if sweep else [""]
    kinds = ["", "_dmap"] if d_map else [""]
    plan: dict[Path, list[Path]] = {}
    for f in files:
        names = [output_name(f.stem, suffix, t, k) for t in tags for k in kinds]
        if sweep and len(sweep) > 1:
            names.append(output_name(f.stem, suffix, "_sweep"))
        plan[f] = [out / n for n in names]
    return plan


def check_plan(plan: dict[Path, list[Path]], inputs: tuple[str, ...], out: Path, overwrite: bool,
               protected: list[Path]) -> None:
    """Refuse, before any model is loaded, a run that would replace a user's file (an input image,
    or a ``protected`` one such as the checkpoint or a condition map)."""
    from srcore.errors import SrcoreError
    from srcore.outputs import check_output_dir, refuse_collisions, refuse_existing, refuse_inputs_as_outputs

    folders = [Path(p) for p in inputs if Path(p).is_dir()]
    if any(out.resolve() == d.resolve() for d in folders):
        raise SrcoreError(f"output folder {out} is an input folder; choose another -o (originals are never replaced)")
    outputs = [o for outs in plan.values() for o in outs]
    refuse_inputs_as_outputs(outputs, [*plan, *protected])
    refuse_collisions(plan)
    if not overwrite:
        refuse_existing(outputs, "use --overwrite to replace, or --suffix to write new names")
    check_output_dir(out)


@click.command(name="upscale")
@click.argument("checkpoint", type=click.Path())
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--model", metavar="ID", help="Model id, when the file does not say (overrides detection).")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="Model parameter (with --model).")
@click.option("--tile", type=click.IntRange(min=1),
              help="Tile size in LR pixels (memory is bounded by it). Tile-exact models: context included, "
              "output identical to untiled; others: feathered blending and a warning.")
@click.option("--tile-overlap", type=click.IntRange(min=0),
              help="Overlap of feathered tiles (models that are not tile-exact) in LR pixels (default: "
              "min(32, tile/4); at most tile/2 is used). Tile-exact models use their receptive field.")
@click.option("--max-memory", default="auto", show_default=True, metavar="SIZE",
              help="Activation memory budget (1.5G, 800M, off). Above it, tile-exact models are tiled with an "
              f"output identical to untiled. auto: above {MEMORY_FRACTION:.0%} of the free RAM / VRAM, and "
              f"above {MEMORY_TARGET // 2**20} MiB (estimated) for models whose tiles cost at most 25% more "
              "work (small receptive field: SRResCGAN, FSRCNN; not a 23-block RRDB).")
@click.option("--no-progress", is_flag=True, help="No progress bars (they are off anyway when stderr is not a TTY).")
@click.option("--self-ensemble", is_flag=True, help="Average the 8 flips/rotations (x8 slower).")
@click.option("--cond", type=float, help="Scalar condition value for conditional models.")
@click.option("--cond-map", type=click.Path(exists=True, dir_okay=False), help="Per-pixel condition map (gray PNG).")
@click.option("--t", "t_value", type=float, help="Alias of --cond (FxSR's t).")
@click.option("--t-map", type=click.Path(exists=True, dir_okay=False), help="Alias of --cond-map.")
@click.option("--t-sweep", help="One output per value ('0,0.5,1' or '0:1:0.25') plus a side-by-side strip.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, cuda:1 or auto.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="onnx: run the network with ONNX Runtime on the CPU (exported to a temporary file, or "
              "--onnx-file): about 2x the throughput of eager PyTorch (FSRCNN, RRDB nb=6, SRResCGAN; "
              "benchmarks/bench_infer.py). Output within 1/255 of torch; no automatic tiling (--tile works).")
@click.option("--onnx-file", type=click.Path(exists=True, dir_okay=False),
              help="With --backend onnx: this graph (srcore export --format onnx of the checkpoint), not a new export.")
@click.option("--no-ema", is_flag=True, help="Use the raw generator weights of a srcore checkpoint, not the EMA.")
@click.option("--save-d-map", is_flag=True,
              help="Also write the per-pixel discriminator map of each result (<name>_dmap.png; white = looks "
              "real). Needs a srcore checkpoint of a GAN stage whose discriminator has a per-pixel output "
              "(FASRGAN's U-Net).")
@click.option("--suffix", default="", metavar="TEXT", help="Appended to each output's stem, e.g. _x4.")
@click.option("--overwrite", is_flag=True, help="Replace output files that exist (never the inputs).")
@plugin_option
@handle_errors
def upscale(checkpoint: str, inputs: tuple[str, ...], out_dir: str, model: str | None, params: tuple[str, ...],
            tile: int | None, tile_overlap: int | None, max_memory: str, no_progress: bool, self_ensemble: bool,
            cond: float | None, cond_map: str | None, t_value: float | None, t_map: str | None, t_sweep: str | None,
            device: str, backend: str, onnx_file: str | None, no_ema: bool, save_d_map: bool, suffix: str,
            overwrite: bool, plugins: tuple[str, ...]) -> None:
    """Super-resolve images with a checkpoint (any supported format).

    \b
    Examples:
      srcore upscale runs/demo photo.png -o out/
      srcore upscale released.pth photos/ -o out/ --tile 256
      srcore upscale fxsr.pth photo.png -o out/ --t-sweep 0:1:0.25

    Outputs are <name><suffix>.png; existing files are kept unless --overwrite, and an input is
    never replaced. All of that is checked before the model is loaded.
    """
    if "/" in suffix or os.sep in suffix:
        raise click.BadParameter(f"{suffix!r} must not contain a path separator", param_hint="'--suffix'")
    cond = t_value if t_value is not None else cond
    cond_map = t_map or cond_map
    sweep = parse_sweep(t_sweep) if t_sweep else None
    parse_memory(max_memory)  # a bad value fails before the work
    if backend == "torch" and onnx_file:
        raise click.BadParameter("is for --backend onnx", param_hint="'--onnx-file'")
    if backend == "onnx" and device not in ("auto", "cpu"):
        raise click.BadParameter(f"{device!r}: --backend onnx runs on the CPU (use --backend torch)",
                                 param_hint="'--device'")
    files = collect_inputs(inputs)
    out = Path(out_dir)
    protected = [Path(p) for p in (checkpoint, cond_map) if p and Path(p).is_file()]
    check_plan(planned_outputs(files, out, suffix, sweep, save_d_map), inputs, out, overwrite, protected)

    if backend == "onnx":
        from srcore.export import require_onnxruntime

        require_onnxruntime("--backend onnx")

    import torch  # after the checks: a refused run answers at once

    from srcore.cli.common import get_manager
    from srcore.data.io import read_image, write_image
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.engine.dist import device_for
    from srcore.errors import SrcoreError
    from srcore.infer import super_resolve
    from srcore.outputs import make_output_dir

    conditions: list[Any] = [None]
    if sweep:
        conditions = list(sweep)
    elif cond_map:
        conditions = [read_image(cond_map).mean(0, keepdim=True)]
    elif cond is not None:
        conditions = [cond]
    loaded = load_checkpoint(checkpoint, model=model, params=parse_params(params) or None,
                             manager=get_manager(plugins), prefer_ema=not no_ema)
    for note in loaded.notes:
        click.echo(f"note: {note}", err=True)
    if loaded.info.condition is None and conditions != [None]:
        raise SrcoreError(f"model {loaded.component.id} takes no condition map; drop --cond/--t options")
    if loaded.info.condition is not None and conditions == [None]:
        conditions = [0.0]
        click.echo(f"note: {loaded.component.id} takes a condition '{loaded.info.condition}'; using 0 "
                   "(set it with --cond/--t, --cond-map/--t-map or --t-sweep)", err=True)
    dev = device_for("cpu" if backend == "onnx" else device)
    loaded.module.to(dev)
    disc = None
    if save_d_map:
        from srcore.dmap import load_discriminator, save_discriminator_map

        disc = load_discriminator(checkpoint, manager=get_manager(plugins)).to(dev)
    budget, target = memory_limits(max_memory, dev)
    with contextlib.ExitStack() as stack, show_warnings(), Progress(len(files), disable=no_progress) as bar:
        model: Any = loaded
        if backend == "onnx":
            model, budget, target = _onnx_model(loaded, onnx_file, stack), None, None
        make_output_dir(out)  # after everything that can fail before the first image
        for f in files:
            lr = read_image(f)
            results = []
            for c in conditions:
                sr = super_resolve(model, lr, cond=c, tile=tile, self_ensemble=self_ensemble, overlap=tile_overlap,
                                   device=dev, max_memory=budget, progress=bar.forwards,
                                   memory_target=target)[0]
                tag = sweep_tag(c, sweep is not None)
                write_image(out / output_name(f.stem, suffix, tag), sr)
                if disc is not None:
                    save_discriminator_map(out / output_name(f.stem, suffix, tag, "_dmap"), disc, sr)
                results.append(sr)
            if sweep and len(results) > 1:
                from srcore.engine.monitor import with_titles

                strip = torch.cat([torch.nn.functional.pad(r, (0, 4), value=1.0) for r in results], dim=-1)
                titles = [f"{loaded.info.condition or 't'} = {c:g}" for c in conditions]
                write_image(out / output_name(f.stem, suffix, "_sweep"), with_titles(strip, titles, sr.shape[-1] + 4))
            bar.image_done()
    click.echo(f"wrote {len(files) * len(conditions)} image(s) to {out}")


def _onnx_model(loaded: Any, onnx_file: str | None, stack: contextlib.ExitStack) -> Any:
    """The ONNX Runtime upscaler of ``loaded``: the given graph, else an export to a temporary file."""
    from srcore.export import export_onnx, onnx_upscaler

    if onnx_file:
        return onnx_upscaler(loaded, Path(onnx_file))
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="srcore-onnx-")))
    return onnx_upscaler(loaded, export_onnx(loaded, tmp / "model.onnx"))


class Progress:
    """Progress on stderr: one bar over the images, and for an image that takes more than
    ``delay`` seconds one over its forwards (tiles, self-ensemble passes). Off when asked, and
    when stderr is not a terminal (tqdm's ``disable=None``)."""

    def __init__(self, images: int, disable: bool, delay: float = 3.0) -> None:
        import sys

        from tqdm.auto import tqdm

        self._tqdm, self._delay, self._off = tqdm, delay, True if disable else None
        self._images = tqdm(total=images, unit="img", disable=True if images < 2 else self._off, file=sys.stderr)
        self._inner: Any = None

    def forwards(self, done: int, total: int) -> None:
        """``super_resolve``'s callback: ``done`` of ``total`` forwards of the current image."""
        import sys

        if self._inner is None:
            self._inner = self._tqdm(total=total, unit="tile", leave=False, delay=self._delay, disable=self._off,
                                     file=sys.stderr)
        self._inner.total = total
        self._inner.update(done - self._inner.n)

    def image_done(self) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        self._images.update(1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._inner is not None:
            self._inner.close()
        self._images.close()


def show_warnings() -> Any:
    """Tiling warnings as one ``warning: ...`` line on stderr (not Python's file:line format)."""
    import contextlib
    import warnings

    from srcore.infer import TilingWarning

    @contextlib.contextmanager
    def scope() -> Any:
        original = warnings.showwarning

        def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
            if issubclass(category, TilingWarning):
                click.echo(f"warning: {message}", err=True)
            else:
                original(message, category, *args, **kwargs)

        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = original

    return scope()
