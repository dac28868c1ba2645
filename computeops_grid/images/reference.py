"""Image names: ``docker://busybox:latest`` -> ``registry.hub.docker.com/library/busybox:latest``.

The public path follows DUCC (``ducc/lib/image.go`` ``GetSimpleName``): ``<registry>/<repository>:<tag>``,
or ``:<digest>`` for an image without a tag. Docker Hub short names are normalised the way
``docker pull`` does it, with ``docker.io`` spelled ``registry.hub.docker.com`` as on
unpacked.cern.ch. Every component is validated, so a name can never escape the repository.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from computeops_grid.images.errors import ImageError

# The mapping rules, one table; the pilot wrapper (worker/cops_pilot.py) keeps the same table
# for the worker side. tests/pilot/test_tables.py checks that the two are equal and that both
# sides map (or refuse) every name of tests/data/image-refs.txt alike.
IMAGE_NAME_RULES: Mapping[str, Any] = MappingProxyType(
    {
        "default_registry": "registry.hub.docker.com",  # when the first part has no . or : nor is localhost
        "registry_aliases": ("docker.io", "index.docker.io", "registry-1.docker.io"),  # -> the default
        "official_namespace": "library",  # one-part names on the default registry: library/busybox
        "default_tag": "latest",  # neither TAG nor DIGEST
        "digest_algorithm": "sha256",  # DIGEST is sha256:<64 lower-case hex>
        "digest_hex_length": 64,
        "tag_max_length": 128,  # TAG is [A-Za-z0-9_][A-Za-z0-9_.-]*
    }
)
DOCKER_HUB: str = IMAGE_NAME_RULES["default_registry"]
_HUB_ALIASES = {*IMAGE_NAME_RULES["registry_aliases"], DOCKER_HUB}
# fullmatch, never match(): `$` also matches before a final newline
_REGISTRY_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?")
_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG_RE = re.compile(rf"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{IMAGE_NAME_RULES['tag_max_length'] - 1}}}")
_DIGEST_RE = re.compile(
    rf"{IMAGE_NAME_RULES['digest_algorithm']}:[0-9a-f]{{{IMAGE_NAME_RULES['digest_hex_length']}}}"
)
_SCHEMES = ("docker://", "https://", "http://")


@dataclass(frozen=True)
class ImageRef:
    """A validated image name. ``tag`` or ``digest`` (``sha256:<hex>``) is set, or both."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    @property
    def simple_reference(self) -> str:
        return self.tag or self.digest

    @property
    def public_path(self) -> str:
        """Path of the public symlink relative to the repository root."""
        return f"{self.registry}/{self.repository}:{self.simple_reference}"

    def __str__(self) -> str:
        text = f"docker://{self.registry}/{self.repository}"
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_ref(text: str) -> ImageRef:
    """Parse ``[scheme://][REGISTRY/]REPOSITORY[:TAG][@DIGEST]``; raise :class:`ImageError`."""
    rest = text.strip()
    for scheme in _SCHEMES:
        if rest.startswith(scheme):
            rest = rest[len(scheme) :]
            break
    hint = "write it as docker://REGISTRY/REPOSITORY:TAG, e.g. docker://busybox:latest"
    if not rest or rest.count("@") > 1:
        raise ImageError(f"invalid image name {text!r}", hint=hint)
    rest, at, digest = rest.partition("@")
    if at and not _DIGEST_RE.fullmatch(digest):
        raise ImageError(f"invalid digest {digest!r} in image name {text!r}", hint="use @sha256:<64 hex>")
    parts = rest.split("/")
    registry = DOCKER_HUB
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts.pop(0)
    last, colon, tag = parts[-1].partition(":")
    if colon and not tag:
        raise ImageError(f"empty tag in image name {text!r}", hint=hint)
    parts[-1] = last
    if not tag and not digest:
        tag = IMAGE_NAME_RULES["default_tag"]
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if len(parts) == 1:
            parts.insert(0, IMAGE_NAME_RULES["official_namespace"])
    _check(text, registry, parts, tag, hint)
    return ImageRef(registry, "/".join(parts), tag, digest)


def _check(text: str, registry: str, parts: list[str], tag: str, hint: str) -> None:
    if not _REGISTRY_RE.fullmatch(registry):
        raise ImageError(f"invalid registry {registry!r} in image name {text!r}", hint=hint)
    for part in parts:
        if not _COMPONENT_RE.fullmatch(part):
            raise ImageError(
                f"invalid repository component {part!r} in image name {text!r}",
                hint="repository components are lower-case letters, digits and . _ - separators",
            )
    if tag and not _TAG_RE.fullmatch(tag):
        raise ImageError(f"invalid tag {tag!r} in image name {text!r}", hint=hint)
