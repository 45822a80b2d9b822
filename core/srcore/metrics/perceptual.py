"""LPIPS (through the ``lpips`` package) and FID (through ``pytorch-fid``).

LPIPS v0.1 (alex or vgg): the package ships its calibrated linear layers; the backbone's
ImageNet weights (torchvision's ``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``) come from
the torch hub cache or an explicit path, see ``srcore.metrics.weights``.

FID: Inception-v3 pool features of the FID reference network (``pt_inception-2015-12-05-
6726825d.pth``), streaming statistics (float64 sum and sum of outer products, so memory does
not grow with the set), the Frechet distance of pytorch-fid. Reference statistics can be
cached in a ``.npz`` (``mu``, ``sigma``) and reused: ``ref_stats`` is read when it exists and
written after the first full pass otherwise.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srcore.errors import CheckpointError, SrcoreError
from srcore.metrics.base import PerImageMetric, SetMetric, check_pair
from srcore.metrics.weights import find_weights
from srcore.weights_io import describe_load_error, load_into, read_mapping

LPIPS_BACKBONES = {"alex": ("AlexNet_Weights", "alexnet"), "vgg": ("VGG16_Weights", "vgg16")}
FID_WEIGHTS = "pt_inception-2015-12-05-6726825d.pth"


def backbone_filename(net: str) -> str:
    import torchvision.models as tvm

    enum_name, _ = LPIPS_BACKBONES[net]
    return Path(getattr(tvm, enum_name).IMAGENET1K_V1.url).name


def load_lpips(net: str = "alex", backbone_weights: str | None = None) -> Any:
    """An ``lpips.LPIPS`` v0.1 network with its backbone loaded from local weights only."""
    import lpips

    if net not in LPIPS_BACKBONES:
        raise SrcoreError(f"LPIPS net must be one of {', '.join(LPIPS_BACKBONES)}, got {net!r}")
    path = find_weights(backbone_filename(net), backbone_weights, f"LPIPS ({net})", "backbone_weights")
    what = _weights_label(f"LPIPS ({net}) backbone weights", backbone_weights, "backbone_weights")
    with contextlib.redirect_stdout(None), warnings.catch_warnings():  # lpips prints a banner and
        warnings.simplefilter("ignore", UserWarning)  # calls torchvision with deprecated arguments
        model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    state = read_mapping(path, what)
    features = {k[len("features.") :]: v for k, v in state.items() if str(k).startswith("features.")}
    if not features:
        raise CheckpointError(f"{what} {path} is not a torchvision {net} state dict (no 'features.*' keys)")
    loaded = 0
    for slice_module in model.net.children():
        for name, layer in slice_module.named_children():
            own = {k.split(".", 1)[1]: v for k, v in features.items() if k.split(".", 1)[0] == name}
            if own:
                load_into(layer, own, path, what, f"LPIPS ({net}) layer {name}")
                loaded += len(own)
    expected = sum(1 for k in model.net.state_dict())
    if loaded != expected:
        raise CheckpointError(f"{what} {path}: loaded {loaded} of the {expected} backbone tensors of LPIPS ({net})")
    return model.eval()


def _weights_label(name: str, explicit: str | None, option: str) -> str:
    """How errors name a backbone file: by the metric option it came from, or the hub cache."""
    return f"{name} (metric option '{option}')" if explicit else f"{name} (torch hub cache)"


class LPIPS(PerImageMetric):
    """LPIPS distance (lower is better) on RGB in [0, 1], per image."""

    name = "lpips"
    higher_is_better = False

    def __init__(self, net: str = "alex", backbone_weights: str | None = None, crop_border: int = 0) -> None:
        self.net_name, self.crop_border = net, crop_border
        self.model = load_lpips(net, backbone_weights)
        super().__init__()

    def per_image(self, sr: torch.Tensor, hr: torch.Tensor | None) -> torch.Tensor:
        assert hr is not None, "LPIPS needs a reference"
        if sr.shape[1] != 3:
            raise ValueError("LPIPS needs RGB images")
        c = self.crop_border
        if c:
            sr, hr = sr[..., c:-c, c:-c], hr[..., c:-c, c:-c]
        model = self.model.to(sr.device)
        return model(sr.float(), hr.float(), normalize=True).flatten().double()


@contextlib.contextmanager
def _local_fid_weights(path: Path, what: str = "FID weights") -> Any:
    """Make pytorch-fid read its Inception weights from ``path`` instead of downloading them."""
    import pytorch_fid.inception as fi

    original = fi.load_state_dict_from_url

    def local(url: str, *args: Any, **kwargs: Any) -> Any:
        return read_mapping(path, what)

    fi.load_state_dict_from_url = local
    try:
        yield
    finally:
        fi.load_state_dict_from_url = original


def load_fid_inception(weights: str | None = None, dims: int = 2048) -> Any:
    from pytorch_fid.inception import InceptionV3

    path = find_weights(FID_WEIGHTS, weights, "FID (Inception-v3)", "weights")
    what = _weights_label("FID (Inception-v3) weights", weights, "weights")
    try:
        with _local_fid_weights(path, what):
            model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[dims]], resize_input=True, normalize_input=True)
    except RuntimeError as exc:  # load_state_dict inside pytorch-fid: wrong keys or shapes
        problem = describe_load_error(exc)
        raise CheckpointError(f"{what} {path} does not fit the FID Inception network: {problem}") from None
    return model.eval()


def frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)), with Tr sqrt(S1 S2) from symmetric eigenproblems.

    S1 S2 is similar to A S2 A with A = S1^(1/2), which is symmetric PSD, so the trace of the
    square root is the sum of the square roots of its eigenvalues. Two ``eigh`` calls instead of
    scipy's ``sqrtm`` (minutes for 2048 x 2048 on a CPU); agrees with pytorch-fid to ~1e-6.
    """
    t1, t2 = torch.from_numpy(np.asarray(s1, np.float64)), torch.from_numpy(np.asarray(s2, np.float64))
    t1, t2 = (t1 + t1.T) / 2, (t2 + t2.T) / 2
    evals, evecs = torch.linalg.eigh(t1)
    root = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    middle = root @ t2 @ root
    tr_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    diff = np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)
    return float(diff @ diff + torch.trace(t1) + torch.trace(t2) - 2 * tr_sqrt)


