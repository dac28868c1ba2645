"""Real storage for the data-movement tests: XRootD (own network namespace + loopback relay) and moto S3."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services.xrootd import S3, XRootD, moto_s3, xrootd_server

BUCKET = "cops-out"


@pytest.fixture(scope="session")
def xrootd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XRootD]:
    if os.geteuid() != 0 or not shutil.which("xrootd") or not shutil.which("xrdcp"):
        pytest.skip("needs root and Debian xrootd-server + xrootd-client (etc/deps/apt-grid.txt)")
    # the server drops to `nobody`: its directory must be reachable, pytest's tmp (0700) is not
    base = Path(tempfile.mkdtemp(prefix="cops-xrootd-", dir="/tmp"))
    try:
        with xrootd_server(base) as server:
            yield server
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    base = tmp_path_factory.mktemp("s3")
    with moto_s3(base) as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


@pytest.fixture
def storage_env(monkeypatch: pytest.MonkeyPatch, s3: S3) -> S3:
    """The node's storage settings, as a site sets them for the wrapper (never in the job file):
    the S3 endpoint and a keys file; short retries so the unreachable case stays quick."""
    monkeypatch.setenv("COPS_PILOT_S3_ENDPOINT", s3.endpoint)
    monkeypatch.setenv("COPS_PILOT_S3_KEYS", str(s3.keys_file))
    monkeypatch.setenv("COPS_PILOT_TRANSFER_RETRIES", "2")
    monkeypatch.setenv("COPS_PILOT_TRANSFER_BACKOFF", "0.05")
    return s3


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def data_root(xrootd: XRootD) -> Path:
    return xrootd.root
