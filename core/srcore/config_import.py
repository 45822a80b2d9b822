"""``srcore config import``: BasicSR-family option files -> an srcore run configuration.

Reads the option files of BasicSR (``network_g``, ``optim_g``, ``pixel_opt``...), its forks
traiNNer-redux and neosr (the same keys, YAML or TOML), and of the old BasicSR/mmsr generation
that FASRGAN, FxSR and ESRGAN were released with (``network_G.which_model_G``, ``lr_G``,
``niter``...). Every key is either mapped or listed as not mapped, never silently dropped.
The result is plain data for ``srcore train -c``; component ids of plugins (``fasrgan:rrdbnet``,
``spandrel:swinir``) are only names here, checked when the file is used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srcore.config import read_config_file

# BasicSR architecture name (lower case) -> (srcore model id, {their arg: our param}).
_RRDB_ARGS = {"num_in_ch": "in_nc", "num_out_ch": "out_nc", "num_feat": "nf", "num_block": "nb",
              "num_grow_ch": "gc", "scale": "scale"}
_OLD_RRDB_ARGS = {"in_nc": "in_nc", "out_nc": "out_nc", "nf": "nf", "nb": "nb", "gc": "gc", "scale": "scale",
                  "upscale": "scale"}
NETWORKS: dict[str, tuple[str, dict[str, str] | None]] = {
    "rrdbnet": ("core:rrdbnet", _RRDB_ARGS),
    "esrgan": ("core:rrdbnet", _RRDB_ARGS),  # neosr's name
    "rrdb_net": ("fasrgan:rrdbnet", _OLD_RRDB_ARGS),  # old BasicSR (FASRGAN, ESRGAN release)
    "fxsr": ("fxsr:fxsr", {"nf": "nf", "nb": "nb", "gc": "gc", "scale": "scale"}),
    # spandrel's classes take BasicSR's arguments unchanged: they go to hyperparameters
    "srvggnetcompact": ("spandrel:compact", None),
    "compact": ("spandrel:compact", None),
    "swinir": ("spandrel:swinir", None),
    "hat": ("spandrel:hat", None),
    "dat": ("spandrel:dat", None),
    "span": ("spandrel:span", None),
    "omnisr": ("spandrel:omnisr", None),
}
_DISCRIMINATORS = {"vggstylediscriminator": "core:vgg128", "discriminator_vgg_128": "core:vgg128",
                   "discriminator_vgg_192": "core:vgg192", "vggstylediscriminator128": "core:vgg128"}
_PIXEL_LOSSES = {"l1loss": "core:l1", "l1": "core:l1", "mseloss": "core:mse", "l2": "core:mse", "mse": "core:mse",
                 "charbonnierloss": "core:charbonnier", "cb": "core:charbonnier", "charbonnier": "core:charbonnier"}
_GAN_TYPES = {"vanilla": "vanilla", "lsgan": "lsgan", "wgan": "wgan", "wgan_softplus": "wgan", "hinge": "hinge",
              "ragan": "ragan", "gan": "vanilla"}
_METRICS = {"calculate_psnr": "core:psnr", "psnr": "core:psnr", "calculate_ssim": "core:ssim", "ssim": "core:ssim",
            "calculate_niqe": "core:niqe", "niqe": "core:niqe", "calculate_lpips": "core:lpips", "lpips": "core:lpips"}
# old BasicSR models whose code hard-codes the relativistic GAN whatever gan_type says
_RAGAN_MODELS = {"srragan", "fasrgan", "fssrgan", "esrgan"}


@dataclass
class Imported:
    """The srcore configuration, the source keys not mapped, and notes on what was interpreted."""

    config: dict[str, Any]
    unmapped: list[str]
    notes: list[str] = field(default_factory=list)


class _Options:
    """The source options with a record of which leaf keys were used."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.used: set[str] = set()

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        self.used.add(path)
        return node

    def first(self, *paths: str) -> Any:
        for p in paths:
            value = self.get(p)
            if value is not None:
                return value
        return None

    def section(self, path: str) -> Mapping[str, Any]:
        value = self.get(path.rstrip("."), {})
        self.used.discard(path)  # a section counts as used only through its keys
        return value if isinstance(value, Mapping) else {}

    def unused(self) -> list[str]:
        return [p for p in _leaves(self.data) if not any(p == u or p.startswith(u + ".") for u in self.used)]


def _leaves(data: Any, path: str = "") -> Iterator[str]:
    if isinstance(data, Mapping) and data:
        for k, v in data.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif path:
        yield path


def import_file(path: str | Path) -> Imported:
    """Translate one BasicSR / traiNNer-redux / neosr / old-BasicSR option file (YAML, JSON, TOML)."""
    return translate(read_config_file(path))


