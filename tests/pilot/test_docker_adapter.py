"""The pilot wrapper's ``docker`` adapter against a real, private dockerd (no mocks).

The wrapper drives the ``docker`` CLI by argv; ``DOCKER_HOST`` points it at the daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from computeops_grid import worker
from computeops_grid.bench.daemons import PrivateDockerd, docker_cli
from tests.services.dockerd import private_dockerd

pytestmark = [pytest.mark.service, pytest.mark.slow]
BUSYBOX = "registry.hub.docker.com/library/busybox:latest"


@pytest.fixture(scope="module")
def dockerd() -> Iterator[PrivateDockerd]:
    with private_dockerd(swarm=False) as daemon:
        yield daemon


def pilot(
    daemon: PrivateDockerd, image_root: Path, workdir: Path, *command: str
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, str(worker.pilot()), "--image", "docker://busybox:latest", "--image-root",
            str(image_root), "--runtime", "docker", "--workdir", str(workdir), "--env", "GREETING=hi",
            "--report", "report.json", "--", *command]  # fmt: skip
    env = {
        **os.environ,
        "DOCKER_HOST": daemon.host,
        "PATH": f"{Path(str(docker_cli())).parent}:{os.environ['PATH']}",
    }
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def cached_tags(daemon: PrivateDockerd) -> list[str]:
    out = daemon.cli("images", "cops-grid-rootfs", "--format", "{{.Repository}}:{{.Tag}}").stdout
    return out.split()


def test_rootfs_is_imported_once_and_runs_with_exit_code(
    dockerd: PrivateDockerd, image_root: Path, tmp_path: Path
) -> None:
    work = tmp_path / "w"
    work.mkdir()
    first = pilot(dockerd, image_root, work, "sh", "-c", "echo $GREETING > out.txt; echo payload; exit 3")
    assert first.returncode == 3, first.stderr
    assert "payload" in first.stdout
    assert (work / "out.txt").read_text() == "hi\n"
    digest = (image_root / BUSYBOX).resolve().name
    assert cached_tags(dockerd) == [f"cops-grid-rootfs:{digest}"]
    report = json.loads((work / "report.json").read_text())  # what ran: the engine's own image id
    tag = f"cops-grid-rootfs:{digest}"
    engine_id = dockerd.cli("image", "inspect", "--format", "{{.Id}}", tag).stdout.strip()
    assert report["engine_image"] == {"ref": tag, "id": engine_id}
    assert report["image_digest"] == f"sha256:{digest}"
    assert report["runtime_version"].startswith("docker ")
    second = pilot(dockerd, image_root, work, "true")
    assert second.returncode == 0, second.stderr
    assert cached_tags(dockerd) == [f"cops-grid-rootfs:{digest}"]  # cached by digest, not imported again


def test_image_known_to_the_engine_runs_by_reference(
    dockerd: PrivateDockerd, image_root: Path, tmp_path: Path
) -> None:
    rootfs = tmp_path / "engine-copy"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "bin" / "busybox").write_bytes((image_root / BUSYBOX / "bin" / "busybox").read_bytes())
    (rootfs / "bin" / "busybox").chmod(0o755)
    for applet in ("sh", "cat"):
        (rootfs / "bin" / applet).symlink_to("busybox")
    (rootfs / "engine-marker").write_text("from the engine\n")
    archive = tmp_path / "r.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(str(rootfs), arcname=".")
    dockerd.cli("import", "--change", "ENV PATH=/bin", str(archive), "busybox:latest")
    try:
        work = tmp_path / "w"
        work.mkdir()
        res = pilot(dockerd, image_root, work, "cat", "/engine-marker")
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip().endswith("from the engine")
    finally:
        dockerd.cli("rmi", "busybox:latest")


def test_no_daemon_is_a_start_failure_not_a_payload_exit(image_root: Path, tmp_path: Path) -> None:
    gone = PrivateDockerd(tmp_path / "none")
    res = pilot(gone, image_root, tmp_path, "true")
    assert res.returncode in range(240, 250), (res.returncode, res.stderr)
    assert "docker" in res.stderr
