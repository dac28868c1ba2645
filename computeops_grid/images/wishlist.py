"""DUCC wishlists (``ducc/lib/recipe.go``): YAML with ``version``, ``user``, ``cvmfs_repo``,
``output_format`` and ``input`` (image names). Unknown keys are ignored and an input entry
that does not parse is reported and skipped, as DUCC does. Tag wildcards need a registry
and are refused here with a clear message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from computeops_grid.images.errors import ImageError
from computeops_grid.images.reference import ImageRef, parse_ref

log = logging.getLogger(__name__)


@dataclass
class Wishlist:
    path: Path
    cvmfs_repo: str = ""
    user: str = ""
    images: list[ImageRef] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (entry, reason)


def is_wishlist(spec: str) -> bool:
    return spec.endswith((".yaml", ".yml")) and Path(spec).is_file()


def load_wishlist(path: str | Path) -> Wishlist:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ImageError(f"{path}: cannot read wishlist ({exc})") from None
    if not isinstance(doc, dict):
        raise ImageError(f"{path}: a wishlist is a mapping with version, cvmfs_repo and input keys")
    if doc.get("version", 1) != 1:
        raise ImageError(f"{path}: wishlist version {doc.get('version')!r} is not supported (only 1)")
    wishlist = Wishlist(path, str(doc.get("cvmfs_repo") or ""), str(doc.get("user") or ""))
    entries = doc.get("input") or []
    if not isinstance(entries, list):
        raise ImageError(f"{path}: 'input' must be a list of image names")
    for entry in entries:
        text = str(entry)
        if "*" in text.rpartition(":")[2]:
            wishlist.skipped.append((text, "tag wildcards need a registry; list the tags explicitly"))
            continue
        try:
            wishlist.images.append(parse_ref(text))
        except ImageError as exc:
            wishlist.skipped.append((text, exc.message))
    for text, reason in wishlist.skipped:
        log.warning("%s: skipped wishlist entry %s: %s", path, text, reason)
    return wishlist


def source_for(ref: ImageRef, transport: str, storage: str = "") -> str:
    """The skopeo source of a wishlist image: a registry, or local containers-storage."""
    name = f"{ref.registry}/{ref.repository}"
    name += f":{ref.tag}" if ref.tag else ""
    name += f"@{ref.digest}" if ref.digest else ""
    if transport == "containers-storage":
        return f"containers-storage:{storage}{name}"
    return f"docker://{name}"