def translate(data: Mapping[str, Any]) -> Imported:
    o = _Options(data)
    notes: list[str] = []
    cfg: dict[str, Any] = {}
    if (name := o.get("name")) is not None:
        cfg["name"] = str(name)
    scale = o.get("scale")
    cfg["model"] = _network(o, scale, notes)
    stage: dict[str, Any] = {"name": "main"}
    if train_data := _train_data(o, notes):
        cfg["data"] = {"train": train_data}
    for step in (_iterations, _optimizers, _schedules, _losses, _gan, _ema):
        step(o, stage, notes)
    cfg["stages"] = [stage]
    cfg["val"] = _validation(o)
    cfg["train"] = _train_options(o)
    cfg = {k: v for k, v in cfg.items() if v != {}}
    if (pre := o.first("path.pretrain_network_g", "path.pretrain_model_G")) is not None:
        notes.append(f"pretrained generator {pre}: srcore starts from random weights; for spandrel models "
                     "set model.params.init_from")
        o.used.discard("path.pretrain_network_g")
        o.used.discard("path.pretrain_model_G")
    return Imported(cfg, o.unused(), notes)


# -- sections ---------------------------------------------------------------------------------------

def _network(o: _Options, scale: Any, notes: list[str]) -> dict[str, Any]:
    new = o.section("network_g")
    old = o.section("network_G")
    prefix, net = ("network_g", new) if new else ("network_G", old)
    kind_key = "type" if "type" in net else "which_model_G"
    kind = str(o.get(f"{prefix}.{kind_key}") or "")
    if "fxsr" in str(o.data.get("name", "")).lower() and kind.lower() in ("rrdbnet", "rrdb_net"):
        kind = "fxsr"  # FxSR's options name its SFT generator RRDBNet, as plain ESRGAN's
        notes.append("network: FxSR's RRDBNet with SFT layers (the option file names it RRDBNet)")
    model_id, args = NETWORKS.get(kind.lower(), (None, None))
    if model_id is None:
        o.used.discard(f"{prefix}.{kind_key}")
        notes.append(f"network {kind or '(none)'}: no srcore model known; set model.id by hand")
        return {"id": f"UNMAPPED:{kind or 'unknown'}", "params": {}}
    params: dict[str, Any] = {}
    hyper: dict[str, Any] = {}
    for key, value in net.items():
        if key == kind_key:
            continue
        if args is None:
            hyper[key] = value
            o.get(f"{prefix}.{key}")
        elif key in args:
            params[args[key]] = value
            o.get(f"{prefix}.{key}")
    if args is None:
        params = {"hyperparameters": hyper}
        if "upscale" in hyper or scale is not None:
            params["scale"] = int(hyper.get("upscale", scale))
    elif scale is not None:
        params.setdefault("scale", int(scale))
    if model_id == "fxsr:fxsr":
        o.get(f"{prefix}.in_nc")  # 4 in FxSR's YAML, 3 in the network: t enters through CondNet
        o.get(f"{prefix}.out_nc")
    return {"id": model_id, "params": params}


def _train_data(o: _Options, notes: list[str]) -> dict[str, Any]:
    t = "datasets.train"
    out: dict[str, Any] = {}
    _put(out, "hr", o.first(f"{t}.dataroot_gt", f"{t}.dataroot_GT", f"{t}.dataroot_HR"))
    _put(out, "lr", o.first(f"{t}.dataroot_lq", f"{t}.dataroot_LQ", f"{t}.dataroot_LR"))
    _put(out, "patch_size", o.first(f"{t}.gt_size", f"{t}.GT_size", f"{t}.HR_size", f"{t}.patch_size"))
    _put(out, "batch_size", o.first(f"{t}.batch_size_per_gpu", f"{t}.batch_size"))
    _put(out, "num_workers", o.first(f"{t}.num_worker_per_gpu", f"{t}.n_workers"))
    _put(out, "flip", o.first(f"{t}.use_hflip", f"{t}.use_flip"))
    _put(out, "rot90", o.get(f"{t}.use_rot"))
    kind = str(o.data.get("datasets", {}).get("train", {}).get("type", ""))
    if "realesrgan" in kind.lower():
        notes.append(f"datasets.train.type {kind}: Real-ESRGAN's second-order degradation has no srcore "
                     "equivalent; LR is made by data.train.degradation (core:bicubic) unless data.train.lr is set")
    return out


def _iterations(o: _Options, stage: dict[str, Any], notes: list[str]) -> None:
    _put(stage, "steps", _int(o.first("train.total_iter", "train.niter")))


