"""GLEAN (Chan et al., CVPR 2021): an RRDB encoder turns the LR image into multi-resolution
features and W+ latents; a frozen StyleGAN2 (the "generative latent bank") synthesises from those
latents while the encoder features are fused in at each resolution up to the input size; a
pixel-shuffle decoder combines the encoder's finest feature with the bank's features.

Follows the paper (StyleGAN2 bank, latents from the encoder, decoder) rather than the seed
collection's re-implementation (StyleGAN-v1 bank, random latents, untrained discriminator).
The bank takes user-supplied StyleGAN2 weights (rosinality layout, e.g. ``g_ema``) when given,
and is randomly initialised otherwise; which one happened is logged and kept in ``bank_source``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import torch
from pydantic import Field
from torch import nn

from srcore.errors import SrcoreError
from srcore.nn.rrdb import RRDB
from srcore.registry import StrictModel
from srcore.weights_io import load_into, read_mapping

from .stylegan2 import StyleGAN2Generator

log = logging.getLogger(__name__)


class GLEANConfig(StrictModel):
    scale: int = Field(8, description="8, 16 or 32; output size = in_size * scale.")
    in_size: int = Field(32, description="LR height = width the model accepts (GLEAN is fixed-size).")
    num_rrdbs: int = Field(23, ge=1, description="RRDBs of the encoder's feature extractor.")
    rrdb_channels: int = 64
    style_channels: int = Field(512, description="StyleGAN2 latent size.")
    num_mlps: int = 8
    channel_multiplier: int = 2
    max_channels: int = Field(512, description="Cap of the StyleGAN2 channels (512 = config-f).")
    stylegan2_weights: str | None = Field(
        None, description="StyleGAN2 generator state dict (rosinality layout) for the latent bank; random if unset."
    )
    stylegan2_key: str | None = Field(
        "g_ema", description="Entry of the weights file holding the generator, if the file wraps several."
    )


class RRDBFeatureExtractor(nn.Module):
    """ESRGAN without upsampling: conv_first -> RRDBs -> conv_body, global residual."""

    def __init__(self, in_ch: int, channels: int, num_blocks: int) -> None:
        super().__init__()
        self.conv_first = nn.Conv2d(in_ch, channels, 3, 1, 1)
        self.body = nn.Sequential(*[RRDB(channels, 32) for _ in range(num_blocks)])
        self.conv_body = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv_first(x)
        return feat + self.conv_body(self.body(feat))


def _lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(0.2, inplace=True)


def load_bank_weights(bank: StyleGAN2Generator, path: str, key: str | None) -> None:
    """Load a StyleGAN2 generator state dict into the bank (strict), with readable errors."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise SrcoreError(f"GLEAN stylegan2_weights: file not found: {p}")
    state = read_mapping(p, "GLEAN stylegan2_weights")
    if key and isinstance(state, dict) and key in state:
        state = state[key]
    load_into(bank, state, p, "GLEAN stylegan2_weights",
              f"a StyleGAN2 generator of size {bank.size} in the rosinality layout")


