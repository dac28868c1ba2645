"""A private Docker Engine (and one-node swarm on loopback) for test sessions.

Real dockerd from Debian's ``docker.io``, started without systemd by
:class:`computeops_grid.bench.daemons.PrivateDockerd`: own data root, short exec root
(containerd's socket must fit 108 bytes), own socket, no iptables rules, no bridge.
Tests skip (with the reason) when dockerd is not installed; they never fake it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from computeops_grid.bench.daemons import PrivateDockerd


def require_dockerd() -> None:
    if shutil.which("dockerd") is None:
        pytest.skip("dockerd not installed (Debian package docker.io, see etc/deps/apt-orchestrators.txt)")


@contextmanager
def private_dockerd(*, swarm: bool) -> Iterator[PrivateDockerd]:
    """Start a dockerd in a fresh short temp dir; stop it and remove everything afterwards."""
    require_dockerd()
    root = Path(tempfile.mkdtemp(prefix="cops-dk-"))
    daemon = PrivateDockerd(root).start()
    try:
        if swarm:
            daemon.init_swarm()
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)
