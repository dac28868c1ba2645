from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.voms import GridUser, VomsServer, make_user, missing_voms_tools, start_voms_server


@pytest.fixture(scope="session")
def grid_user(tmp_path_factory: pytest.TempPathFactory) -> GridUser:
    """A test-CA user certificate; skips where the grid tools of etc/deps/apt-grid.txt are missing."""
    for tool in ("arcctl", "voms-proxy-fake", "voms-proxy-init", "arcproxy"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (etc/deps/apt-grid.txt)")
    return make_user(tmp_path_factory.mktemp("user"))


@pytest.fixture
def proxies(tmp_path: Path) -> Path:
    path = tmp_path / "proxies"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture(scope="session")
def voms_server(grid_user: GridUser) -> Iterator[VomsServer]:
    """A real VOMS server (Debian's voms on a private MariaDB, 127.0.0.1) for VO ``testvo``
    with group ``/testvo/analysis`` and role ``prod``; ``grid_user`` is a member of both.
    Missing packages fail rather than skip: CI must run these tests."""
    if os.getuid() != 0:
        pytest.skip("the VOMS server reads the test CA's host key (root only) and runs mariadbd as root")
    if missing := missing_voms_tools():
        pytest.fail(f"{', '.join(missing)} missing: install the packages of etc/deps/apt-grid.txt")
    server = start_voms_server("testvo")
    try:
        server.add_group("analysis")
        server.add_role("prod")
        server.add_user(grid_user.cert, groups=("analysis",), roles=("prod",))
        yield server
    finally:
        server.stop()


@pytest.fixture
def voms_env(voms_server: VomsServer, monkeypatch: pytest.MonkeyPatch) -> VomsServer:
    """The clients (and the CLI's subprocesses) pointed at ``voms_server`` for one test."""
    for name, value in voms_server.env.items():
        monkeypatch.setenv(name, value)
    return voms_server
