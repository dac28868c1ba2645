"""Registry images as :class:`~computeops_grid.images.sources.SourceImage`: manifest and config
fetched (digests checked), layer blobs streamed from the registry when the publisher unpacks them.

An image index (multi-platform tag) resolves to its linux/amd64 image; the digest the tag
itself has (the index's) is what a later ``HEAD`` is compared with.
"""

from __future__ import annotations

import functools
import threading
from types import TracebackType

from computeops_grid.images.errors import ImageError, RegistryError
from computeops_grid.images.reference import ImageRef, parse_ref
from computeops_grid.images.registry import RegistryClient, RegistryOptions
from computeops_grid.images.sources import (
    SourceImage,
    image_parts,
    is_index,
    parse_json,
    pick_platform,
    sha256_digest,
)


class Registries:
    """One :class:`RegistryClient` per ``scheme://host`` for a run; ``close`` ends them all."""

    def __init__(self, options: RegistryOptions | None = None) -> None:
        self.options = options or RegistryOptions()
        self._clients: dict[tuple[str, str], RegistryClient] = {}
        self._lock = threading.Lock()

    def client(self, scheme: str, host: str) -> RegistryClient:
        with self._lock:
            key = (scheme, host)
            if key not in self._clients:
                self._clients[key] = RegistryClient(scheme, host, self.options)
            return self._clients[key]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> Registries:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def scheme_of(spec: str) -> str:
    """``http`` for an ``http://`` name (a plain-HTTP registry), else ``https``."""
    return "http" if spec.strip().startswith("http://") else "https"


def source_url(scheme: str, ref: ImageRef) -> str:
    text = f"{scheme}://{ref.registry}/{ref.repository}"
    text += f":{ref.tag}" if ref.tag else ""
    return text + (f"@{ref.digest}" if ref.digest else "")


def load_remote(spec: str, registries: Registries | None = None) -> SourceImage:
    """The image ``spec`` (``docker://``, ``https://`` or ``http://`` name) of a registry."""
    ref = parse_ref(spec)
    client = (registries or Registries()).client(scheme_of(spec), ref.registry)
    return fetch_image(client, ref)[0]


def fetch_image(client: RegistryClient, ref: ImageRef) -> tuple[SourceImage, str]:
    """(the image, the digest of what ``ref`` names: the index's for a multi-platform tag)."""
    repo = ref.repository
    where = source_url(client.scheme, ref)
    data, media_type, claimed = client.manifest(repo, ref.digest or ref.tag)
    top = sha256_digest(data)
    wanted = ref.digest or claimed
    if wanted and wanted != top:
        raise RegistryError(
            f"{where}: the manifest does not match its digest {wanted[:19]} (corrupt transfer)"
        )
    doc = parse_json(data, f"{where}: manifest")
    if is_index(doc, media_type):
        choice = pick_platform(doc)
        if choice is None:
            raise ImageError(f"{where}: no linux/amd64 image in this multi-platform tag")
        data = client.manifest(repo, str(choice.get("digest", "")))[0]
        if sha256_digest(data) != choice.get("digest"):
            raise RegistryError(f"{where}: the linux/amd64 manifest does not match its digest")
        doc = parse_json(data, f"{where}: manifest")
    config_digest, layers = image_parts(doc, where)
    config = client.blob(repo, config_digest)
    if sha256_digest(config) != config_digest:
        raise RegistryError(f"{where}: the image config does not match its digest (corrupt transfer)")
    image = SourceImage(
        manifest=data,
        manifest_digest=sha256_digest(data),
        config=config,
        config_digest=config_digest,
        layers=layers,
        open_blob=functools.partial(client.open_blob, repo),
        name=ref,
        origin=where,
        config_json=parse_json(config, f"{where}: config"),
    )
    return image, top
