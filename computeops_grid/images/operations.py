"""Publish SOURCE... (archives, layouts, storage images, wishlists) in one call: what the CLI runs."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from computeops_grid.images.cvmfs_server import transaction
from computeops_grid.images.errors import ImageError
from computeops_grid.images.publish import Progress, Publisher, PublishResult
from computeops_grid.images.reference import ImageRef, parse_ref
from computeops_grid.images.sources import SourceImage, load_source
from computeops_grid.images.unpack import Limits, Policy
from computeops_grid.images.wishlist import is_wishlist, load_wishlist, source_for


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
    transport: str = "docker",
    storage: str = "",
    progress: Progress | None = None,
) -> list[PublishResult]:
    """Publish every image of ``sources`` into ``root``; inside a CVMFS transaction if asked."""
    publisher = Publisher(root, policy=policy, limits=limits, progress=progress)
    with _maybe_transaction(cvmfs_repo), tempfile.TemporaryDirectory(prefix="cops-image-") as work:
        # lazily: each image is published before the next one is copied (skopeo sources)
        return [
            publisher.publish(image, ref)
            for image, ref in _expand(sources, name, transport, storage, Path(work))
        ]


@contextlib.contextmanager
def _maybe_transaction(repo: str | None) -> Iterator[None]:
    if repo:
        with transaction(repo):
            yield
    else:
        yield


def _expand(
    sources: list[str], name: str | None, transport: str, storage: str, work: Path
) -> Iterator[tuple[SourceImage, ImageRef]]:
    for number, spec in enumerate(sources):
        workdir = work / str(number)
        workdir.mkdir()
        if is_wishlist(spec):
            if name:
                raise ImageError("--name cannot be used with a wishlist: each entry names its image")
            for ref in load_wishlist(spec).images:
                for image in load_source(source_for(ref, transport, storage), workdir=workdir):
                    yield image, ref
                shutil.rmtree(workdir / "skopeo-oci", ignore_errors=True)  # after its publish
            continue
        images = load_source(spec, workdir=workdir)
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