class RunningStats:
    """Mean and covariance of feature vectors, accumulated in float64 without keeping them."""

    def __init__(self) -> None:
        self.n, self.s, self.ss = 0, None, None

    def update(self, feats: torch.Tensor) -> None:
        f = feats.detach().to("cpu", torch.float64)
        self.s = f.sum(0) if self.s is None else self.s + f.sum(0)
        self.ss = f.T @ f if self.ss is None else self.ss + f.T @ f
        self.n += f.shape[0]

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2 or self.s is None or self.ss is None:
            raise ValueError(f"FID needs at least 2 images per set, got {self.n}")
        mu = self.s / self.n
        cov = (self.ss - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return mu.numpy(), cov.numpy()


class FID(SetMetric):
    """Frechet Inception Distance between the SR set and the HR set (lower is better)."""

    name = "fid"
    higher_is_better = False

    def __init__(
        self, weights: str | None = None, ref_stats: str | None = None, batch_size: int = 16, dims: int = 2048
    ) -> None:
        self.model = load_fid_inception(weights, dims)
        self.ref_stats = Path(ref_stats) if ref_stats else None
        self.batch_size = batch_size
        self.reset()

    def reset(self) -> None:
        self.fake, self.real = RunningStats(), RunningStats()
        self.cached = None
        if self.ref_stats is not None and self.ref_stats.is_file():
            with np.load(self.ref_stats) as d:
                self.cached = (d["mu"], d["sigma"])

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        model = self.model.to(x.device)
        outs = []
        for i in range(0, len(x), self.batch_size):
            f = model(x[i : i + self.batch_size].float())[0]
            if f.shape[-2:] != (1, 1):  # earlier blocks are spatial maps; pytorch-fid pools them
                f = torch.nn.functional.adaptive_avg_pool2d(f, (1, 1))
            outs.append(f.flatten(1))
        return torch.cat(outs)

    def measure(self, sr: torch.Tensor, hr: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Features of the SR batch and, unless the reference statistics are cached, of the HR (CPU)."""
        sr, hr = check_pair(sr, hr, self.name)
        fake = self.features(sr).cpu()
        return fake, (self.features(hr).cpu() if hr is not None and self.cached is None else None)

    def add(self, stats: tuple[torch.Tensor, torch.Tensor | None]) -> None:
        fake, real = stats
        self.fake.update(fake)
        if real is not None and self.cached is None:
            self.real.update(real)

    def compute(self) -> float:
        mu1, s1 = self.fake.mean_cov()
        if self.cached is not None:
            mu2, s2 = self.cached
        else:
            mu2, s2 = self.real.mean_cov()
            if self.ref_stats is not None:
                self.ref_stats.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.ref_stats.with_name(self.ref_stats.name + ".tmp.npz")
                np.savez(tmp, mu=mu2, sigma=s2)
                tmp.replace(self.ref_stats)
        return frechet_distance(mu1, s1, mu2, s2)
