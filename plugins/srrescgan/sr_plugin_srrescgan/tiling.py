"""Exact tiling of SRResCGAN despite its image-wide statistics (srcore's ``TileSplit`` protocol).

Two parts of the generator see the whole image: the wavelet noise estimate sigma (a median over
every pixel) and the L2-ball projection of the residual (its norm over every pixel). What lies
between them is local: the 5x5 encoder, the 3x3 blocks, the 5x5 decoder. ``tile_split``
computes the bilinear upsampling and sigma once on the whole image, lets srcore run the conv
residual tile by tile on slices of that upsampled image (each tile with ``receptive_field`` LR
pixels of context, cropped to its core) and applies the projection, the subtraction and the clip
to the assembled residual: the same operations on the same values as the untiled forward, so
the same bits, with memory bounded by one tile's 64-channel activations instead of the image's.
(Slicing the one upsampled image, rather than upsampling each tile, also keeps x3 exact: its
bilinear source positions, (j + 0.5) / 3 in float, round differently at other offsets.)
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from sr_plugin_srrescgan.generator import SRResCGAN, l2_ball_projection
from srcore.infer import TileSplit


def receptive_field(depth: int, scale: int) -> int:
    """LR pixels each side an output pixel's residual depends on: the encoder (2 HR pixels),
    ``depth`` blocks of two 3x3 convs (2 each) and the decoder (2), in whole LR pixels."""
    return -(-(2 + 2 * depth + 2) // scale)


class TileableSRResCGAN(SRResCGAN):
    """SRResCGAN with srcore's ``tile_split`` hook; the network and its state dict are unchanged."""

    def tile_split(self, x: torch.Tensor) -> TileSplit:
        """``x``: the whole [0, 1] LR image as srcore feeds it untiled (padded)."""
        s, m = self.scale, self.model
        up = F.interpolate(x * 255.0, scale_factor=s, mode="bilinear", align_corners=False)
        sigma = self.noise_estimator(up) * 255.0

        def local(xt: torch.Tensor, origin: tuple[int, int]) -> torch.Tensor:
            (top, left), (h, w) = origin, xt.shape[-2:]
            ut = up[..., top * s : (top + h) * s, left * s : (left + w) * s]
            return m.conv_out(m.layer1(m.conv1(F.pad(ut, (2, 2, 2, 2), mode="reflect"))))

        def finish(r: torch.Tensor) -> torch.Tensor:
            out = up.sub_(l2_ball_projection(r, sigma, self.alpha))  # in place: one HR image less
            return (out.clamp_(0.0, 255.0) if self.clip else out).div_(255.0)

        return TileSplit(local, finish, receptive_field(len(m.layer1), s))
