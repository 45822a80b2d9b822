"""Image files <-> tensors, through OpenCV.

Reading (deliberate choices, all documented in docs/data-and-metrics.md):
* 8-bit files map to [0, 1] by /255, 16-bit files by /65535; float files (EXR/TIFF) are taken
  as they are (no rescale) and clamped to [0, 1].
* gray (1-channel) images are replicated to 3 channels, so every component sees RGB;
* RGBA/gray+alpha: the alpha channel is dropped (colour kept as stored, not composited), since
  SR benchmarks compare colour only;
* the result is a (3, H, W) float32 RGB tensor in [0, 1].
An unreadable, truncated, empty or missing file raises ``ImageReadError`` naming the file.

Writing is lossless: PNG (8-bit by default, 16-bit with ``bits=16``), or any format OpenCV
knows from the extension (JPEG with an explicit quality). Values are clamped and rounded half
to even, as OpenCV, NumPy and BasicSR's ``tensor2img`` do (``to_levels``); the file is written
to a temporary name and renamed, so a crash never leaves a half-written image under the final
name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from srcore.atomic import write_atomic
from srcore.errors import SrcoreError

if TYPE_CHECKING:  # torch is imported where used: listing files must not cost a torch import
    import torch

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".exr")


class ImageReadError(SrcoreError):
    """An image file could not be read."""


class ImageWriteError(SrcoreError):
    """An image file could not be written."""


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _cv2():  # imported lazily: OpenCV is slow to import
    """OpenCV, with its own warnings off: a damaged file is reported once, by ``ImageReadError``,
    not also by a ``[ WARN:0@0.06] ... PNG input buffer is incomplete`` line on stderr."""
    import cv2

    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    return cv2


def read_array(path: str | Path) -> np.ndarray:
    """The file as OpenCV decodes it (BGR/BGRA/gray, native dtype), with readable errors."""
    cv2 = _cv2()
    p = Path(path)
    if not p.is_file():
        raise ImageReadError(f"image file not found: {p}")
    if p.stat().st_size == 0:
        raise ImageReadError(f"image file is empty: {p}")
    data = np.fromfile(p, dtype=np.uint8)  # also works for non-ASCII paths, unlike cv2.imread
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None or arr.size == 0:
        raise ImageReadError(f"cannot decode image (unsupported or truncated file): {p}")
    if _looks_truncated(p, data):
        raise ImageReadError(f"image file is truncated: {p}")
    return arr


def _looks_truncated(path: Path, data: np.ndarray) -> bool:
    """OpenCV decodes truncated PNG/JPEG with grey padding and only a warning: check the end."""
    tail = data[-12:].tobytes()
    suffix = path.suffix.lower()
    if suffix == ".png":
        return b"IEND" not in tail
    if suffix in (".jpg", ".jpeg"):
        return b"\xff\xd9" not in data[-1024:].tobytes()
    return False


def rgb_array(arr: np.ndarray, path: str | Path = "<array>") -> np.ndarray:
    """OpenCV array (H,W[,C], BGR order) -> (3, H, W) RGB view in its own dtype: gray
    replicated, alpha dropped (no pixel is converted or copied)."""
    if arr.dtype not in (np.uint8, np.uint16, np.float32, np.float64):
        raise ImageReadError(f"unsupported pixel type {arr.dtype} in {path}")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[2]
    if channels in (1, 2):  # gray, gray + alpha
        return np.broadcast_to(arr[:, :, 0], (3, *arr.shape[:2]))
    if channels in (3, 4):  # BGR, BGRA -> RGB
        return arr[:, :, 2::-1].transpose(2, 0, 1)
    raise ImageReadError(f"unsupported number of channels ({channels}) in {path}")


def array_to_tensor(arr: np.ndarray, path: str | Path = "<array>") -> torch.Tensor:
    """OpenCV array (H,W[,C], BGR order) -> (3, H, W) float32 RGB in [0, 1]."""
    import torch

    rgb = rgb_array(arr, path)
    out = np.empty(rgb.shape, np.float32)
    if arr.dtype in (np.uint8, np.uint16):  # k / 255 (k / 65535) rounded to float32, in one pass
        np.divide(rgb, np.float32(255.0 if arr.dtype == np.uint8 else 65535.0), out=out, dtype=np.float32)
    else:
        np.clip(rgb, 0.0, 1.0, out=out)
    return torch.from_numpy(out)


def array_to_uint8(arr: np.ndarray, path: str | Path = "<array>") -> torch.Tensor | None:
    """An 8-bit OpenCV array as a (3, H, W) uint8 RGB tensor (its levels, exact); ``None``
    for other pixel types."""
    import torch

    rgb = rgb_array(arr, path)
    return torch.from_numpy(np.ascontiguousarray(rgb)) if arr.dtype == np.uint8 else None


def read_image(path: str | Path) -> torch.Tensor:
    """Read an image file as a (3, H, W) float32 RGB tensor in [0, 1] (see module doc)."""
    return array_to_tensor(read_array(path), path)


def read_image_exact(path: str | Path) -> torch.Tensor:
    """An 8-bit file as its (3, H, W) uint8 RGB levels, any other as ``read_image`` does: what
    evaluation measures, without the float32 rounding of k / 255."""
    arr = read_array(path)
    u8 = array_to_uint8(arr, path)
    return u8 if u8 is not None else array_to_tensor(arr, path)


def to_levels(x: torch.Tensor, top: int) -> torch.Tensor:
    """[0, 1] float -> integer levels 0..``top`` (as floats), clamped, rounded half to even
    (``srcore.data.color.round_half_even``, the rule of cv2.imwrite on float arrays)."""
    from srcore.data.color import round_half_even

    return round_half_even(x.detach().clamp(0, 1) * float(top))


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> uint8, clamped, rounding half to even (``to_levels``)."""
    import torch

    return to_levels(x, 255).to(torch.uint8)


