from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.services.voms import GridUser, make_user


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
