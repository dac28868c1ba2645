"""Which Docker Engine image runs a job: the engine's own, or a rootfs imported once.

A job names ``docker://busybox:latest``. When the engine already has that image it is
used by reference. Otherwise the image's flat root filesystem in the local image
repository (laid out like ``/cvmfs/unpacked.cern.ch``: ``<registry>/<repo>:<tag>`` is a
symlink to ``.flat/<hh>/<config digest>``) is ``docker import``-ed once and tagged
``cops-grid-rootfs:<digest>``, so a second job (or a second client) finds it by digest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tarfile
import tempfile
from pathlib import Path

import docker
import docker.errors

from computeops_grid.errors import BackendError, JobFileError
from computeops_grid.images.errors import ImageError
from computeops_grid.images.reference import ImageRef, parse_ref

log = logging.getLogger(__name__)

CACHE_REPO = "cops-grid-rootfs"
DEFAULT_ENV = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def engine_name(image: str) -> str:
    """``docker://busybox:latest`` -> ``busybox:latest`` (the name ``docker run`` takes)."""
    return image.split("://", 1)[1] if "://" in image else image


def image_ref(image: str) -> ImageRef:
    try:
        return parse_ref(image)
    except ImageError as exc:
        raise JobFileError(exc.message, field="image", hint=exc.hint) from exc


def rootfs_digest(rootfs: Path) -> str:
    """The flat directory's name when it is DUCC's ``.flat/<hh>/<hex>``; else a tree hash."""
    real = rootfs.resolve()
    name = real.name
    if real.parent.parent.name == ".flat" and len(name) == 64 and all(c in "0123456789abcdef" for c in name):
        return name
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(real):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            digest.update(str(path.relative_to(real)).encode())
            if path.is_file() and not path.is_symlink():
                digest.update(path.read_bytes())
    return digest.hexdigest()


def image_env(image_root: Path, ref: ImageRef) -> list[str]:
    """``Env`` of the image's OCI config when the repository kept it, else a default PATH."""
    config = image_root / ".metadata" / ref.public_path / "config.json"
    try:
        env = json.loads(config.read_text())["config"]["Env"]
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_ENV
    return [e for e in env if isinstance(e, str)] or DEFAULT_ENV


def ensure_engine_image(client: docker.DockerClient, image: str, image_root: Path) -> str:
    """A name the engine can run ``image`` by; imports the rootfs from ``image_root`` if needed."""
    name = engine_name(image)
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    ref = image_ref(image)
    rootfs = image_root / ref.public_path
    if not rootfs.is_dir():
        raise BackendError(
            f"image {image} is neither known to the Docker engine nor in the image repository {image_root}",
            backend="docker",
            hint=f"`docker pull {name}` on the engine, or `cops-grid image publish {image}`",
        )
    tag = f"{CACHE_REPO}:{rootfs_digest(rootfs)}"
    try:
        client.images.get(tag)
        return tag
    except docker.errors.ImageNotFound:
        pass
    changes = [f"ENV {e}" for e in image_env(image_root, ref) if "=" in e]
    changes.append(f'LABEL org.cops-grid.source="{ref.public_path}"')
    with tempfile.TemporaryDirectory(prefix="cops-import-") as tmp:
        archive = Path(tmp) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(str(rootfs.resolve()), arcname=".")
        repo, _, digest = tag.partition(":")
        log.info("importing %s from %s as %s", image, rootfs, tag)
        client.api.import_image_from_file(str(archive), repository=repo, tag=digest, changes=changes)
    return tag
