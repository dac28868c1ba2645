"""DUCC wishlists (``ducc/lib/recipe.go``): YAML with ``version``, ``user``, ``cvmfs_repo``,
``output_format`` and ``input`` (image names). Unknown keys are ignored and an input entry
that does not parse is reported and skipped, as DUCC does.

An entry is ``[scheme://]REGISTRY/REPOSITORY[:TAG][@DIGEST]``; ``http://`` names a plain-HTTP
registry, anything else HTTPS. A tag with ``*`` (``repo:*``, ``repo:v1.*``) is a wildcard,
expanded with the registry's tag list: ``*`` matches any run of characters and a tag is kept
when the whole tag matches (DUCC, ``ducc/lib/image.go``; other characters match themselves).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from computeops_grid.images.errors import ImageError
from computeops_grid.images.reference import ImageRef, parse_ref

log = logging.getLogger(__name__)
_PATTERN_RE = re.compile(r"[A-Za-z0-9_.*-]{1,128}")


@dataclass(frozen=True)
class Wish:
    """One wishlist entry: an image, or a repository and a tag pattern."""

    entry: str  # as written
    scheme: str  # "https" or "http"
    ref: ImageRef  # for a wildcard: tag ""
    pattern: str = ""  # the tag wildcard, e.g. "v1.*"

    @property
    def wildcard(self) -> bool:
        return bool(self.pattern)

    def matches(self, tag: str) -> bool:
        regex = ".*".join(re.escape(part) for part in self.pattern.split("*"))
        return re.fullmatch(regex, tag) is not None

    def with_tag(self, tag: str) -> ImageRef:
        return replace(self.ref, tag=tag)

    def covers(self, ref: ImageRef) -> bool:
        """Whether ``ref`` is (or may be, for a wildcard) one of the images this entry names."""
        if (ref.registry, ref.repository) != (self.ref.registry, self.ref.repository):
            return False
        return self.matches(ref.tag) if self.wildcard else ref.public_path == self.ref.public_path


@dataclass
class Wishlist:
    path: Path
    cvmfs_repo: str = ""
    user: str = ""
    wishes: list[Wish] = field(default_factory=list)
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
        try:
            wishlist.wishes.append(parse_wish(text))
        except ImageError as exc:
            wishlist.skipped.append((text, exc.message))
    for text, reason in wishlist.skipped:
        log.warning("%s: skipped wishlist entry %s: %s", path, text, reason)
    return wishlist


def parse_wish(text: str) -> Wish:
    scheme = "http" if text.strip().startswith("http://") else "https"
    name, at, _ = text.strip().partition("@")
    head, colon, tag = name.rpartition(":")
    if not colon or "/" in tag or "*" not in tag:
        return Wish(text, scheme, parse_ref(text))
    if at:
        raise ImageError(f"a tag wildcard with a digest makes no sense: {text!r}", hint="drop the @digest")
    if not _PATTERN_RE.fullmatch(tag):
        raise ImageError(
            f"invalid tag wildcard {tag!r} in {text!r}", hint="use tag characters and *, e.g. v1.*"
        )
    ref = parse_ref(f"{head}:latest")  # validates registry and repository
    return Wish(text, scheme, replace(ref, tag=""), tag)


def source_for(ref: ImageRef, transport: str, storage: str = "") -> str:
    """The skopeo source of a wishlist image: a registry, or local containers-storage."""
    name = f"{ref.registry}/{ref.repository}"
    name += f":{ref.tag}" if ref.tag else ""
    name += f"@{ref.digest}" if ref.digest else ""
    if transport == "containers-storage":
        return f"containers-storage:{storage}{name}"
    return f"docker://{name}"
