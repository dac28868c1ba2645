"""Runtimes that cannot create mount points (charliecloud, runc) on images without /srv or /cvmfs,
as most DUCC images are: the wrapper runs them on a shadow root in its own scratch (empty mount
points, the image's top-level entries bound read-only), never writing into the image. ch-run 0.31
binds read-write, so it gets a shadow root only over a read-only image (CVMFS); on a writable one
it is refused and the next runtime runs. Also: the lead's default busybox image works as is."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from computeops_grid import worker

from .conftest import IMAGE_BARE, PilotRunner, make_rootfs

pytestmark = [pytest.mark.root, pytest.mark.slow]

PAYLOAD = (
    "echo pwd:$(pwd); ls /cvmfs; cat /etc/image-marker; echo made > result.txt;"
    " (touch /etc/written) 2>/dev/null && echo etc:rw || echo etc:ro; exit 42"
)


@pytest.mark.parametrize("user", ["root", "copsuser"])
@pytest.mark.parametrize("rt", ["charliecloud", "runc"])
def test_bare_cvmfs_image_runs_on_a_shadow_root(run_pilot: PilotRunner, rt: str, user: str) -> None:
    result = run_pilot(["--image", IMAGE_BARE, "--runtime", rt, "--", "/bin/sh", "-c", PAYLOAD], user=user)
    assert result.code == 42, result.stderr
    lines = result.stdout.splitlines()
    assert "pwd:/srv" in lines
    assert "unpacked.cern.ch" in lines  # /cvmfs bound although the image has no /cvmfs
    assert "cops-test-image" in lines
    assert "etc:ro" in lines
    assert (result.workdir / "result.txt").read_text() == "made\n"
    assert result.report["runtime"] == rt
    assert [a["status"] for a in result.report["attempts"]] == ["ok"]


@pytest.fixture(scope="module")
def bare_rootfs(run_pilot: PilotRunner) -> Path:
    """A writable rootfs directory without /srv and /cvmfs, readable by the unprivileged user."""
    root = make_rootfs(run_pilot.node.base / "bare-rootfs", mountpoints=False)
    (root / "etc" / "image-marker").write_text("cops-test-image\n")
    for path in [root, *root.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    return root


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("user", ["root", "copsuser"])
def test_runc_on_a_writable_bare_image_writes_nothing_into_it(
    run_pilot: PilotRunner, bare_rootfs: Path, user: str
) -> None:
    before = _tree(bare_rootfs)
    result = run_pilot(
        ["--image", str(bare_rootfs), "--runtime", "runc", "--", "/bin/sh", "-c", PAYLOAD], user=user
    )
    assert result.code == 42, result.stderr
    assert "pwd:/srv" in result.stdout.splitlines()
    assert "etc:ro" in result.stdout.splitlines()
    assert _tree(bare_rootfs) == before


def test_charliecloud_refuses_a_writable_bare_image_and_falls_back(
    run_pilot: PilotRunner, bare_rootfs: Path
) -> None:
    before = _tree(bare_rootfs)
    result = run_pilot(
        ["--image", str(bare_rootfs), "--runtime", "charliecloud,bubblewrap", "--", "/bin/sh", "-c", PAYLOAD]
    )
    assert result.code == 42, result.stderr
    first, second = result.report["attempts"]
    assert (first["name"], first["status"]) == ("charliecloud", "refused")
    assert first["reason"] == "image lacks mount point /srv"
    assert (second["name"], second["status"]) == ("bubblewrap", "ok")
    assert _tree(bare_rootfs) == before


@pytest.mark.parametrize("rt", ["charliecloud", "runc"])
def test_default_busybox_image_runs_directly(tmp_path: Path, rt: str) -> None:
    """The lead's default image (computeops_grid/images/default.py) has /srv and /cvmfs: no shadow."""
    from computeops_grid.images.default import PUBLIC, ensure_default_image

    if shutil.which("busybox") is None:
        pytest.skip("busybox-static is missing")
    root = tmp_path / "images"
    ensure_default_image(root)
    workdir = tmp_path / "wd"
    workdir.mkdir()
    env = {**os.environ, "COPS_PILOT_CACHE_DIR": str(tmp_path / "cache"), "COPS_PILOT_CONFIG": os.devnull}
    argv = [sys.executable, str(worker.pilot()), "--image", "docker://busybox:latest", "--image-root"]
    argv += [str(root), "--runtime", rt, "--workdir", str(workdir), "--report", "r.json", "-v"]
    proc = subprocess.run(
        [*argv, "--", "/bin/sh", "-c", "pwd; echo x > out; exit 7"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout == "/srv\n"
    assert (workdir / "out").read_text() == "x\n"
    if rt == "charliecloud":  # the image itself is the root, not a shadow root
        argv = json.loads((workdir / "r.json").read_text())["argv"]
        assert str((root / PUBLIC).resolve()) in argv


def test_only_missing_top_level_mount_points_are_shadowed(bare_rootfs: Path, tmp_path: Path) -> None:
    """/data (absent) can be made on a shadow root; /home/data cannot: /home comes from the image."""
    from computeops_grid.cli.pilot import load_wrapper

    pilot = load_wrapper()
    image = pilot.Image(str(bare_rootfs), str(bare_rootfs), "dir")

    def launch(dst: str) -> object:
        binds = [pilot.Bind(str(tmp_path), dst, False)]
        return pilot.Launch(image, ["/bin/true"], str(tmp_path), binds, {}, False, str(tmp_path))

    runc = pilot.runtime("runc")
    assert runc.refuse(launch("/data")) is None
    assert runc.refuse(launch("/home/data")) == "image lacks mount point /home/data"
    assert runc.plan_binds(launch("/data"))[1] is True  # needs the shadow root
    assert pilot.runtime("charliecloud").refuse(launch("/data")) == "image lacks mount point /srv"
