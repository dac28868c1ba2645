"""Publish SOURCE... (archives, layouts, storage and registry images) in one call: what the CLI runs.

A wishlist is not a SOURCE here: ``image sync`` (:mod:`~computeops_grid.images.sync`) keeps a
repository in step with one, image by image.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from computeops_grid import extras
from computeops_grid.images.cvmfs_server import maybe_transaction
from computeops_grid.images.errors import ImageError
from computeops_grid.images.publish import Progress, Publisher, PublishResult
from computeops_grid.images.reference import ImageRef, parse_ref
from computeops_grid.images.sources import REGISTRY_SCHEMES, SourceImage, load_source
from computeops_grid.images.unpack import Limits, Policy
from computeops_grid.images.wishlist import is_wishlist

if TYPE_CHECKING:
    from computeops_grid.images.registry import RegistryOptions


def cvmfs_root(repo: str) -> Path:
    return Path("/cvmfs") / repo


def publish_sources(
    sources: list[str],
    root: str | Path,
    *,
    name: str | None = None,
    policy: Policy = Policy.FAIL,
    limits: Limits | None = None,
    cvmfs_repo: str | None = None,
    progress: Progress | None = None,
    registry: RegistryOptions | None = None,
) -> list[PublishResult]:
    """Publish every image of ``sources`` into ``root``; inside a CVMFS transaction if asked."""
    for spec in sources:
        if is_wishlist(spec):
            raise ImageError(
                f"{spec} is a wishlist: it is synchronised, not published",
                hint=f"cops-grid image sync {spec} (publishes what changed, removes what left it)",
            )
    publisher = Publisher(root, policy=policy, limits=limits, progress=progress)
    with maybe_transaction(cvmfs_repo), tempfile.TemporaryDirectory(prefix="cops-image-") as work:
        # lazily: each image is published before the next one is copied (skopeo sources)
        return [publisher.publish(image, ref) for image, ref in _expand(sources, name, Path(work), registry)]


def _expand(
    sources: list[str], name: str | None, work: Path, registry: RegistryOptions | None
) -> Iterator[tuple[SourceImage, ImageRef]]:
    registries = None
    if any(spec.startswith(REGISTRY_SCHEMES) for spec in sources):
        with extras.needed("images from a registry", "images"):
            from computeops_grid.images.remote import Registries  # noqa: PLC0415 - needs requests

        registries = Registries(registry)
    try:
        for number, spec in enumerate(sources):
            workdir = work / str(number)
            workdir.mkdir()
            images = load_source(spec, workdir=workdir, registries=registries)
            if name and (len(images) > 1 or len(sources) > 1):
                raise ImageError("--name needs exactly one SOURCE holding exactly one image")
            for image in images:
                chosen = parse_ref(name) if name else image.name
                if chosen is None:
                    raise ImageError(
                        f"{spec}: the image carries no name",
                        hint="give one with --name docker://REGISTRY/REPO:TAG",
                    )
                yield image, chosen
    finally:
        if registries is not None:
            registries.close()
