"""Where data comes from: the data root, named benchmark sets, the built-in sample photographs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from srcore.data.io import list_images
from srcore.errors import SrcoreError

BUILTIN_SKIMAGE = "builtin:skimage"
# Colour photographs that scikit-image ships inside its wheel (no download needed).
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png")


def repo_root() -> Path:
    """The source tree's root (core/srcore/data/sets.py -> parents[3])."""
    return Path(__file__).resolve().parents[3]


def default_data_root() -> Path | None:
    """``$SRCORE_DATA_ROOT``, else ``../shared/data`` next to the repository if it exists."""
    env = os.environ.get("SRCORE_DATA_ROOT")
    if env:
        return Path(env).expanduser()
    candidate = (repo_root() / ".." / "shared" / "data").resolve()
    return candidate if candidate.is_dir() else None


def skimage_photos() -> list[Path]:
    """Paths of scikit-image's bundled colour photographs (the zero-download training default)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    found = [folder / n for n in SKIMAGE_PHOTOS if (folder / n).is_file()]
    if not found:
        raise SrcoreError(f"scikit-image's sample photographs are missing from {folder}")
    return found


def _child_ci(folder: Path, name: str) -> Path | None:
    exact = folder / name
    if exact.exists():
        return exact
    low = name.lower()
    for child in sorted(folder.iterdir()) if folder.is_dir() else []:
        if child.name.lower() == low:
            return child
    return None


Root = str | Path | Sequence[str | Path] | None


def data_roots(root: Root) -> list[Path]:
    """The roots named sets are looked up in, in order: a list, or one path (``a:b`` splits as PATH does)."""
    if root is None:
        return []
    items = [root] if isinstance(root, (str, Path)) else list(root)
    out: list[Path] = []
    for item in items:
        out += [Path(part).expanduser() for part in str(item).split(os.pathsep) if part]
    return out


def resolve_set(name_or_path: str | Path, root: Root) -> Path:
    """A folder (or HDF5 file) given as a path, or a named set under the first data root that has it.

    ``set5`` -> ``<root>/Set5/HR`` (names and sub-folders match case-insensitively, a set folder
    with an ``HR`` sub-folder resolves to it); ``set5/LR_bicubic/X2`` -> that sub-folder.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.exists():
        return path
    if path.is_absolute() or text.startswith(("./", "../", "~")):
        raise SrcoreError(f"{text} does not exist")
    roots = data_roots(root)
    if not roots:
        raise SrcoreError(
            f"'{text}' is not an existing path and no data root is set for named sets "
            "(pass --data-root, set data.root, or set SRCORE_DATA_ROOT)"
        )
    reasons = []
    for base in roots:
        if not base.is_dir():
            reasons.append(f"data root {base} is not a folder")
            continue
        found, why = _under(base, text)
        if found is not None:
            return found
        reasons.append(why)
    raise SrcoreError(f"no set '{text}': " + "; ".join(reasons))


def _under(base: Path, text: str) -> tuple[Path | None, str]:
    node = base
    for part in [p for p in text.replace("\\", "/").split("/") if p]:
        nxt = _child_ci(node, part)
        if nxt is None:
            available = sorted(c.name for c in node.iterdir() if c.is_dir())
            return None, (f"'{part}' not found in {node}" + (f" (available: {', '.join(available)})" if available
                                                              else ""))
        node = nxt
    if node.is_dir():
        hr = _child_ci(node, "HR")
        if hr is not None and hr.is_dir() and not list_images(node):
            return hr, ""
    return node, ""


def set_display_name(name_or_path: str | Path) -> str:
    text = str(name_or_path).rstrip("/")
    p = Path(text)
    return p.parent.name if p.name.lower() == "hr" and p.parent.name else p.name or text
