"""Real images built here with buildah (overlay storage in a temp dir), offline from busybox-static,
and real registries on loopback (tests/services/registry.py) serving small busybox images.

Image ``registry.hub.docker.com/cops/test:v1`` has three layers:
1. busybox + /data/{keep.txt, gone.txt, old/a, old/sub/b}, a hard link and a symlink;
2. deletes /data/gone.txt (whiteout) and re-creates /data/old (opaque dir) holding only new.txt;
3. adds /data/three.txt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services.registry import Registry, require_tools, start_registry

from .helpers import busybox_image

NAME = "registry.hub.docker.com/cops/test:v1"
BUSYBOX = Path("/bin/busybox")


@dataclass(frozen=True)
class BuiltImage:
    storage: str  # containers-storage prefix [driver@root+runroot]
    oci: Path
    oci_archive: Path
    docker_archive: Path
    buildah: list[str]


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="session")
def built_image() -> Iterator[BuiltImage]:
    if shutil.which("buildah") is None or not BUSYBOX.is_file() or os.geteuid() != 0:
        pytest.skip("needs root, buildah and busybox-static (etc/deps/apt-images.txt)")
    base = Path(tempfile.mkdtemp(prefix="cops-buildah-"))
    try:
        yield _build(base)
    finally:
        # overlay storage keeps <root>/overlay mounted: unmount before removing
        overlay = base / "root" / "overlay"
        subprocess.run(["umount", "-l", str(overlay)], capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)


def _build(base: Path) -> BuiltImage:
    root, runroot = base / "root", base / "run"
    bud = ["buildah", "--root", str(root), "--runroot", str(runroot), "--storage-driver", "overlay"]
    rootfs = base / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "data" / "old" / "sub").mkdir(parents=True)
    shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
    for tool in ("sh", "cat", "ls", "echo"):
        (rootfs / "bin" / tool).symlink_to("busybox")
    (rootfs / "etc").mkdir()
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (rootfs / "etc" / "group").write_text("root:x:0:\n")
    (rootfs / "data" / "keep.txt").write_text("keep\n")
    (rootfs / "data" / "gone.txt").write_text("gone\n")
    (rootfs / "data" / "old" / "a").write_text("a\n")
    (rootfs / "data" / "old" / "sub" / "b").write_text("b\n")
    os.link(rootfs / "data" / "keep.txt", rootfs / "data" / "keep-hard.txt")
    (rootfs / "data" / "keep-link").symlink_to("keep.txt")
    ctr = _run([*bud, "from", "scratch"])
    _run([*bud, "copy", ctr, str(rootfs), "/"])
    _run([*bud, "config", "--env", "PATH=/bin", "--cmd", "/bin/sh", ctr])
    _run([*bud, "commit", "--quiet", ctr, "cops-l1"])
    ctr = _run([*bud, "from", "cops-l1"])
    mnt = Path(_run([*bud, "mount", ctr]))
    (mnt / "data" / "gone.txt").unlink()
    shutil.rmtree(mnt / "data" / "old")
    (mnt / "data" / "old").mkdir()
    (mnt / "data" / "old" / "new.txt").write_text("new\n")
    _run([*bud, "umount", ctr])
    _run([*bud, "commit", "--quiet", ctr, "cops-l2"])
    ctr = _run([*bud, "from", "cops-l2"])
    mnt = Path(_run([*bud, "mount", ctr]))
    (mnt / "data" / "three.txt").write_text("three\n")
    _run([*bud, "umount", ctr])
    _run([*bud, "commit", "--quiet", ctr, NAME])
    image = BuiltImage(
        storage=f"[overlay@{root}+{runroot}]",
        oci=base / "oci",
        oci_archive=base / "image.oci.tar",
        docker_archive=base / "image.docker.tar",
        buildah=bud,
    )
    _run([*bud, "push", "--quiet", NAME, f"oci:{image.oci}:v1"])
    _run([*bud, "push", "--quiet", NAME, f"oci-archive:{image.oci_archive}:v1"])
    _run([*bud, "push", "--quiet", NAME, f"docker-archive:{image.docker_archive}:{NAME}"])
    return image


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return tmp_path / "repo"


@dataclass
class LoopbackRegistries:
    """A plain-HTTP registry and one with TLS (test CA) and basic auth, for the whole session."""

    plain: Registry
    secure: Registry
    images: Path  # OCI layouts built so far, one per marker

    def push(self, registry: Registry, name: str, marker: str = "", *, base: str = "") -> None:
        """Push a busybox image whose /data/marker.txt holds ``marker`` (default: ``name``)."""
        marker = marker or name
        layout = self.images / f"{base}-{marker}".replace("/", "_").replace(":", "_")
        if not layout.exists():
            busybox_image(layout, marker, base=base)
        registry.push(layout, name)


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackRegistries]:
    require_tools()
    base = tmp_path_factory.mktemp("registries")
    plain = start_registry(base / "plain")
    try:
        secure = start_registry(base / "secure", tls=True, auth=True)
    except BaseException:
        plain.stop()
        raise
    try:
        yield LoopbackRegistries(plain, secure, base / "images")
    finally:
        plain.stop()
        secure.stop()
