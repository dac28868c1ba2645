"""The wrapper's provenance pieces, called directly: a digest-pinned name runs its `.flat`
directory whatever the tag names now, or nothing (242, naming the digest); a .sif's digest is
its sha256; a runtime's version is asked once per node and binary, then read from the cache."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import ModuleType

import pytest

from computeops_grid import worker

A, B = "a" * 64, "b" * 64


@pytest.fixture(scope="module")
def pilot() -> ModuleType:
    return worker.load_pilot()


def repo_with_tag_on(root: Path, target: str, *others: str) -> Path:
    for digest in (target, *others):
        (root / ".flat" / digest[:2] / digest / "bin").mkdir(parents=True)
    tag = root / "registry.example.org" / "team" / "app:v1"
    tag.parent.mkdir(parents=True)
    tag.symlink_to(f"../../.flat/{target[:2]}/{target}")
    return root


def test_a_pinned_name_runs_its_digest_after_the_tag_moved(pilot: ModuleType, tmp_path: Path) -> None:
    root = repo_with_tag_on(tmp_path, B, A)  # the tag now names B; A is still in the repository
    image = pilot.resolve_image(f"docker://registry.example.org/team/app:v1@sha256:{A}", str(root))
    assert image.path == str((root / ".flat" / "aa" / A).resolve())
    assert pilot.image_digest(image) == (f"sha256:{A}", "flat-directory")
    tagged = pilot.resolve_image("docker://registry.example.org/team/app:v1", str(root))
    assert pilot.image_digest(tagged) == (f"sha256:{B}", "flat-directory")


def test_a_pinned_digest_that_is_gone_is_image_not_found_never_the_tag(
    pilot: ModuleType, tmp_path: Path
) -> None:
    root = repo_with_tag_on(tmp_path, B)
    with pytest.raises(pilot.PilotError) as caught:
        pilot.resolve_image(f"docker://registry.example.org/team/app:v1@sha256:{A}", str(root))
    assert caught.value.code == pilot.EXIT_IMAGE_NOT_FOUND
    assert f"sha256:{A}" in caught.value.line()


def test_a_sif_digest_is_its_sha256_and_a_plain_rootfs_has_none(pilot: ModuleType, tmp_path: Path) -> None:
    sif = tmp_path / "app.sif"
    sif.write_bytes(os.urandom(3 << 20))  # more than one read block
    image = pilot.resolve_image(str(sif), str(tmp_path))
    assert pilot.image_digest(image) == (
        "sha256:" + hashlib.sha256(sif.read_bytes()).hexdigest(),
        "sif-sha256",
    )
    (tmp_path / "rootfs").mkdir()
    assert pilot.image_digest(pilot.resolve_image(str(tmp_path / "rootfs"), str(tmp_path))) == (
        None, "rootfs-directory",
    )  # fmt: skip


def test_a_runtime_version_is_asked_once_per_binary(pilot: ModuleType, tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    binary = tmp_path / "bwrap"
    binary.write_text(f"#!/bin/sh\necho call >> {calls}\necho 'bubblewrap 0.8.0'\n")
    binary.chmod(0o755)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    rt = pilot.runtime("bubblewrap")
    assert pilot.runtime_version(rt, str(binary), str(cache)) == "bubblewrap 0.8.0"
    assert pilot.runtime_version(rt, str(binary), str(cache)) == "bubblewrap 0.8.0"
    assert calls.read_text().splitlines() == ["call"]  # the second answer came from the cache
    assert pilot.runtime_version(rt, str(tmp_path / "missing"), str(cache)) == ""


def test_node_facts_name_this_node(pilot: ModuleType) -> None:
    facts = pilot.node_facts()
    assert facts["hostname"] == os.uname().nodename
    assert facts["kernel"] == os.uname().release
    assert facts["os"] and facts["cpu_model"]
    assert isinstance(facts["gpus"], list)
