"""Image names: ``docker://busybox:latest`` -> ``registry.hub.docker.com/library/busybox:latest``.

The public path follows DUCC (``ducc/lib/image.go`` ``GetSimpleName``): ``<registry>/<repository>:<tag>``,
or ``:<digest>`` for an image without a tag. Docker Hub short names are normalised the way
``docker pull`` does it, with ``docker.io`` spelled ``registry.hub.docker.com`` as on
unpacked.cern.ch. Every component is validated, so a name can never escape the repository.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from computeops_grid.images.errors import ImageError

DOCKER_HUB = "registry.hub.docker.com"
_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", DOCKER_HUB}
_REGISTRY_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]{1,5})?$")
_COMPONENT_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
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
    rest, _, digest = rest.partition("@")
    if digest and not _DIGEST_RE.match(digest):
        raise ImageError(f"invalid digest {digest!r} in image name {text!r}", hint="use @sha256:<64 hex>")
    parts = rest.split("/")
    registry = DOCKER_HUB
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts.pop(0)
    last, _, tag = parts[-1].partition(":")
    parts[-1] = last
    if not tag and not digest:
        tag = "latest"
    if registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if len(parts) == 1:
            parts.insert(0, "library")
    _check(text, registry, parts, tag, hint)
    return ImageRef(registry, "/".join(parts), tag, digest)


def _check(text: str, registry: str, parts: list[str], tag: str, hint: str) -> None:
    if not _REGISTRY_RE.match(registry):
        raise ImageError(f"invalid registry {registry!r} in image name {text!r}", hint=hint)
    for part in parts:
        if not _COMPONENT_RE.match(part):
            raise ImageError(
                f"invalid repository component {part!r} in image name {text!r}",
                hint="repository components are lower-case letters, digits and . _ - separators",
            )
    if tag and not _TAG_RE.match(tag):
        raise ImageError(f"invalid tag {tag!r} in image name {text!r}", hint=hint)
