"""SRResCGAN generator: architecture, released weights, and equality with the official forward.

Two references for the official ``Generator.forward`` of RaoUmer/SRResCGAN
(srrescgan_code_demo/models/SRResCGAN.py). ``ref_forward`` re-implements it functionally from
the state dict in float64, in a different style from the plugin: explicit weight-norm
arithmetic, PReLU by ``torch.where``, the wavelet noise estimate in NumPy with its own strided
correlation and lower median. ``Official`` is the official module code itself (float32,
``nn.Conv2d`` wrapped by ``torch.nn.utils.weight_norm``, the same operations in the same order),
run as test_srrescgan.py runs it, for the pixel-for-pixel comparison of saved results.
"""

from __future__ import annotations

import math
import warnings

import cv2
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from sr_plugin_srrescgan.generator import SRResCGAN

DB7_HIGH = np.array([
    -0.07785205408506236, 0.39653931948230575, -0.7291320908465551, 0.4697822874053586,
    0.14390600392910627, -0.22403618499416572, -0.07130921926705004, 0.0806126091510659,
    0.03802993693503463, -0.01657454163101562, -0.012550998556013784, 0.00042957797300470274,
    0.0018016407039998328, 0.0003537138000010399,
])  # fmt: skip


def ref_sigma(u: np.ndarray) -> float:
    """Official Wmad_estimator on one image (C,H,W) in 0..255, returned in 0..255 units."""
    x = u / 255 if u.max() > 1 else u
    k = len(DB7_HIGH)
    sig = 0.0
    for ch in x:
        p = np.pad(ch, ((k // 2, k // 2), (0, 0)), mode="reflect")
        rows = (p.shape[0] - k) // 2 + 1
        v = np.stack([DB7_HIGH @ p[2 * i : 2 * i + k, :] for i in range(rows)])  # (rows, W)
        p = np.pad(v, ((0, 0), (k // 2, k // 2)), mode="reflect")
        cols = (p.shape[1] - k) // 2 + 1
        hh = np.stack([p[:, 2 * j : 2 * j + k] @ DB7_HIGH for j in range(cols)], axis=1)
        a = np.sort(np.abs(hh).ravel())
        sig += a[(a.size - 1) // 2] / 0.6745  # torch.median: the lower middle value
    return sig / x.shape[0] * 255.0


def ref_forward(sd: dict[str, torch.Tensor], lr255: torch.Tensor, scale: int = 4) -> torch.Tensor:
    def wn(prefix: str) -> torch.Tensor:
        v, g = sd[prefix + ".weight_v"].double(), sd[prefix + ".weight_g"].double()
        norm = torch.sqrt((v**2).sum(dim=(1, 2, 3), keepdim=True))
        return g * v / norm

    def prelu(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return torch.where(x >= 0, x, a.double().reshape(1, -1, 1, 1) * x)

    def conv(x: torch.Tensor, prefix: str, pad: int) -> torch.Tensor:
        return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), wn(prefix), sd[prefix + ".bias"].double())

    up = F.interpolate(lr255.double(), scale_factor=scale, mode="bilinear", align_corners=False)
    sigma = ref_sigma(up[0].numpy())
    out = conv(up, "model.conv1", 2)
    for i in range(5):
        b = f"model.layer1.{i}"
        h = conv(prelu(out, sd[b + ".relu1.weight"]), b + ".conv1", 1)
        h = conv(prelu(h, sd[b + ".relu2.weight"]), b + ".conv2", 1)
        out = h if i == 0 else out + h
    r = F.conv_transpose2d(out, wn("model.conv_out"), sd["model.conv_out.bias"].double(), padding=2)
    eps = math.exp(sd["alpha"].item()) * sigma * math.sqrt(r.numel() - 1)
    r = r * (eps / max(r.norm().item(), eps))
    return (up - r).clamp(0, 255)


def _weight_norm(module: nn.Module) -> nn.Module:
    with warnings.catch_warnings():  # deprecated in favour of parametrizations, but what the original used
        warnings.simplefilter("ignore")
        return nn.utils.weight_norm(module)


class OfficialBlock(nn.Module):
    def __init__(self, shortcut: bool) -> None:
        super().__init__()
        self.shortcut = shortcut
        self.conv1 = _weight_norm(nn.Conv2d(64, 64, 3))
        self.relu1 = nn.PReLU(num_parameters=64, init=0.1)
        self.relu2 = nn.PReLU(num_parameters=64, init=0.1)
        self.conv2 = _weight_norm(nn.Conv2d(64, 64, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.pad(self.relu1(x), (1, 1, 1, 1), "reflect"))
        out = self.conv2(F.pad(self.relu2(out), (1, 1, 1, 1), "reflect"))
        return x + out if self.shortcut else out


class OfficialResCNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _weight_norm(nn.Conv2d(3, 64, 5))
        self.layer1 = nn.Sequential(*[OfficialBlock(shortcut=i > 0) for i in range(5)])
        self.conv_out = _weight_norm(nn.ConvTranspose2d(64, 3, 5, padding=2))

    def forward(self, x: torch.Tensor, stdn: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        out = self.conv_out(self.layer1(self.conv1(F.pad(x, (2, 2, 2, 2), "reflect"))))
        # L2Proj, CPU branch
        num_x = torch.sqrt(torch.Tensor([out.shape[1] * out.shape[2] * out.shape[3]]) - 1)
        epsilon = torch.zeros(out.size(0), 1, 1, 1).fill_(1) * (torch.exp(alpha) * stdn * num_x)[:, None, None, None]
        x_norm = torch.norm(out.view(out.shape[0], -1), 2, dim=1).reshape(out.size(0), 1, 1, 1)
        return out * (epsilon / torch.max(x_norm, epsilon))


def official_wmad(x: torch.Tensor) -> torch.Tensor:
    """Wmad_estimator.forward."""
    if x.max() > 1:
        x = x / 255
    high = torch.Tensor(DB7_HIGH.tolist())[:, None][None, None, :]
    high = torch.cat([high] * x.shape[1], dim=0)
    d = F.pad(x, (0, 0, 7, 7), mode="reflect")
    d = F.conv2d(d, high, stride=(2, 1), groups=x.shape[1])
    d = F.pad(d, (7, 7, 0, 0), mode="reflect")
    d = F.conv2d(d.transpose(2, 3), high, stride=(2, 1), groups=x.shape[1])
    sigma = 0
    d = d.view(d.shape[0], d.shape[1], -1)
    for c in range(d.shape[1]):
        sigma += torch.median(torch.abs(d[:, c]), dim=1)[0] / 0.6745
    return sigma / d.shape[1]


class Official(nn.Module):
    """The official ``Generator`` (same parameter names, so the release loads strictly)."""

    def __init__(self) -> None:
        super().__init__()
        self.model = OfficialResCNet()
        self.alpha = nn.Parameter(torch.Tensor(np.linspace(np.log(2), np.log(1), 1)))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        inp = F.interpolate(inp, scale_factor=4, mode="bilinear", align_corners=False)
        sigma = official_wmad(inp)
        sigma *= 255.0
        output = inp - self.model(inp, sigma, self.alpha)
        return F.hardtanh(output, 0.0, 255.0)


def test_parameter_count_and_key_names() -> None:
    model = SRResCGAN()
    assert sum(p.numel() for p in model.parameters()) == 380_356
    keys = set(model.state_dict())
    assert {"alpha", "model.conv1.weight_g", "model.conv1.weight_v", "model.conv1.bias"} <= keys
    assert "model.layer1.4.relu2.weight" in keys and "model.conv_out.weight_g" in keys
    assert model.model.conv_out.weight_g.shape == (64, 1, 1, 1)  # WN dim 0 of a tconv = input channels
    assert not any(k.startswith("noise_estimator") for k in keys)


def test_first_block_has_no_identity() -> None:
    model = SRResCGAN()
    x = torch.randn(1, 64, 8, 8)
    blocks = model.model.layer1
    for i, blk in enumerate(blocks):
        with torch.no_grad():
            for p in (blk.conv2.weight_g, blk.conv2.bias):
                p.zero_()
        out = blk(x)
        assert torch.allclose(out, torch.zeros_like(x) if i == 0 else x)


def test_l2_projection_keeps_residual_inside_ball() -> None:
    from sr_plugin_srrescgan.generator import l2_ball_projection

    r = torch.randn(2, 3, 16, 16) * 100
    sigma = torch.tensor([1.0, 1000.0])
    out = l2_ball_projection(r, sigma, torch.tensor([math.log(2.0)]))
    eps0 = 2 * 1.0 * math.sqrt(3 * 16 * 16 - 1)
    assert out[0].norm().item() == pytest.approx(eps0, rel=1e-5)  # projected onto the sphere
    assert torch.equal(out[1], r[1])  # already inside: unchanged


def test_wavelet_estimate_matches_known_noise() -> None:
    from sr_plugin_srrescgan.generator import WaveletNoiseEstimator

    gen = torch.Generator().manual_seed(0)
    img = torch.full((1, 3, 256, 256), 128.0) + 10.0 * torch.randn(1, 3, 256, 256, generator=gen)
    sigma = WaveletNoiseEstimator()(img) * 255
    assert sigma.item() == pytest.approx(10.0, rel=0.05)


def test_released_weights_match_official_forward_on_real_photo(data_root, weights) -> None:
    path = data_root / "realworld_lr" / "0815.png"
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    sd = torch.load(weights("srrescgan_x4_RaoUmer.pth"), map_location="cpu", weights_only=True)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)[150:182, 250:282]
    lr255 = torch.from_numpy(np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))).float()[None]
    expected = ref_forward(sd, lr255)

    model = SRResCGAN()
    model.load_state_dict(sd, strict=True)
    model.eval()
    with torch.no_grad():
        out01 = model(lr255 / 255.0)  # framework boundary: [0, 1] in and out
        out255 = model.forward_255(lr255)
    assert out01.shape == (1, 3, 128, 128)
    assert (out255.double() - expected).abs().max().item() < 1e-2
    # the network did something beyond bilinear upsampling (the residual is not zero)
    up = F.interpolate(lr255, scale_factor=4, mode="bilinear", align_corners=False)
    assert (out255 - up).abs().mean().item() > 0.5


@pytest.mark.parametrize("name", ["0815", "0829"])
def test_upscale_saves_what_the_official_demo_saves(name: str, data_root, weights, tmp_path) -> None:
    """srcore upscale's path (read_image, super_resolve, write_image) = test_srrescgan.py's PNG.

    No value may differ: weight norm must be the kernel ``nn.utils.weight_norm`` runs and the
    8-bit conversion must round half to even like ``cv2.imwrite`` of the float array (in these
    256 x 256 outputs the old ``v * (g / ||v||)`` alone left 7 and 2 values off, rounding halves
    up alone 0 and 4).
    """
    from srcore.data.io import read_image, write_image
    from srcore.engine.checkpoint import load_checkpoint
    from srcore.infer import super_resolve
    from srcore.plugins import PluginManager

    path = data_root / "realworld_lr" / f"{name}.png"
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    rows, cols = slice(150, 214), slice(250, 314)
    release = weights("srrescgan_x4_RaoUmer.pth")
    official = Official()
    official.load_state_dict(torch.load(release, map_location="cpu", weights_only=True), strict=True)
    official.eval()
    # test_srrescgan.py: cv2.imread, BGR -> RGB float 0..255, forward, clamp_, RGB -> BGR, cv2.imwrite
    img_lr = cv2.imread(str(path), cv2.IMREAD_COLOR)[rows, cols]
    img_lr_t = torch.from_numpy(np.transpose(img_lr[:, :, [2, 1, 0]], (2, 0, 1))).float().unsqueeze(0)
    with torch.no_grad():
        output_sr = official(img_lr_t).data.squeeze().float().cpu().clamp_(0, 255).numpy()
    ok, png = cv2.imencode(".png", np.transpose(output_sr[[2, 1, 0], :, :], (1, 2, 0)))
    theirs = cv2.imdecode(png, cv2.IMREAD_UNCHANGED)

    loaded = load_checkpoint(release, manager=PluginManager().load(only=["core", "srrescgan"]))
    sr = super_resolve(loaded, read_image(path)[:, rows, cols])[0]
    ours = cv2.imread(str(write_image(tmp_path / "sr.png", sr)), cv2.IMREAD_UNCHANGED)
    assert ok and ours.shape == theirs.shape == (256, 256, 3)
    assert int((ours != theirs).sum()) == 0


def test_detect_checkpoint_recognises_release(weights) -> None:
    from sr_plugin_srrescgan.checkpoints import detect_srrescgan

    sd = torch.load(weights("srrescgan_x4_RaoUmer.pth"), map_location="cpu", weights_only=True)
    match = detect_srrescgan(sd)
    assert match is not None and match.model == "srrescgan:srrescgan"
    assert match.params == {"scale": 4, "depth": 5, "channels": 64}
    assert detect_srrescgan({"conv.weight": torch.zeros(1)}) is None


def test_unclipped_path_differs_only_by_clipping() -> None:
    torch.manual_seed(0)
    model = SRResCGAN()
    x = (torch.arange(12)[:, None] + torch.arange(12)[None, :]).remainder(2).float().expand(1, 3, 12, 12)
    with torch.no_grad():  # a large ball and a large negative residual push outputs above 255
        model.alpha.fill_(10.0)
        model.model.conv_out.bias.fill_(-50.0)
        raw = model.forward_unclipped(x)
        clipped = model(x)
    assert raw.min() < 0 or raw.max() > 1
    assert torch.allclose(clipped, raw.clamp(0, 1))


def test_plugin_conforms_and_self_ensemble_equals_official_srrescgan_plus(srcore_plugin) -> None:
    """The engine's x8 ensemble of our model = test_srrescgan_plus.py's (its 8 transforms, mean)."""
    from sr_plugin_srrescgan import plugin
    from srcore.infer import super_resolve
    from srcore.testing import check_conformance

    registries = srcore_plugin(plugin, "srrescgan")
    assert check_conformance(registries, "srrescgan", kinds=("model", "discriminator")) == []

    torch.manual_seed(0)
    model = registries.build("model", "srrescgan:srrescgan", {}).eval()
    from srcore.engine.checkpoint import LoadedModel

    comp = registries.models.get("srrescgan:srrescgan")
    loaded = LoadedModel(model, comp, comp.info, {"scale": 4})
    lr = torch.rand(1, 3, 8, 12, generator=torch.Generator().manual_seed(2))
    ours = super_resolve(loaded, lr, self_ensemble=True)
    # official utils.augment_img / inv_augment_img on HWC arrays, modes 0..7
    fwd = [lambda a: a, lambda a: np.flipud(np.rot90(a)), np.flipud, lambda a: np.rot90(a, k=3),
           lambda a: np.flipud(np.rot90(a, k=2)), np.rot90, lambda a: np.rot90(a, k=2),
           lambda a: np.flipud(np.rot90(a, k=3))]  # fmt: skip
    inv = [lambda a: a, lambda a: np.fliplr(np.rot90(a, k=3)), np.flipud, np.rot90, np.fliplr,
           lambda a: np.rot90(a, k=3), lambda a: np.rot90(a, k=2), lambda a: np.fliplr(np.rot90(a))]  # fmt: skip
    hwc = lr[0].permute(1, 2, 0).numpy() * 255
    outs = []
    with torch.no_grad():
        for f, g in zip(fwd, inv):
            x = torch.from_numpy(np.ascontiguousarray(f(hwc))).permute(2, 0, 1)[None].float()
            y = model.forward_255(x)[0].permute(1, 2, 0).numpy()
            outs.append(np.ascontiguousarray(g(y)))
    theirs = np.clip(np.mean(outs, axis=0), 0, 255)
    single = super_resolve(loaded, lr)[0].permute(1, 2, 0).numpy() * 255
    assert np.abs(ours[0].permute(1, 2, 0).numpy() * 255 - theirs).max() < 1e-3
    assert np.abs(single - theirs).max() > 0.1  # the ensemble is not the single pass
