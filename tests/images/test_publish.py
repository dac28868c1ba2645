"""Publish a real buildah-built image from every SOURCE kind; layout, whiteouts, re-publish."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from computeops_grid.images.operations import publish_sources
from computeops_grid.images.publish import Publisher
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.repository import gc, list_images, remove
from computeops_grid.images.sources import load_source
from computeops_grid.images.sync import SyncOptions, sync_wishlist
from computeops_grid.images.verify import verify

from .conftest import NAME, BuiltImage

pytestmark = [pytest.mark.root, pytest.mark.slow]
PUBLIC = "registry.hub.docker.com/cops/test:v1"


def _sources(image: BuiltImage, tmp_path: Path) -> dict[str, str]:
    wishlist = tmp_path / "wishlist.yaml"
    wishlist.write_text(
        f"version: 1\nuser: cops\ncvmfs_repo: unpacked.example.org\ninput:\n  - https://{NAME}\n"
    )
    return {
        "oci": f"oci:{image.oci}",
        "oci-archive": f"oci-archive:{image.oci_archive}",
        "docker-archive": f"docker-archive:{image.docker_archive}",
        "containers-storage": f"containers-storage:{image.storage}{NAME}",
        "wishlist": str(wishlist),
    }


def check_tree(flat: Path) -> None:
    data = flat / "data"
    assert (data / "keep.txt").read_text() == "keep\n"
    assert not (data / "gone.txt").exists(), "whiteout not applied"
    assert sorted(os.listdir(data / "old")) == ["new.txt"], "opaque directory not applied"
    assert (data / "three.txt").read_text() == "three\n"
    assert os.readlink(data / "keep-link") == "keep.txt"
    assert (data / "keep-hard.txt").read_text() == "keep\n"
    assert os.stat(data / "keep-hard.txt").st_ino == os.stat(data / "keep.txt").st_ino
    assert (flat / ".singularity.d" / "runscript").is_file()
    assert os.access(flat / "bin" / "busybox", os.X_OK)


@pytest.mark.parametrize("kind", ["oci", "oci-archive", "docker-archive", "containers-storage", "wishlist"])
def test_publish_each_source_kind(built_image: BuiltImage, repo: Path, tmp_path: Path, kind: str) -> None:
    spec = _sources(built_image, tmp_path)[kind]
    if kind == "wishlist":  # a wishlist is synced; its images taken from local storage here
        options = SyncOptions(transport="containers-storage", storage=built_image.storage)
        report = sync_wishlist(spec, repo, options)
        published = [(o.name, o.config_digest) for o in report.outcomes if o.status.value == "published"]
    else:
        name = None if kind in ("docker-archive", "containers-storage") else f"docker://{NAME}"
        published = [(r.ref.public_path, r.config_digest) for r in publish_sources([spec], repo, name=name)]
    assert [path for path, _ in published] == [PUBLIC]
    config = published[0][1]
    link = repo / PUBLIC
    assert link.is_symlink()
    assert os.readlink(link) == f"../../.flat/{config[7:9]}/{config[7:]}"
    check_tree(link)
    assert (repo / ".metadata" / PUBLIC / "manifest.json").is_file()
    assert len(list((repo / ".layers").glob("??/*/layerfs"))) == 3
    assert verify(repo).ok


def test_republish_unchanged_does_not_unpack(built_image: BuiltImage, repo: Path) -> None:
    image = load_source(f"oci:{built_image.oci}")[0]
    publisher = Publisher(repo)
    first = publisher.publish(image, parse_ref(NAME))
    second = publisher.publish(image, parse_ref(NAME))
    assert first.unpacked
    assert first.layers_new == 3
    assert not second.unpacked
    # a second name for the same image shares the flat; a new image reuses the layers
    publisher.publish(image, parse_ref("docker://example.org/other/name:1"))
    assert {i.config_hex for i in list_images(repo)} == {image.config_hex}


def test_rm_then_gc_frees_flat_and_layers(built_image: BuiltImage, repo: Path) -> None:
    image = load_source(f"oci:{built_image.oci}")[0]
    Publisher(repo).publish(image, parse_ref(NAME))
    (repo / ".cops" / "tmp" / "publish-crashed").mkdir()
    remove(repo, f"docker://{NAME}")
    report = gc(repo)
    assert not (repo / ".flat" / image.config_hex[:2] / image.config_hex).exists()
    assert not list((repo / ".layers").glob("??/*/layerfs"))
    assert any("publish-crashed" in r for r in report.removed)
    assert list_images(repo) == []


def test_verify_detects_tampering(built_image: BuiltImage, repo: Path) -> None:
    image = load_source(f"oci:{built_image.oci}")[0]
    Publisher(repo).publish(image, parse_ref(NAME))
    victim = repo / PUBLIC / "data" / "three.txt"
    victim.unlink()
    victim.write_text("THREE\n")
    report = verify(repo)
    assert not report.ok
    assert any("data/three.txt differs" in p for p in report.problems)
