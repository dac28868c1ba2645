"""etc/hosts and etc/resolv.conf: kept when the image has them, created empty when it has not.

DUCC truncates both (cvmfs/README.md says why we do not). Runtimes that bind the host's files
over them need them to exist in the read-only image: checked here with charliecloud's ch-run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from computeops_grid.images.publish import Publisher
from computeops_grid.images.reference import parse_ref
from computeops_grid.images.sources import load_source
from computeops_grid.images.verify import verify

from .helpers import Member, member, oci_layout

BUSYBOX = Path("/bin/busybox")
HOSTS = b"10.1.2.3 db.experiment.example\n"
RESOLV = b"nameserver 10.9.9.9\n"


def _publish(tmp_path: Path, with_etc: bool) -> Path:
    layer: list[Member] = [
        member("bin/", tarfile.DIRTYPE, mode=0o755),
        member("bin/busybox", data=BUSYBOX.read_bytes() if BUSYBOX.is_file() else b"", mode=0o755),
        member("bin/cat", tarfile.SYMTYPE, link="busybox"),
    ]
    if with_etc:
        layer += [member("etc/hosts", data=HOSTS), member("etc/resolv.conf", data=RESOLV)]
    repo = tmp_path / "repo"
    image = load_source(f"oci:{oci_layout(tmp_path / 'oci', [layer])}")[0]
    Publisher(repo).publish(image, parse_ref("docker://t/etc:1"))
    assert verify(repo).ok, verify(repo).problems
    return repo / "registry.hub.docker.com" / "t" / "etc:1"


def test_image_files_are_kept(tmp_path: Path) -> None:
    flat = _publish(tmp_path, with_etc=True)
    assert (flat / "etc" / "hosts").read_bytes() == HOSTS
    assert (flat / "etc" / "resolv.conf").read_bytes() == RESOLV


def test_missing_files_are_created_empty_and_readable(tmp_path: Path) -> None:
    flat = _publish(tmp_path, with_etc=False)
    for name in ("hosts", "resolv.conf"):
        path = flat / "etc" / name
        assert path.read_bytes() == b""
        assert os.stat(path).st_mode & 0o777 == 0o644


@pytest.mark.parametrize("with_etc", [True, False])
def test_ch_run_binds_the_hosts_files_over_the_image(tmp_path: Path, with_etc: bool) -> None:
    if shutil.which("ch-run") is None or not BUSYBOX.is_file():
        pytest.skip("needs charliecloud and busybox-static (etc/deps/apt-images.txt)")
    flat = _publish(tmp_path, with_etc=with_etc)
    env = {**os.environ, "USER": os.environ.get("USER") or str(os.getuid())}
    argv = [
        "ch-run",
        "--no-passwd",
        os.path.realpath(flat),
        "--",
        "/bin/cat",
        "/etc/hosts",
        "/etc/resolv.conf",
    ]
    shown = subprocess.run(argv, capture_output=True, check=True, env=env).stdout
    host = Path("/etc/hosts").read_bytes() + Path("/etc/resolv.conf").read_bytes()
    assert shown == host, "ch-run shows the host's files whatever the image holds"