def _optimizers(o: _Options, stage: dict[str, Any], notes: list[str]) -> None:
    for net, key in (("g", "optim"), ("d", "optim_d")):
        section = o.section(f"train.optim_{net}")
        optim: dict[str, Any] = {}
        if section:
            kind = str(o.get(f"train.optim_{net}.type") or "adam").lower()
            if kind in ("adam", "adamw"):
                optim["type"] = kind
            _put(optim, "lr", _float(o.get(f"train.optim_{net}.lr")))
            _put(optim, "weight_decay", _float(o.get(f"train.optim_{net}.weight_decay")))
            betas = o.get(f"train.optim_{net}.betas")
            if betas is not None:
                optim["betas"] = [float(b) for b in betas]
        else:
            big = net.upper()
            _put(optim, "lr", _float(o.get(f"train.lr_{big}")))
            _put(optim, "weight_decay", _float(o.get(f"train.weight_decay_{big}")))
            b1, b2 = o.get(f"train.beta1_{big}"), o.get(f"train.beta2_{big}")
            if b1 is not None:
                optim["betas"] = [float(b1), float(b2 if b2 is not None else 0.999)]
        if optim:
            stage[key] = optim


def _schedules(o: _Options, stage: dict[str, Any], notes: list[str]) -> None:
    kind = str(o.first("train.scheduler.type", "train.lr_scheme") or "")
    milestones = o.first("train.scheduler.milestones", "train.lr_steps")
    gamma = o.first("train.scheduler.gamma", "train.lr_gamma")
    sched: dict[str, Any] = {}
    if kind.lower() in ("multisteplr", "multistep", "multisteprestartlr") and milestones is not None:
        sched = {"type": "multistep", "milestones": [_int(m) for m in milestones]}
        _put(sched, "gamma", _float(gamma))
    elif "cosine" in kind.lower():
        sched = {"type": "cosine"}
        _put(sched, "min_lr", _float(o.first("train.scheduler.eta_min", "train.scheduler.eta_mins")))
    elif kind:
        notes.append(f"scheduler {kind}: not mapped, the stage keeps a constant learning rate")
        o.used.discard("train.scheduler.type")
        o.used.discard("train.lr_scheme")
    warmup = _int(o.first("train.warmup_iter"))
    if sched and warmup and warmup > 0:
        sched["warmup_steps"] = warmup
    if sched:
        stage["schedule"] = sched
        if "optim_d" in stage:
            stage["schedule_d"] = dict(sched)


def _losses(o: _Options, stage: dict[str, Any], notes: list[str]) -> None:
    losses: list[dict[str, Any]] = []
    kind = o.first("train.pixel_opt.type", "train.pixel_criterion")
    if kind is not None and str(kind).lower() in _PIXEL_LOSSES:
        weight = _float(o.first("train.pixel_opt.loss_weight", "train.pixel_weight"))
        losses.append({"id": _PIXEL_LOSSES[str(kind).lower()], "weight": 1.0 if weight is None else weight})
        o.get("train.pixel_opt.reduction")
    perceptual = _perceptual(o)
    if perceptual is not None:
        losses.append(perceptual)
    if losses:
        stage["losses"] = losses


def _perceptual(o: _Options) -> dict[str, Any] | None:
    new = o.section("train.perceptual_opt")
    if new:
        weight = _float(o.get("train.perceptual_opt.perceptual_weight"))
        layers = o.get("train.perceptual_opt.layer_weights") or {"conv5_4": 1.0}
        params: dict[str, Any] = {"layers": {str(k): float(v) for k, v in layers.items()}}
        crit = str(o.get("train.perceptual_opt.criterion") or "l1").lower()
        params["criterion"] = "l2" if crit in ("l2", "mse", "fro") else "l1"
        _put(params, "use_input_norm", o.get("train.perceptual_opt.use_input_norm"))
        o.get("train.perceptual_opt.type")
        o.get("train.perceptual_opt.vgg_type")
        style = _float(o.get("train.perceptual_opt.style_weight")) or 0.0
        if style:
            o.used.discard("train.perceptual_opt.style_weight")  # no style (Gram) term in srcore
        if weight in (None, 0.0):
            return None
        return {"id": "core:perceptual", "weight": weight, "params": params}
    weight = _float(o.get("train.feature_weight"))
    if not weight:
        return None
    crit = str(o.get("train.feature_criterion") or "l1").lower()
    return {"id": "core:perceptual", "weight": weight,
            "params": {"layers": {"conv5_4": 1.0}, "criterion": "l2" if crit == "l2" else "l1"}}


