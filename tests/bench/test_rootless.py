""" "Works rootless" is measured: the real wrapper runs a payload as an unprivileged account."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import pytest

from computeops_grid.bench.image import BenchImage
from computeops_grid.bench.rootless import unreachable, works_rootless
from computeops_grid.bench.runtimes import discover

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root"),
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap (Debian bubblewrap) absent"),
]


def test_runtimes_run_a_payload_as_the_user(open_image: BenchImage, user: str, tmp_path: Path) -> None:
    names = [n for n in ("bubblewrap", "podman") if shutil.which("bwrap" if n == "bubblewrap" else n)]
    _systems, _infos, adapters = discover(names, open_image.rootfs, tmp_path, tmp_path)
    uid = pwd.getpwnam(user).pw_uid
    cell = works_rootless(adapters["bubblewrap"], tmp_path, user)
    assert cell == f"yes (as {user}, uid {uid} outside, {uid} inside)"
    if "podman" in adapters:  # podman 4.3 cannot use a rootfs the user does not own (see the notes)
        cell = works_rootless(adapters["podman"], tmp_path, user)
        assert cell.startswith(f"no (as {user}, exit ")
        assert "podman" in cell


def test_image_out_of_reach_is_said_not_guessed(bench_image: BenchImage, user: str, tmp_path: Path) -> None:
    entry = pwd.getpwnam(user)
    closed = Path(tempfile.mkdtemp(dir="/tmp"))  # mode 0700, owned by root, in a world-open /tmp
    try:
        assert unreachable(closed / "x", entry.pw_uid, entry.pw_gid).startswith(f"{closed} (mode 0700")
    finally:
        closed.rmdir()
    assert unreachable(Path("/usr/bin"), entry.pw_uid, entry.pw_gid) == ""
    _s, _i, adapters = discover(["bubblewrap"], bench_image.rootfs, tmp_path, tmp_path)
    blocked = unreachable(bench_image.rootfs, entry.pw_uid, entry.pw_gid)
    if blocked:  # pytest's base temp dir is 0700: the user cannot reach the image there
        cell = works_rootless(adapters["bubblewrap"], tmp_path, user)
        assert cell == f"not measured: the image is out of the user's reach: {blocked}"
    assert works_rootless(adapters["bubblewrap"], tmp_path, "no-such-user-xyz").startswith(
        "not measured: no user 'no-such-user-xyz'"
    )
    assert works_rootless(adapters["bubblewrap"], tmp_path, "root") == "not measured: 'root' is root"