def tensor_to_array(x: torch.Tensor, bits: int = 8) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) [0, 1] RGB/gray tensor -> OpenCV array (BGR order)."""
    import torch

    if x.dim() == 4:
        if x.shape[0] != 1:
            raise ValueError(f"write one image at a time, got a batch of {x.shape[0]}")
        x = x[0]
    if x.dim() == 2:
        x = x.unsqueeze(0)
    if x.dim() != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1|3, H, W) tensor, got shape {tuple(x.shape)}")
    x = x.detach().float().cpu()
    if bits == 8:
        arr = to_uint8(x).numpy()
    elif bits == 16:
        arr = to_levels(x, 65535).to(torch.int32).numpy().astype(np.uint16)
    else:
        raise ValueError(f"bits must be 8 or 16, got {bits}")
    arr = arr.transpose(1, 2, 0)
    return arr[:, :, 0] if arr.shape[2] == 1 else np.ascontiguousarray(arr[:, :, ::-1])


def write_image(path: str | Path, x: torch.Tensor, bits: int = 8, quality: int | None = None) -> Path:
    """Write a [0, 1] tensor losslessly (PNG) or with ``quality`` for JPEG/WebP; atomic."""
    cv2 = _cv2()
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise ImageWriteError(f"unknown image extension '{p.suffix}' for {p} (use .png for lossless output)")
    if bits == 16 and suffix not in (".png", ".tif", ".tiff"):
        raise ImageWriteError(f"16-bit output needs .png or .tif, not {p.suffix} ({p})")
    params: list[int] = []
    if suffix in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(quality if quality is not None else 95)]
    elif suffix == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(quality if quality is not None else 101)]  # >100: lossless
    ok, buf = cv2.imencode(suffix, tensor_to_array(x, bits), params)
    if not ok:
        raise ImageWriteError(f"OpenCV could not encode {p}")
    return write_atomic(p, buf.tobytes(), "image", ImageWriteError)


def list_images(folder: str | Path) -> list[Path]:
    """Image files of a folder, sorted by name (deterministic, unlike ``os.listdir``)."""
    d = Path(folder)
    if not d.is_dir():
        raise SrcoreError(f"not a folder: {d}")
    return sorted(p for p in d.iterdir() if p.is_file() and is_image_file(p) and not p.name.startswith("."))
