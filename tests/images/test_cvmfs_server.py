"""``--cvmfs-repo``: the publish runs inside ``cvmfs_server transaction``/``publish``, ``abort`` on failure.

cvmfs_server (a CVMFS stratum-0) cannot run here. A real executable named ``cvmfs_server`` is put
first on PATH; it records each argv (and can fail on demand) so the test checks the exact
command sequence written for the real CLI.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from computeops_grid.images.errors import ImageError, ToolMissing
from computeops_grid.images.operations import publish_sources

from .helpers import member, oci_layout

STANDIN = """#!/bin/sh
echo "$*" >> "{log}"
if [ "$1" = "$COPS_TEST_FAIL" ]; then echo "simulated failure of $1" >&2; exit 1; fi
exit 0
"""


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    tool = bindir / "cvmfs_server"
    tool.write_text(STANDIN.format(log=log))
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return log


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_publish_inside_transaction(tmp_path: Path, standin: Path) -> None:
    layout = oci_layout(tmp_path / "oci", [[member("v", data=b"x")]])
    publish_sources(
        [f"oci:{layout}"], tmp_path / "repo", name="docker://t/a:1", cvmfs_repo="unpacked.example.org"
    )
    assert _calls(standin) == ["transaction unpacked.example.org", "publish unpacked.example.org"]
    assert (tmp_path / "repo" / "registry.hub.docker.com" / "t" / "a:1" / "v").is_file()


def test_failed_publish_aborts(tmp_path: Path, standin: Path) -> None:
    with pytest.raises(ImageError):
        publish_sources([str(tmp_path / "missing")], tmp_path / "repo", cvmfs_repo="unpacked.example.org")
    assert _calls(standin) == ["transaction unpacked.example.org", "abort -f unpacked.example.org"]


def test_failing_cvmfs_publish_aborts(tmp_path: Path, standin: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPS_TEST_FAIL", "publish")
    layout = oci_layout(tmp_path / "oci", [[member("v", data=b"x")]])
    with pytest.raises(ImageError, match="simulated failure of publish"):
        publish_sources(
            [f"oci:{layout}"], tmp_path / "repo", name="docker://t/a:1", cvmfs_repo="r.example.org"
        )
    assert _calls(standin) == ["transaction r.example.org", "publish r.example.org", "abort -f r.example.org"]


def test_missing_cvmfs_server_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolMissing, match="stratum-0"):
        publish_sources(["x"], tmp_path / "repo", cvmfs_repo="r.example.org")