def _gan(o: _Options, stage: dict[str, Any], notes: list[str]) -> None:
    kind = o.first("train.gan_opt.gan_type", "train.gan_type")
    weight = _float(o.first("train.gan_opt.loss_weight", "train.gan_weight"))
    if kind is None or not weight:
        return
    gan_type = _GAN_TYPES.get(str(kind).lower())
    if str(o.data.get("model", "")).lower() in _RAGAN_MODELS and gan_type != "ragan":
        notes.append(f"gan: model '{o.data['model']}' uses the relativistic GAN whatever gan_type '{kind}' says")
        gan_type = "ragan"
        o.get("model")
    if gan_type is None:
        o.used.difference_update({"train.gan_opt.gan_type", "train.gan_type"})
        return
    o.get("train.gan_opt.type")
    o.get("train.gan_opt.real_label_val")
    o.get("train.gan_opt.fake_label_val")
    gan: dict[str, Any] = {"type": gan_type, "weight": weight}
    _put(gan, "d_steps", _int(o.first("train.net_d_iters", "train.D_update_ratio")))
    _put(gan, "d_start", _int(o.first("train.net_d_init_iters", "train.D_init_iters")))
    stage["gan"] = gan
    stage["step"] = "core:adversarial"
    disc = _discriminator(o)
    if disc is not None:
        stage["discriminator"] = disc


def _discriminator(o: _Options) -> dict[str, Any] | None:
    prefix = "network_d" if o.section("network_d") else "network_D"
    kind = str(o.first(f"{prefix}.type", f"{prefix}.which_model_D") or "").lower()
    disc_id = _DISCRIMINATORS.get(kind)
    if disc_id is None:
        o.used.difference_update({f"{prefix}.type", f"{prefix}.which_model_D"})
        return None
    params: dict[str, Any] = {}
    _put(params, "in_nc", o.first(f"{prefix}.num_in_ch", f"{prefix}.in_nc"))
    _put(params, "nf", o.first(f"{prefix}.num_feat", f"{prefix}.nf"))
    _put(params, "input_size", o.get(f"{prefix}.input_size"))
    return {"id": disc_id, "params": params}


def _ema(o: _Options, stage: dict[str, Any], notes: list[str]) -> None:
    decay = _float(o.get("train.ema_decay"))
    if decay and 0 < decay < 1:
        stage["ema_decay"] = decay


def _validation(o: _Options) -> dict[str, Any]:
    val: dict[str, Any] = {}
    datasets = o.data.get("datasets", {})
    sets = []
    for key in (datasets if isinstance(datasets, Mapping) else {}):
        if key.startswith("val") or key.startswith("test"):
            root = o.first(f"datasets.{key}.dataroot_gt", f"datasets.{key}.dataroot_GT", f"datasets.{key}.dataroot_HR")
            if root is not None:
                sets.append(str(root))
                o.get(f"datasets.{key}.name")
    _put(val, "sets", sets or None)
    _put(val, "every", _int(o.first("val.val_freq", "train.val_freq")))
    metrics = []
    for name, spec in o.section("val.metrics").items():
        mid = _METRICS.get(str(spec.get("type", name)).lower()) if isinstance(spec, Mapping) else None
        if mid is None:
            continue
        params: dict[str, Any] = {}
        o.get(f"val.metrics.{name}.type")
        _put(params, "crop_border", o.get(f"val.metrics.{name}.crop_border"))
        if mid in ("core:psnr", "core:ssim"):
            _put(params, "y_channel", o.get(f"val.metrics.{name}.test_y_channel"))
        o.get(f"val.metrics.{name}.better")  # srcore knows each metric's direction
        metrics.append({"id": mid, "params": params})
    _put(val, "metrics", metrics or None)
    return val


def _train_options(o: _Options) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, "seed", _int(o.first("manual_seed", "train.manual_seed")))
    _put(out, "save_every", _int(o.first("logger.save_checkpoint_freq")))
    _put(out, "log_every", _int(o.first("logger.print_freq")))
    return out


# -- helpers --------------------------------------------------------------------------------------------

def _put(out: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        out[key] = value


def _number(cast: Callable[[Any], Any], value: Any) -> Any:
    if value is None:
        return None
    try:
        return cast(float(value))  # YAML 1.1 reads 5e3 as a string
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    return _number(int, value)


def _float(value: Any) -> float | None:
    return _number(float, value)


def to_yaml(result: Imported, source: str) -> str:
    """The configuration as YAML, headed by comments on what was not mapped and why."""
    import yaml

    head = [f"# srcore run configuration imported from {source} by `srcore config import`"]
    head += [f"# note: {n}" for n in result.notes]
    if result.unmapped:
        head.append(f"# not mapped ({len(result.unmapped)}): " + ", ".join(result.unmapped))
    return "\n".join(head) + "\n" + yaml.safe_dump(result.config, sort_keys=False)