class GLEAN(nn.Module):
    """RGB LR (in_size x in_size, [0,1]) -> RGB HR (in_size*scale), computed in [-1, 1] internally."""

    def __init__(self, cfg: GLEANConfig) -> None:
        super().__init__()
        in_size, out_size = cfg.in_size, cfg.in_size * cfg.scale
        if in_size < 4 or in_size & (in_size - 1) or out_size > 1024:
            raise SrcoreError(
                f"GLEAN: in_size must be a power of two >= 4 and in_size*scale <= 1024 (got {in_size}, x{cfg.scale})"
            )
        self.in_size, self.style_channels = in_size, cfg.style_channels
        self.generator = StyleGAN2Generator(
            out_size, cfg.style_channels, cfg.num_mlps, cfg.channel_multiplier, max_channels=cfg.max_channels
        )
        if cfg.stylegan2_weights:
            load_bank_weights(self.generator, cfg.stylegan2_weights, cfg.stylegan2_key)
            self.bank_source = f"pretrained StyleGAN2 weights from {cfg.stylegan2_weights}"
            log.info("GLEAN latent bank: %s", self.bank_source)
        else:
            self.bank_source = "random initialisation (no stylegan2_weights given)"
            log.warning("GLEAN latent bank: %s; give model.params.stylegan2_weights for a real prior", self.bank_source)
        self.generator.requires_grad_(False)
        ch = self.generator.channels
        num_styles = int(math.log2(out_size)) * 2 - 2
        enc_res = [2**i for i in range(int(math.log2(in_size)), 1, -1)]
        self.encoder = nn.ModuleList(
            [
                nn.Sequential(
                    RRDBFeatureExtractor(3, cfg.rrdb_channels, cfg.num_rrdbs),
                    nn.Conv2d(cfg.rrdb_channels, ch[in_size], 3, 1, 1),
                    _lrelu(),
                )
            ]
        )
        for res in enc_res:
            if res > 4:
                c_out = ch[res // 2]
                self.encoder.append(
                    nn.Sequential(
                        nn.Conv2d(ch[res], c_out, 3, 2, 1), _lrelu(), nn.Conv2d(c_out, c_out, 3, 1, 1), _lrelu()
                    )
                )
            else:
                self.encoder.append(
                    nn.Sequential(
                        nn.Conv2d(ch[res], ch[res], 3, 1, 1),
                        _lrelu(),
                        nn.Flatten(),
                        nn.Linear(16 * ch[res], num_styles * cfg.style_channels),
                    )
                )
        self.fusion_out = nn.ModuleList(nn.Conv2d(2 * ch[r], ch[r], 3, 1, 1) for r in enc_res[::-1])
        self.fusion_skip = nn.ModuleList(nn.Conv2d(ch[r] + 3, 3, 3, 1, 1) for r in enc_res[::-1])
        self.decoder = nn.ModuleList()
        for res in [2**i for i in range(int(math.log2(in_size)), int(math.log2(out_size)) + 1)]:
            c_in = ch[res] if res == in_size else 2 * ch[res]
            if res < out_size:
                self.decoder.append(nn.Sequential(nn.Conv2d(c_in, 4 * ch[res * 2], 3, 1, 1), nn.PixelShuffle(2)))
            else:
                self.decoder.append(nn.Sequential(nn.Conv2d(c_in, 64, 3, 1, 1), _lrelu(), nn.Conv2d(64, 3, 3, 1, 1)))

    def train(self, mode: bool = True) -> GLEAN:
        super().train(mode)
        self.generator.eval()  # the bank is frozen
        return self

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        if h != self.in_size or w != self.in_size:
            raise SrcoreError(f"GLEAN takes {self.in_size}x{self.in_size} inputs, got {h}x{w}")
        feat = lr * 2 - 1
        feats = []
        for block in self.encoder:
            feat = block(feat)
            feats.append(feat)
        feats = feats[::-1]
        latent = feats[0].view(lr.shape[0], -1, self.style_channels)
        enc = feats[1:]
        g = self.generator
        out = g.conv1(g.input(lr.shape[0]), latent[:, 0], noise=g.noise(0))
        skip = g.to_rgb1(out, latent[:, 1])
        bank_feats = []
        i = 1
        for up_conv, conv, to_rgb in zip(g.convs[::2], g.convs[1::2], g.to_rgbs):
            if out.shape[2] <= self.in_size:
                k = (i - 1) // 2
                out = self.fusion_out[k](torch.cat([out, enc[k]], 1))
                skip = self.fusion_skip[k](torch.cat([skip, enc[k]], 1))
            out = up_conv(out, latent[:, i], noise=g.noise(i))
            out = conv(out, latent[:, i + 1], noise=g.noise(i + 1))
            skip = to_rgb(out, latent[:, i + 2], skip)
            if out.shape[2] > self.in_size:
                bank_feats.append(out)
            i += 2
        hr = enc[-1]
        for j, block in enumerate(self.decoder):
            if j > 0:
                hr = torch.cat([hr, bank_feats[j - 1]], 1)
            hr = block(hr)
        return (hr + 1) / 2


def build_glean(cfg: GLEANConfig) -> GLEAN:
    """GLEAN with a StyleGAN2 latent bank (pretrained if stylegan2_weights is given)."""
    return GLEAN(cfg)
