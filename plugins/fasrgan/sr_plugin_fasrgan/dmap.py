"""FASRGAN's per-pixel discriminator map as an image, the point of the method made visible.

``d_map`` runs the U-Net's decoder branch (no image head, so any image size works) in eval
mode and returns sigmoid(mask) averaged over the colour channels: 1 = the pixel looks real to
D, 0 = fake. During training the generator's attention L1 weights each pixel by
``1 - sigmoid(mask)``, so dark regions of the map are where G is pushed hardest.
"""

from __future__ import annotations

from srcore.dmap import discriminator_map, load_discriminator, save_discriminator_map

__all__ = ["d_map", "load_discriminator", "main", "save_d_map"]


# The logic lives in the core (``srcore.dmap``, also behind ``srcore upscale --save-d-map``);
# these names are kept for the plugin's users.
d_map = discriminator_map
save_d_map = save_discriminator_map


def main(argv: list[str] | None = None) -> int:
    """``python -m sr_plugin_fasrgan.dmap --checkpoint RUN image.png -o map.png``: super-resolve the
    image with the run's generator and write D's per-pixel map of the result (``--no-sr``: of the
    image itself)."""
    import argparse

    from srcore.data.io import read_image, write_image
    from srcore.errors import SrcoreError

    ap = argparse.ArgumentParser(prog="python -m sr_plugin_fasrgan.dmap", description=main.__doc__)
    ap.add_argument("image")
    ap.add_argument("--checkpoint", required=True, help="run folder, <run>/last or a checkpoint folder")
    ap.add_argument("-o", "--output", required=True, help="PNG of the map")
    ap.add_argument("--no-sr", action="store_true", help="map the given image instead of its SR")
    ap.add_argument("--save-sr", help="also write the SR image here")
    args = ap.parse_args(argv)
    try:
        disc = load_discriminator(args.checkpoint)
        image = read_image(args.image)
        if not args.no_sr:
            from srcore.engine.checkpoint import load_checkpoint
            from srcore.infer import super_resolve

            image = super_resolve(load_checkpoint(args.checkpoint), image)[0]
            if args.save_sr:
                write_image(args.save_sr, image)
        save_d_map(args.output, disc, image)
    except SrcoreError as exc:
        print(f"error: {exc}")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
