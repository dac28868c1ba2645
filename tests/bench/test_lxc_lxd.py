"""LXC and LXD in the study (bench/lxc.py), against the real lxc-execute and a private LXD."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from computeops_grid.bench import features, rootless
from computeops_grid.bench.image import BenchImage
from computeops_grid.bench.lxc import lxd_for_study
from computeops_grid.bench.runtimes import discover

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="LXC and LXD as root"),
]


@pytest.mark.skipif(shutil.which("lxc-execute") is None, reason="needs Debian's lxc")
def test_lxc_runs_payloads_in_its_own_namespaces(
    bench_image: BenchImage, scratch: Path, tmp_path: Path
) -> None:
    systems, infos, adapters = discover(["lxc", "rkt"], bench_image.rootfs, scratch, tmp_path)
    by_name = {i.name: i for i in infos}
    assert [s.name for s in systems] == ["bare-metal", "lxc"], by_name["lxc"].why
    assert by_name["lxc"].version.startswith("5.")
    assert "archived" in by_name["rkt"].why and "no Debian package" in by_name["rkt"].why
    lxc = adapters["lxc"]
    assert features.exit_code(lxc, scratch) == "42 passed"
    assert features.binds(lxc, scratch) == "/cvmfs ro enforced; scratch at /srv rw"
    assert features.host_view(lxc, scratch).startswith("own pid+net")
    config = next(lxc.private.glob("cops-*.conf")).read_text()
    assert "lxc.environment = PATH=" in config and (lxc.private.stat().st_mode & 0o077) == 0
    assert rootless.works_rootless(lxc, scratch, "nobody").startswith("no (as nobody")


@pytest.mark.skipif(shutil.which("lxd") is None, reason="needs Debian's lxd")
def test_private_lxd_runs_payloads_and_leaves_nothing(
    bench_image: BenchImage, scratch: Path, tmp_path: Path
) -> None:
    with lxd_for_study(True, bench_image.rootfs) as note:
        assert note.startswith("lxd: the study started its own LXD daemon"), note
        root = Path(os.environ["LXD_DIR"])
        assert (root / "unix.socket").exists()
        _systems, infos, adapters = discover(["lxd"], bench_image.rootfs, scratch, tmp_path)
        assert infos[-1].available, infos[-1].why
        lxd = adapters["lxd"]
        assert features.exit_code(lxd, scratch) == "42 passed"
        assert features.userns(lxd, scratch).startswith("yes (uid map")
        assert features.daemon(lxd, scratch).startswith("detached")
        assert "a container costs" in lxd.runtime.note()
    assert "LXD_DIR" not in os.environ
    assert not root.exists()
    assert str(root) not in Path("/proc/mounts").read_text()
